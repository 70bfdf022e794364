"""Tracking baseline: the point moved by the scene's dominant motion only (a similarity transform
fitted with RANSAC to DIS flow at a quarter of the model size, as the tracker's "scene" hint).

It cannot follow anything that moves on its own (instruments, pulled tissue), but a bleeding
source sits on tissue that mostly moves with the camera, which is what this row measures.
"""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.models.baselines.flow_tracker import FlowPointTracker
from bleedorigin.models.registry import register_model
from bleedorigin.models.tracker.motion_hint import DOWNSCALE, scene_motion
from bleedorigin.vision.flow import dis_flow


class SceneTracker(FlowPointTracker):
    name = "track_scene"

    def __init__(self) -> None:
        self.dis = dis_flow("medium")

    def move(self, prev: np.ndarray, cur: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, bool, float]:
        size = (prev.shape[1] // DOWNSCALE, prev.shape[0] // DOWNSCALE)
        small = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (prev, cur)]
        transform = scene_motion(self.dis.calc(small[0], small[1], None))
        if transform is None:  # no dominant motion found: hold the point
            return xy, False, 0.0
        scale = np.array(prev.shape[1::-1], np.float64) / np.array(size, np.float64)
        cell = (xy + 0.5) / scale - 0.5
        return xy + (transform[:, :2] @ cell + transform[:, 2] - cell) * scale, True, 1.0


@register_model("track_scene")
def track_scene(**_: object) -> SceneTracker:
    return SceneTracker()
