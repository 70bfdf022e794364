"""Tracking baseline: OpenCV pyramidal Lucas-Kanade with a forward-backward check.

Works at the model resolution. When the check fails (blood, glare, occlusion) the point holds
its last position and is reported invisible with zero confidence; it resumes from there.
"""
from __future__ import annotations

import numpy as np

from bleedorigin.models.baselines.flow_tracker import FlowPointTracker
from bleedorigin.models.registry import register_model
from bleedorigin.vision.flow import lk_step


class LKTracker(FlowPointTracker):
    name = "track_lk"

    def __init__(self, win: int = 21, levels: int = 3, fb_max: float = 1.5):
        self.win, self.levels, self.fb_max = win, levels, fb_max

    def move(self, prev: np.ndarray, cur: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, bool, float]:
        new, ok, fb = lk_step(prev, cur, xy, self.win, self.levels, self.fb_max)
        return new, ok, float(np.exp(-fb / self.fb_max)) if ok else 0.0


@register_model("track_lk")
def track_lk(win: int = 21, levels: int = 3, fb_max: float = 1.5) -> LKTracker:
    return LKTracker(win=win, levels=levels, fb_max=fb_max)
