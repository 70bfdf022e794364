"""Bleeding already under way, and new blood while waiting: a per-frame bleeding-present check.

The transition model needs a bleeding-free stretch before the onset; a stream picked up during
a bleed never shows one. The check measures every frame's blood cover with the real-calibrated
`vision.color.blood_cover` (bright blood, and near-black pools unless `dark` is off) and judges
what is *new or moving*, with the camera's motion removed (`models.onset.leftover`), not a colour
alone: red tissue (a crimson mucosa beside white submucosa, whose colour the mask cannot tell
from blood) stays where it is, blood spreads.

- **Stream start** (`reset`): the first `arm_frames` frames are checked. Bleeding is reported
  present, from the first frame over `threshold`, once `persist` checked frames had more than
  `threshold` of the view covered by blood *and* that blood was live: on some checked frame it
  had spread beyond where it lay on the first frame (camera-carried, widened) by `threshold` of
  the view. A red but static bed never spreads and raises nothing. Blood counted that has not
  spread by the end of those frames is given until frame `open_frames`, checked every
  `watch_stride`-th frame against the same first frame (a large pool can take longer to spread),
  while a watching window (below) runs beside it from the frame where it slows down.
- **Watching** (after that first window, and after `rearm`, in the pipeline after each
  episode): every `watch_stride`-th frame, in successive windows of the same length, each with
  the blood in view on its own first checked frame as its baseline, only fresh blood counts
  (`persist` checked frames with more than `threshold` of the view covered by it). After `rearm`
  the first window is checked on every frame.

The threshold is twice the highest cover measured on bleeding-free video (real VL-SurgPT clips
under five white balances, BleedSim negatives): docs/onset.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.models.onset.leftover import LeftoverBlood
from bleedorigin.vision.color import area_copy, blood_cover, view_share

PRESENT_THRESHOLD = 0.005  # share of the view covered by blood
PRESENT_PERSIST = 10  # armed frames above the threshold before bleeding is reported
ARM_FRAMES = 30  # frames after a reset during which the check runs
WATCH_STRIDE = 4  # after the first armed window, check every this many frames (0: stop)
OPEN_FRAMES = ARM_FRAMES * WATCH_STRIDE  # a stream-start window whose blood has not spread: one watching window

CUE_PRESENT = "bleeding_present"  # blood over the threshold at stream start that spread: under way
CUE_FRESH = "fresh_blood"  # blood that appeared since its window's first frame, camera motion removed


Box = tuple[int, int, int, int]


@dataclass
class _Window:
    """One armed window: checked every `stride`-th frame from `start`, with the blood in view on
    its first checked frame as its baseline (`base`: that frame)."""
    start: int
    stride: int
    base: int
    checks: int = 0  # frames checked
    first: int | None = None  # first checked frame above the threshold
    count: int = 0  # checked frames above the threshold
    leftover: LeftoverBlood | None = None
    spread: bool = False  # its blood spread beyond its first frame (stream start)
    box: Box | None = None  # box of the blood last counted (AREA_SIZE px)

    def fresh(self, small: np.ndarray, blood: np.ndarray, view: np.ndarray) -> float:
        """Share of the view covered by blood that appeared since the window's first checked
        frame, camera motion removed (0 on that frame, the baseline)."""
        if self.leftover is None:
            self.leftover = LeftoverBlood(small, blood, view)
            return 0.0
        return self.leftover.fresh(small, blood, view)

    def counts(self, i: int, share: float, threshold: float) -> bool:
        """Count checked frame `i` when `share` is over the threshold."""
        if share <= threshold:
            return False
        self.first = i if self.first is None else self.first
        self.count += 1
        return True


@dataclass
class PresenceCheck:
    threshold: float = PRESENT_THRESHOLD
    persist: int = PRESENT_PERSIST
    arm_frames: int = ARM_FRAMES
    dark: bool = True  # count near-black pools (`vision.color.dark_blood_mask`) as blood
    watch_stride: int = WATCH_STRIDE
    live: bool = True  # at stream start count blood only once it spread (False: any blood, static too)
    open_frames: int = OPEN_FRAMES  # frames from the start up to which such a window goes on (0: it does not)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Stream start: blood in view that spreads is bleeding already under way."""
        self._arm(after_episode=False)

    def rearm(self) -> None:
        """After a bleeding episode: blood already in view on the first armed frame is leftover;
        only fresh blood counts."""
        self._arm(after_episode=True)

    def _arm(self, after_episode: bool) -> None:
        self.i = 0  # frames since the reset or re-arm (the onset is reported in these)
        self.onset: int | None = None
        self.after_episode = after_episode
        self.cue: str | None = None  # why bleeding was raised (CUE_PRESENT or CUE_FRESH)
        self.where: Box | None = None  # box (x0, y0, x1, y1) of that blood
        self.window = _Window(start=0, stride=1, base=0)
        # while a stream-start window goes on (`open_frames`), the watching window that would follow it
        self.beside: _Window | None = None

    @property
    def opening(self) -> bool:
        """The first window after stream start, where blood already in view may count."""
        return not self.after_episode and self.window.base == 0

    def _keeps_opening(self, i: int) -> bool:
        """The stream-start window ends on frame `i` with blood counted that has not spread yet:
        with `open_frames`, it goes on (a pool can take longer than the window to spread)."""
        w = self.window
        return (self.opening and w.stride == 1 and w.first is not None and not w.spread
                and self.watch_stride > 0 and i < self.open_frames)

    @property
    def watching(self) -> bool:
        """After the first window the check goes on in further windows until bleeding is raised."""
        return self.watch_stride > 0 and self.onset is None

    def step(self, frame: np.ndarray) -> tuple[float, int | None]:
        """(score, onset frame on the step bleeding is found present, else None). Frames after
        the armed window cost nothing (after an episode: frames between checks); a run that
        began inside the window may still finish."""
        i = self.i
        self.i += 1
        if self.onset is not None:
            return 0.0, None
        w = self.window
        if self.opening and w.stride != 1:  # a stream-start window gone on (`open_frames`)
            done = i >= self.open_frames
        else:
            done = w.checks >= self.arm_frames + self.persist or \
                (w.first is None and w.checks >= self.arm_frames)
            if done and self._keeps_opening(i):
                # same baseline and count, checked less often; fresh blood is watched for beside it
                w.stride, w.start, done = self.watch_stride, i, False
                self.beside = _Window(start=i, stride=self.watch_stride, base=i)
        if done:
            if not self.watching:
                return 0.0, None
            w = self.window = _Window(start=i, stride=self.watch_stride, base=i)
            self.beside = None
        score = min(1.0, w.count / self.persist)
        if (i - w.start) % w.stride:
            return score, None
        w.checks += 1
        w.counts(i, self._cover(frame, i), self.threshold)
        score = min(1.0, w.count / self.persist) * (1.0 if w.spread or not self.opening else 0.5)
        if w.count >= self.persist and (w.spread or not self.opening):
            return self._raise(w.first, CUE_PRESENT if self.opening else CUE_FRESH, w.box, frame)
        if self.beside is not None and self.beside.count >= self.persist:
            return self._raise(self.beside.first, CUE_FRESH, self.beside.box, frame)
        return score, None

    def _raise(self, onset: int | None, cue: str, box: Box | None, frame: np.ndarray) -> tuple[float, int | None]:
        self.onset, self.cue = onset, cue
        self.where = None if box is None else scaled_box(box, frame.shape, self._small_shape)
        return 1.0, self.onset

    def leftover_blood(self) -> np.ndarray | None:
        """After `rearm`: the current window's baseline blood (AREA_SIZE, bool) where it lies on
        the latest checked frame; None at stream start or before that window's first check."""
        if not self.after_episode or self.window.leftover is None:
            return None
        return self.window.leftover.carried()

    def _cover(self, frame: np.ndarray, i: int) -> float:
        """Share of the lit view covered by blood that counts on checked frame `i`. In the
        opening window: all of it (whether it spread is recorded apart); in later windows and
        after `rearm`: fresh blood only (0 on a window's first checked frame, its baseline)."""
        small = area_copy(frame)
        self._small_shape = small.shape
        blood, view = blood_cover(small, self.dark)
        w = self.window
        fresh = w.fresh(small, blood, view)
        if self.opening:
            w.spread |= fresh > self.threshold or not self.live
            if self.beside is not None and self.beside.counts(i, self.beside.fresh(small, blood, view), self.threshold):
                self.beside.box = largest_box(self.beside.leftover.last_fresh)
            share = view_share(blood, view)
            if share > self.threshold:
                w.box = largest_box(blood & view)
            return share
        if fresh > self.threshold:
            w.box = largest_box(w.leftover.last_fresh)
        return fresh


def largest_box(mask: np.ndarray) -> Box | None:
    """Bounding box (x0, y0, x1, y1) of the largest connected region of `mask`."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[k, :4])
    return x, y, x + w, y + h


def scaled_box(box: Box, frame_shape: tuple[int, ...],
                small_shape: tuple[int, ...]) -> Box:
    """A box on the AREA_SIZE copy in pixels of the frame it was made from."""
    sx, sy = frame_shape[1] / small_shape[1], frame_shape[0] / small_shape[0]
    x0, y0, x1, y1 = box
    return int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy))
