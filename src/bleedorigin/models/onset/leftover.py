"""Blood already lying in the view when the bleeding-present check re-arms after an episode.

A pool that was never washed away, or stains left by the last bleed, are not a new bleed. The
blood marked on the first armed frame is the baseline. It moves with the camera: a similarity
transform (shift, rotation, zoom) is fitted to the optical flow of the tissue, frame to frame.
It is widened by a margin that absorbs registration error and a settling pool's creep. Blood
outside it, on tissue the baseline frame saw, is fresh. Blood that comes into view (a pan, an
instrument moving off it) is not fresh: the baseline frame never saw that tissue.
"""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.vision.flow import dis_flow, fit_similarity

FRESH_MARGIN = 0.04  # the carried baseline blood is widened by this share of the image width
FLOW_STEP = 4  # grid step (pixels) at which the tissue's flow is sampled for the camera fit
INLIER_PX = 1.0  # RANSAC reprojection threshold of that fit (pixels of the AREA_SIZE copy)
MIN_INLIERS = 8


def _then(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """2x3 affine transform applying `first`, then `second`."""
    a, b = second[:, :2], second[:, 2:]
    return np.hstack([a @ first[:, :2], a @ first[:, 2:] + b])


class LeftoverBlood:
    """The baseline blood of a re-armed check and the camera motion since it was seen."""

    def __init__(self, blood: np.ndarray, view: np.ndarray, gray: np.ndarray):
        r = max(1, int(round(FRESH_MARGIN * blood.shape[1])))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        self.known = cv2.dilate(blood.astype(np.uint8), kernel)
        self.seen = view.astype(np.uint8)
        self.to_now = np.eye(2, 3)  # baseline frame -> current frame
        self.flow = dis_flow("ultrafast")
        self.prev_gray, self.prev_tissue = gray, view & ~blood

    def fresh(self, blood: np.ndarray, view: np.ndarray, gray: np.ndarray) -> float:
        """Share of the current lit view covered by blood that is not the carried baseline's,
        on tissue the baseline frame saw. `blood`, `view`: bool masks; `gray`: the frame."""
        step = self._camera_step(gray)
        if step is not None:  # no fit (too little tissue in view): keep the last known position
            self.to_now = _then(step, self.to_now)
        self.prev_gray, self.prev_tissue = gray, view & ~blood
        h, w = blood.shape
        known = cv2.warpAffine(self.known, self.to_now, (w, h), flags=cv2.INTER_NEAREST)
        seen = cv2.warpAffine(self.seen, self.to_now, (w, h), flags=cv2.INTER_NEAREST)
        new = blood & view & seen.astype(bool) & ~known.astype(bool)
        return float(new.sum() / max(1, view.sum()))

    def _camera_step(self, gray: np.ndarray) -> np.ndarray | None:
        """Similarity from the previous frame to this one, fitted on the previous frame's tissue
        (blood flows; the tissue carries the camera's motion)."""
        flow = self.flow.calc(self.prev_gray, gray, None)
        ys, xs = np.nonzero(self.prev_tissue[::FLOW_STEP, ::FLOW_STEP])
        if len(xs) < 2 * MIN_INLIERS:
            return None
        xs, ys = xs * FLOW_STEP, ys * FLOW_STEP
        return fit_similarity(np.stack([xs, ys], 1), flow[ys, xs], INLIER_PX, MIN_INLIERS)
