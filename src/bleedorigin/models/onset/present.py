"""Bleeding already under way: a per-frame bleeding-present decision armed at stream start.

The transition model needs a bleeding-free stretch before the onset; a stream picked up during
a bleed never shows one. While armed (the first `arm_frames` frames after a reset, i.e. at
stream start and, in the pipeline, after each episode), every frame's blood cover is measured
with the real-calibrated `vision.color.blood_presence` (bright blood, and near-black pools unless
`dark` is off); once `persist` armed frames exceeded `threshold`, bleeding is reported as present
from the first of them.

The threshold is twice the highest cover measured on bleeding-free video (real VL-SurgPT clips
under five white balances, BleedSim negatives): docs/onset.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bleedorigin.vision.color import blood_presence

PRESENT_THRESHOLD = 0.005  # share of the view covered by blood
PRESENT_PERSIST = 10  # armed frames above the threshold before bleeding is reported
ARM_FRAMES = 30  # frames after a reset during which the check runs


@dataclass
class PresenceCheck:
    threshold: float = PRESENT_THRESHOLD
    persist: int = PRESENT_PERSIST
    arm_frames: int = ARM_FRAMES
    dark: bool = True  # count near-black pools (`vision.color.dark_blood_mask`) as blood

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.first: int | None = None  # first armed frame above the threshold
        self.count = 0
        self.onset: int | None = None

    @property
    def armed(self) -> bool:
        return self.onset is None and self.t < self.arm_frames + self.persist

    def step(self, frame: np.ndarray) -> tuple[float, int | None]:
        """(score, onset frame on the step bleeding is found present, else None). Frames after
        the armed window cost nothing; a run that began inside the window may still finish."""
        t = self.t
        self.t += 1
        if not self.armed or (self.first is None and t >= self.arm_frames):
            return 0.0, None
        if blood_presence(frame, self.dark) > self.threshold:
            self.first = t if self.first is None else self.first
            self.count += 1
        score = min(1.0, self.count / self.persist)
        if self.count >= self.persist:
            self.onset = self.first
            return score, self.onset
        return score, None
