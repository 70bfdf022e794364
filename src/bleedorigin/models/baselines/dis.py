"""Tracking baseline: the point carried through chained DIS dense optical flow.

No visibility reasoning: the flow always moves the point, so errors accumulate through blood
and occlusion (which is what the learned tracker is compared against).
"""
from __future__ import annotations

import numpy as np

from bleedorigin.models.baselines.flow_tracker import FlowPointTracker
from bleedorigin.models.registry import register_model
from bleedorigin.vision.flow import dis_flow, sample_flow


class DISTracker(FlowPointTracker):
    name = "track_dis"

    def __init__(self, preset: str = "medium"):
        self.dis = dis_flow(preset)

    def move(self, prev: np.ndarray, cur: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, bool, float]:
        return xy + sample_flow(self.dis.calc(prev, cur, None), xy), True, 1.0


@register_model("track_dis")
def track_dis(preset: str = "medium") -> DISTracker:
    return DISTracker(preset=preset)
