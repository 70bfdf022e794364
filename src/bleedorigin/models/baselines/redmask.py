"""Source baseline: the peak of the smoothed Red-Mask on the onset frame.

A pool of blood saturates the mask, so its smoothed version has a plateau rather than a peak;
the point chosen is the plateau's innermost pixel (largest distance to its border, the image
edge included). Only the lit field of view is searched."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import SourceLocatorBase, allowed
from bleedorigin.models.registry import register_model
from bleedorigin.types import Point
from bleedorigin.vision.color import field_of_view, red_mask


class RedMaskSourceLocator(SourceLocatorBase):
    name = "source_redmask"

    def __init__(self, sigma: float = 8.0):
        self.sigma = sigma  # model pixels; smoothing favours the middle of a blood region over specks

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:
        mapper = FrameMapper(frame.shape[1::-1])
        small = mapper.resize(frame)
        mask = cv2.GaussianBlur(red_mask(small), (0, 0), self.sigma) * field_of_view(small)
        keep = allowed(exclude, small.shape[1::-1])
        if keep is not None and float((mask * keep).max()) > 1e-6:  # no peak on old blood
            mask *= keep
        peak = float(mask.max())
        if peak <= 1e-6:  # no red at all: the image centre, with zero confidence
            h, w = frame.shape[:2]
            return Point((w - 1) / 2, (h - 1) / 2, 0.0)
        plateau = np.pad((mask >= 0.8 * peak).astype(np.uint8), 1)  # the image edge is a border
        inner = cv2.distanceTransform(plateau, cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
        px, py = mapper.to_input((x, y))
        return Point(float(px), float(py), min(peak, 1.0))


@register_model("source_redmask")
def source_redmask(sigma: float = 8.0) -> RedMaskSourceLocator:
    return RedMaskSourceLocator(sigma=sigma)
