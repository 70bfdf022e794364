"""Tracking control: a "tracker" that never moves the start point (zero motion), always reported
visible. The field's reference row (STIR's zero-motion control): a tracker is worth something only
where it beats this."""
from __future__ import annotations

import numpy as np

from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.registry import register_model
from bleedorigin.types import TrackPoint


class StillTracker(PointTrackerBase):
    name = "track_still"

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.xy = (float(point[0]), float(point[1]))
        self.frame = frame_index

    def step(self, frame: np.ndarray) -> TrackPoint:
        self.frame += 1
        return TrackPoint(self.frame, self.xy[0], self.xy[1], 1.0, visible=True)


@register_model("track_still")
def track_still(**_: object) -> StillTracker:
    return StillTracker()
