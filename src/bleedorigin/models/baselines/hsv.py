"""Onset baseline: growth of the red (blood) area measured in colour space.

Each frame's blood area is the share of pixels whose Red-Mask exceeds vision.color.BLOOD_THRESHOLD (computed on a small
copy of the frame). A reference area is the median of a lagged window of earlier frames; an
onset is raised once the area has stayed `growth` above the reference for `persist` frames, and
it is back-dated to the frame where the area first left the reference's noise band.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from bleedorigin.models.base import OnsetDetectorBase, OnsetStep
from bleedorigin.models.registry import register_model
from bleedorigin.vision.color import blood_area, quiet_level


class HSVOnsetDetector(OnsetDetectorBase):
    name = "onset_hsv"
    score_threshold = 0.5  # the score is 0.5 where the area is `growth` above the reference

    def __init__(self, growth: float = 0.02, persist: int = 5, reference: int = 30, lag: int = 10):
        self.growth, self.persist, self.reference, self.lag = growth, persist, reference, lag
        self.reset()

    def reset(self) -> None:
        self.t = -1
        self.areas: deque[float] = deque(maxlen=self.reference + self.lag)
        self.run = 0           # consecutive frames above reference + growth
        self.raised = False

    def step(self, frame: np.ndarray) -> OnsetStep:
        self.t += 1
        area = blood_area(frame)
        self.areas.append(area)
        history = list(self.areas)[:-self.lag]
        if self.raised or len(history) < max(3, self.reference // 3):
            return OnsetStep(score=0.0)
        ref = float(np.median(history))
        score = float(np.clip((area - ref) / (2 * self.growth), 0, 1))
        self.run = self.run + 1 if area > ref + self.growth else 0
        if self.run < self.persist:
            return OnsetStep(score=score)
        self.raised = True
        return OnsetStep(score=score, onset_frame=self.t - self.rise_length(quiet_level(history)))

    def rise_length(self, quiet_level: float) -> int:
        """Frames back from now to the first frame after the last one at the quiet level."""
        recent = list(self.areas)
        for back in range(len(recent)):
            if recent[-1 - back] <= quiet_level:
                return max(back - 1, 0)
        return len(recent) - 1


@register_model("onset_hsv")
def onset_hsv(growth: float = 0.02, persist: int = 5) -> HSVOnsetDetector:
    return HSVOnsetDetector(growth=growth, persist=persist)
