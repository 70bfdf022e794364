"""Shared frame handling of the optical-flow tracking baselines (LK and DIS)."""
from __future__ import annotations

import numpy as np

from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.types import TrackPoint
from bleedorigin.vision.flow import to_gray


class FlowPointTracker(PointTrackerBase):
    """Works on gray frames at the model resolution; subclasses implement `move`."""

    mapper: FrameMapper | None = None

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.mapper = FrameMapper(frame.shape[1::-1])
        self.prev = to_gray(self.mapper.resize(frame))
        self.xy = self.mapper.to_model(point)
        self.frame = frame_index

    def move(self, prev: np.ndarray, cur: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, bool, float]:
        """The point's position in `cur`, whether it was found, and a confidence in [0, 1]."""
        raise NotImplementedError

    def step(self, frame: np.ndarray) -> TrackPoint:
        if self.mapper is None:
            raise RuntimeError("call start() before step()")
        cur = to_gray(self.mapper.resize(frame))
        xy, found, confidence = self.move(self.prev, cur, self.xy)
        if found:  # a lost point holds its last position
            w, h = self.mapper.model_size
            self.xy = np.clip(xy, [0, 0], [w - 1, h - 1])
        self.prev = cur
        self.frame += 1
        x, y = self.mapper.to_input(self.xy)
        return TrackPoint(self.frame, float(x), float(y), confidence, visible=found)
