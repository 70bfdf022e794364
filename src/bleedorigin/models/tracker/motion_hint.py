"""Camera-motion hint for the tracker: where the scene around each point moved between two
consecutive frames (median DIS flow in a window around the point, at a quarter of the frame
size). Cheap (~2 ms at 512x384), independent of what the network believes, and, being a
regional median, not dragged along by an instrument or a water jet crossing the point.

Used by `PointTracker` at run time and by the tracker trainer, so that a network trained with
the hint sees the same hint when deployed."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.vision.flow import dis_flow, to_gray

DOWNSCALE = 4
RADIUS = 8  # window half-size in flow pixels (32 px at the model scale)


class MotionHint:
    """Feed consecutive frames (any size, all the same) with `carry`; get the points moved."""

    def __init__(self) -> None:
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
        cells = np.clip(np.round((points + 0.5) / scale - 0.5).astype(int), 0, np.array(size) - 1)
        moved = np.empty_like(points)
        for i, (x, y) in enumerate(cells):
            patch = flow[max(0, y - RADIUS):y + RADIUS + 1, max(0, x - RADIUS):x + RADIUS + 1].reshape(-1, 2)
            moved[i] = points[i] + np.median(patch, 0) * scale
        return moved
