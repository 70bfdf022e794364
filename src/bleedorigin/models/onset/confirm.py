"""A transition the network raises, confirmed by blood that is new since before its onset.

The sliding-window network judges colour and motion at a low resolution; on a static bed of
crimson mucosa, or an instrument passing over red tissue, it can take the view for one that
starts to bleed. Blood that starts to flow appears where it was not: so a raised transition
stands only once red area that was not there before the onset has appeared, camera motion
removed (`models.onset.leftover.LeftoverBlood`, the evidence the bleeding-present check
watches for): the blood on the frame `lead` frames before the network's onset is the baseline,
carried with the camera and widened; red that appears outside it, on tissue that frame saw, and
whose colour changed, is new once it covers `threshold` of the view. Red is what the network sees (`red_mask`) or what the calibrated
masks mark (`blood_cover`), so the test reads the same on BleedSim's blood and on real blood;
what makes it evidence is that it is new, not its colour.

The frames since the baseline are kept (at AREA_SIZE) so the decision can look back; it then
looks on for up to `patience` frames after the network's decision. A transition without new
red in that time is dropped; the network may raise again once its score fell below its
threshold.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from bleedorigin.models.onset.leftover import LeftoverBlood
from bleedorigin.models.onset.present import ARM_FRAMES, WATCH_STRIDE, largest_box
from bleedorigin.vision.color import BLOOD_THRESHOLD, blood_cover, red_mask

CONFIRM_SHARE = 0.001  # share of the view new red must cover: the rule of docs/onset.md on BleedSim validation


class TransitionConfirm:
    """Looks for new red since before a proposed onset. `push` every frame (AREA_SIZE copy);
    `propose` when the network raises; `step` on later frames while a proposal is pending."""

    def __init__(self, history: int, lead: int, threshold: float = CONFIRM_SHARE,
                 patience: int = ARM_FRAMES, stride: int = WATCH_STRIDE, dark: bool = True):
        self.lead, self.threshold, self.patience = int(lead), float(threshold), int(patience)
        self.stride, self.dark = max(1, int(stride)), dark
        self.frames: deque[tuple[int, np.ndarray]] = deque(maxlen=int(history) + int(lead) + 1)
        self.reset()

    def reset(self) -> None:
        self.frames.clear()
        self.i = 0  # index of the next pushed frame
        self.onset: int | None = None  # the proposed onset while pending
        self.deadline = 0
        self.baseline: LeftoverBlood | None = None
        self.last_checked = -1
        self.peak = self.last_share = 0.0  # largest and latest share of the view found new
        self.box: tuple[int, int, int, int] | None = None  # where that new red lies (AREA_SIZE px)

    @property
    def pending(self) -> bool:
        return self.onset is not None

    def push(self, small: np.ndarray) -> None:
        self.frames.append((self.i, small))
        self.i += 1

    def propose(self, onset: int) -> bool | None:
        """The network raised `onset` on the latest pushed frame: True when new red is found in
        the frames kept since `lead` frames before it, else None (pending)."""
        first = max(onset - self.lead, self.frames[0][0])
        kept = [(i, s) for i, s in self.frames if i >= first]
        self.onset, self.deadline, self.peak, self.box = onset, self.i - 1 + self.patience, 0.0, None
        _, base = kept[0]
        blood, view = self._blood(base)
        self.baseline = LeftoverBlood(base, blood, view)
        self.last_checked = kept[0][0]
        for i, small in kept[1:]:
            if ((i - first) % self.stride == 0 or i == self.i - 1) and self._check(i, small):
                return self._settle(True)
        return None

    def step(self) -> bool | None:
        """On the latest pushed frame while pending: True (new red found), False (the proposal
        is dropped: nothing new within `patience` frames) or None (still pending)."""
        assert self.onset is not None
        i, small = self.frames[-1]
        if i - self.last_checked >= self.stride and self._check(i, small):
            return self._settle(True)
        return self._settle(False) if i >= self.deadline else None

    def _settle(self, verdict: bool) -> bool:
        self.onset = self.baseline = None
        return verdict

    def _check(self, i: int, small: np.ndarray) -> bool:
        assert self.baseline is not None
        self.last_checked = i
        blood, view = self._blood(small)
        share = self.last_share = self.baseline.fresh(small, blood, view)
        if share > self.peak:
            self.peak, self.box = share, largest_box(self.baseline.last_fresh)
        return share > self.threshold

    def _blood(self, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Red the network sees or the calibrated masks mark, and the lit view."""
        blood, view = blood_cover(small, self.dark)
        return blood | (red_mask(small) > BLOOD_THRESHOLD), view
