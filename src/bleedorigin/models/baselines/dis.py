"""Tracking baseline: the point carried through chained DIS dense optical flow.

No visibility reasoning: the flow always moves the point, so errors accumulate through blood
and occlusion (which is what the learned tracker is compared against).
"""
from __future__ import annotations

import numpy as np

from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.registry import register_model
from bleedorigin.types import TrackPoint
from bleedorigin.vision.flow import dis_flow, sample_flow, to_gray


class DISTracker(PointTrackerBase):
    name = "track_dis"

    def __init__(self, preset: str = "medium"):
        self.dis = dis_flow(preset)
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
        flow = self.dis.calc(self.prev, cur, None)
        w, h = self.mapper.model_size
        self.xy = np.clip(self.xy + sample_flow(flow, self.xy), [0, 0], [w - 1, h - 1])
        self.prev = cur
        self.frame += 1
        x, y = self.mapper.to_input(self.xy)
        return TrackPoint(self.frame, float(x), float(y), 1.0, visible=True)


@register_model("track_dis")
def track_dis(preset: str = "medium", **_: object) -> DISTracker:
    return DISTracker(preset=preset)
