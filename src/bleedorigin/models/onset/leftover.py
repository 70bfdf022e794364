"""Blood already lying in the view when the bleeding-present check re-arms after an episode.

A pool that was never washed away, or stains left by the last bleed, are not a new bleed. The
blood marked on the first armed frame is the baseline. It moves with the camera: a similarity
transform (shift, rotation, zoom) is fitted to the optical flow of the tissue, frame to frame.
It is widened by a margin that absorbs registration error and a settling pool's creep. Blood
outside it, on tissue the baseline frame saw and whose colour has changed since, is fresh.
Blood that comes into view (a pan) is not fresh: the baseline frame never saw that tissue. Nor
is a dark or red patch that was there already but that the per-frame masks marked only later
(their thresholds are relative to each frame's statistics, so a pool's or shadow's marking
flickers): a pixel that turns into blood changes colour by a mask's own contrast to tissue (G/R
at most 0.55 of the tissue's for `blood_mask`, red at most 0.5 of the tissue's for
`dark_blood_mask`, both about 0.6-0.7 in log), and half of that is required.
"""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.vision.color import view_share
from bleedorigin.vision.flow import dis_flow, fit_similarity, to_gray

FRESH_MARGIN = 0.04  # the carried baseline blood is widened by this share of the image width
FLOW_STEP = 4  # grid step (pixels) at which the tissue's flow is sampled for the camera fit
INLIER_PX = 1.0  # RANSAC reprojection threshold of that fit (pixels of the AREA_SIZE copy)
MIN_INLIERS = 8
FRESH_CHANGE = 0.3  # log change of G/R, or of red relative to the view's, that new blood makes


def _then(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """2x3 affine transform applying `first`, then `second`."""
    a, b = second[:, :2], second[:, 2:]
    return np.hstack([a @ first[:, :2], a @ first[:, 2:] + b])


class LeftoverBlood:
    """The baseline blood of a re-armed check and the camera motion since it was seen."""

    def __init__(self, small: np.ndarray, blood: np.ndarray, view: np.ndarray):
        """`small`: the first armed frame (RGB, the size the masks were made at); `blood`,
        `view`: its bool masks."""
        r = max(1, int(round(FRESH_MARGIN * blood.shape[1])))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        self.known = cv2.dilate(blood.astype(np.uint8), kernel)
        self.seen = view.astype(np.uint8)
        self.colour = _log_colour(small)
        self.to_now = np.eye(2, 3)  # baseline frame -> current frame
        self.flow = dis_flow("ultrafast")
        self.prev_gray, self.prev_tissue = to_gray(small), view & ~blood
        self.last_fresh = np.zeros_like(blood)

    def carried(self) -> np.ndarray:
        """The (widened) baseline blood where the camera has carried it on the latest frame."""
        h, w = self.known.shape
        return cv2.warpAffine(self.known, self.to_now, (w, h), flags=cv2.INTER_NEAREST).astype(bool)

    def fresh(self, small: np.ndarray, blood: np.ndarray, view: np.ndarray) -> float:
        """Share of the current lit view covered by blood that is not the carried baseline's,
        on tissue the baseline frame saw, changed in colour since (arguments as for the first)."""
        gray = to_gray(small)
        step = self._camera_step(gray)
        if step is not None:  # no fit (too little tissue in view): keep the last known position
            self.to_now = _then(step, self.to_now)
        self.prev_gray, self.prev_tissue = gray, view & ~blood
        h, w = blood.shape
        seen = cv2.warpAffine(self.seen, self.to_now, (w, h), flags=cv2.INTER_NEAREST)
        new = blood & view & seen.astype(bool) & ~self.carried()
        if new.any():
            new &= self._changed(_log_colour(small), view, (w, h))
        self.last_fresh = new  # where the fresh blood lies (explains an alarm)
        return view_share(new, view)

    def _changed(self, now: np.ndarray, view: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Pixels whose G/R or red (relative to the whole view's change: exposure) moved by
        FRESH_CHANGE in log since the baseline frame, at the camera-carried position."""
        then = cv2.warpAffine(self.colour, self.to_now, size, flags=cv2.INTER_LINEAR)
        d = now - then
        d[..., 0] -= np.median(d[..., 0][view])
        return (np.abs(d) > FRESH_CHANGE).any(axis=2)

    def _camera_step(self, gray: np.ndarray) -> np.ndarray | None:
        """Similarity from the previous frame to this one, fitted on the previous frame's tissue
        (blood flows; the tissue carries the camera's motion)."""
        flow = self.flow.calc(self.prev_gray, gray, None)
        ys, xs = np.nonzero(self.prev_tissue[::FLOW_STEP, ::FLOW_STEP])
        if len(xs) < 2 * MIN_INLIERS:
            return None
        xs, ys = xs * FLOW_STEP, ys * FLOW_STEP
        return fit_similarity(np.stack([xs, ys], 1), flow[ys, xs], INLIER_PX, MIN_INLIERS)


def _log_colour(small: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32: log red and log G/R on a 3x3 average (a dark pixel's colour is mostly
    noise)."""
    f = cv2.blur(small.astype(np.float32), (3, 3)) + 1.0
    r = np.log(f[..., 0])
    return np.stack([r, np.log(f[..., 1]) - r], -1).astype(np.float32)
