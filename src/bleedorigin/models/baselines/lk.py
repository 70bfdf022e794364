"""Tracking baseline: OpenCV pyramidal Lucas-Kanade with a forward-backward check.

Works at the model resolution. When the check fails (blood, glare, occlusion) the point holds
its last position and is reported invisible with low confidence; it resumes from there.
"""
from __future__ import annotations

import numpy as np

from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.registry import register_model
from bleedorigin.types import TrackPoint
from bleedorigin.vision.flow import lk_step, to_gray


class LKTracker(PointTrackerBase):
    name = "track_lk"

    def __init__(self, win: int = 21, levels: int = 3, fb_max: float = 1.5):
        self.win, self.levels, self.fb_max = win, levels, fb_max
        self.mapper: FrameMapper | None = None

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.mapper = FrameMapper(frame.shape[1::-1])
        self.prev = to_gray(self.mapper.resize(frame))
        self.xy = self.mapper.to_model(point)
        self.frame = frame_index

    def step(self, frame: np.ndarray) -> TrackPoint:
        if self.mapper is None:
            raise RuntimeError("call start() before step()")
        cur = to_gray(self.mapper.resize(frame))
        xy, ok, fb = lk_step(self.prev, cur, self.xy, self.win, self.levels, self.fb_max)
        if ok:
            w, h = self.mapper.model_size
            self.xy = np.clip(xy, [0, 0], [w - 1, h - 1])
        self.prev = cur
        self.frame += 1
        x, y = self.mapper.to_input(self.xy)
        confidence = float(np.exp(-fb / self.fb_max)) if ok else 0.0
        return TrackPoint(self.frame, float(x), float(y), confidence, visible=ok)


@register_model("track_lk")
def track_lk(win: int = 21, levels: int = 3, fb_max: float = 1.5, **_: object) -> LKTracker:
    return LKTracker(win=win, levels=levels, fb_max=fb_max)
