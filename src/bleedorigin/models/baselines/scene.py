"""Tracking baseline: the point moved by the scene's dominant motion only (the tracker's "scene"
camera-motion hint on its own: a similarity transform fitted with RANSAC to DIS flow).

It cannot follow anything that moves on its own (instruments, pulled tissue), but a bleeding
source sits on tissue that mostly moves with the camera, which is what this row measures.
"""
from __future__ import annotations

import numpy as np

from bleedorigin.models.baselines.flow_tracker import FlowPointTracker
from bleedorigin.models.registry import register_model
from bleedorigin.vision.motion import MotionHint


class SceneTracker(FlowPointTracker):
    name = "track_scene"

    def __init__(self) -> None:
        self.hint = MotionHint("scene")

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        super().start(frame, point, frame_index)
        self.hint.reset()
        self.hint.carry(self.prev, self.xy[None])  # the hint keeps its own previous frame

    def move(self, prev: np.ndarray, cur: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, bool, float]:
        return self.hint.carry(cur, xy[None])[0], True, 1.0


@register_model("track_scene")
def track_scene() -> SceneTracker:
    return SceneTracker()
