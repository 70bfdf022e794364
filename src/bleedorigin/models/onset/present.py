"""Bleeding already under way: a per-frame bleeding-present decision armed at stream start.

The transition model needs a bleeding-free stretch before the onset; a stream picked up during
a bleed never shows one. While armed (the first `arm_frames` frames after `reset`, at stream
start, or after `rearm`, in the pipeline after each episode), every frame's blood cover is
measured with the real-calibrated `vision.color.blood_cover` (bright blood, and near-black pools
unless `dark` is off); once `persist` armed frames exceeded `threshold`, bleeding is reported as
present from the first of them. After `rearm` only fresh blood counts, not blood left lying in
view by the last episode (`models.onset.leftover`), and the check stays on while the pipeline
waits for the next episode: every `watch_stride`-th frame, in successive windows of the same
length, each with the blood in view on its first checked frame as its baseline (a new bleed may
start long after the last one ended; the transition model does not see one that starts beside
a leftover pool).

The threshold is twice the highest cover measured on bleeding-free video (real VL-SurgPT clips
under five white balances, BleedSim negatives): docs/onset.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bleedorigin.models.onset.leftover import LeftoverBlood
from bleedorigin.vision.color import area_copy, blood_cover, view_share

PRESENT_THRESHOLD = 0.005  # share of the view covered by blood
PRESENT_PERSIST = 10  # armed frames above the threshold before bleeding is reported
ARM_FRAMES = 30  # frames after a reset during which the check runs
WATCH_STRIDE = 4  # after an episode's armed window, check every this many frames (0: stop)


@dataclass
class PresenceCheck:
    threshold: float = PRESENT_THRESHOLD
    persist: int = PRESENT_PERSIST
    arm_frames: int = ARM_FRAMES
    dark: bool = True  # count near-black pools (`vision.color.dark_blood_mask`) as blood
    watch_stride: int = WATCH_STRIDE

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Stream start: any blood in view is bleeding already under way."""
        self._arm(after_episode=False)

    def rearm(self) -> None:
        """After a bleeding episode: blood already in view on the first armed frame is leftover;
        only fresh blood counts."""
        self._arm(after_episode=True)

    def _arm(self, after_episode: bool) -> None:
        self.i = 0  # frames since the reset or re-arm (the onset is reported in these)
        self.onset: int | None = None
        self.after_episode = after_episode
        self._window(start=0, stride=1)

    def _window(self, start: int, stride: int) -> None:
        """A new armed window from frame `start`, checking every `stride`-th frame."""
        self.start, self.stride = start, stride
        self.checks = 0  # frames checked in this window
        self.first: int | None = None  # first checked frame above the threshold
        self.count = 0
        self.leftover: LeftoverBlood | None = None

    @property
    def watching(self) -> bool:
        """After an episode the check goes on in further windows until bleeding is raised."""
        return self.after_episode and self.watch_stride > 0 and self.onset is None

    def step(self, frame: np.ndarray) -> tuple[float, int | None]:
        """(score, onset frame on the step bleeding is found present, else None). Frames after
        the armed window cost nothing (after an episode: frames between checks); a run that
        began inside the window may still finish."""
        i = self.i
        self.i += 1
        if self.onset is not None:
            return 0.0, None
        done = self.checks >= self.arm_frames + self.persist or \
            (self.first is None and self.checks >= self.arm_frames)
        if done:
            if not self.watching:
                return 0.0, None
            self._window(start=i, stride=self.watch_stride)
        score = min(1.0, self.count / self.persist)
        if (i - self.start) % self.stride:
            return score, None
        self.checks += 1
        if self._cover(frame) > self.threshold:
            self.first = i if self.first is None else self.first
            self.count += 1
        score = min(1.0, self.count / self.persist)
        if self.count >= self.persist:
            self.onset = self.first
            return score, self.onset
        return score, None

    def leftover_blood(self) -> np.ndarray | None:
        """After `rearm`: the current window's baseline blood (AREA_SIZE, bool) where it lies on
        the latest checked frame; None at stream start or before that window's first check."""
        if not self.after_episode or self.leftover is None:
            return None
        return self.leftover.carried()

    def _cover(self, frame: np.ndarray) -> float:
        """Share of the lit view covered by blood that counts: all of it after a reset; after
        `rearm`, fresh blood only (0 on the first armed frame, the leftover baseline)."""
        small = area_copy(frame)
        blood, view = blood_cover(small, self.dark)
        if not self.after_episode:
            return view_share(blood, view)
        if self.leftover is None:
            self.leftover = LeftoverBlood(small, blood, view)
            return 0.0
        return self.leftover.fresh(small, blood, view)
