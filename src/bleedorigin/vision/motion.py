"""Camera-motion hint for the tracker: where the scene around each point moved between two
consecutive frames, from DIS flow at a quarter of the frame size (~2 ms at 512x384),
independent of what the network believes.

Two ways to read the flow at a point (`TrackerConfig.hint_mode`):
- "window": the median flow in a window around the point. Follows local deformation, but is
  dragged along when an instrument or a water jet fills the window.
- "scene": the dominant motion of the whole view, a similarity transform (shift, rotation,
  zoom) fitted to the flow with RANSAC, so instruments, jets and glare are outliers; evaluated
  at the point. Ignores local deformation.

Used by `PointTracker` at run time and by the tracker trainer, so that a network trained with
the hint sees the same hint when deployed."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.errors import ConfigError
from bleedorigin.vision.flow import dis_flow, fit_similarity, to_gray

DOWNSCALE = 4
RADIUS = 8       # "window": half-size in flow pixels (32 px at the model scale)
GRID_STEP = 4    # "scene": flow pixels between the samples the transform is fitted to
INLIER_PX = 1.5  # "scene": flow pixels per frame within which a sample moves with the scene
MIN_SAMPLES = 20  # "scene": fewest samples a masked fit is made from
HINT_MODES = ("window", "scene")


def check_hint_mode(mode: str) -> str:
    if mode not in HINT_MODES:
        raise ConfigError(f"hint_mode {mode!r}: expected one of {', '.join(HINT_MODES)}")
    return mode


class MotionHint:
    """Feed consecutive frames (any size, all the same) with `carry`; get the points moved."""

    def __init__(self, mode: str = "window") -> None:
        self.mode = check_hint_mode(mode)
        self.dis = dis_flow("medium")
        self.prev: np.ndarray | None = None

    def reset(self) -> None:
        self.prev = None

    def carry(self, frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Take the next frame (H, W, 3) uint8; return `points` (N, 2, frame pixels) moved by
        the flow from the previous frame (unchanged on the first frame)."""
        h, w = frame.shape[:2]
        size = (max(8, w // DOWNSCALE), max(8, h // DOWNSCALE))
        gray = to_gray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        prev, self.prev = self.prev, gray
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if prev is None:
            return points.copy()
        flow = self.dis.calc(prev, gray, None)
        scale = np.array([w, h], np.float64) / np.array(size, np.float64)
        cells = (points + 0.5) / scale - 0.5  # positions on the flow grid
        scene = scene_motion(flow) if self.mode == "scene" else None
        if scene is not None:
            return points + (cells @ scene[:, :2].T + scene[:, 2] - cells) * scale
        return points + np.stack([_window_median(flow, c) for c in cells]) * scale


def scene_motion(flow: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """2x3 similarity transform (flow pixels) that most of the view follows, fitted to the
    pixels where `mask` (H, W bool) holds when given; None if no fit."""
    h, w = flow.shape[:2]
    gy, gx = np.mgrid[GRID_STEP // 2:h:GRID_STEP, GRID_STEP // 2:w:GRID_STEP]
    gx, gy = gx.ravel(), gy.ravel()
    if mask is not None:
        keep = mask[gy, gx]
        gx, gy = gx[keep], gy[keep]
        if len(gx) < MIN_SAMPLES:
            return None
    return fit_similarity(np.stack([gx, gy], 1), flow[gy, gx], INLIER_PX)


def _window_median(flow: np.ndarray, cell: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    x, y = np.clip(np.round(cell).astype(int), 0, [w - 1, h - 1])
    return np.median(flow[max(0, y - RADIUS):y + RADIUS + 1, max(0, x - RADIUS):x + RADIUS + 1].reshape(-1, 2), 0)
