"""The three stage interfaces every model (trained or baseline) implements.

Frames are RGB uint8 arrays (H, W, 3) at the input video's resolution; points are
input-video pixels. Each predictor resizes to the model resolution itself and maps back.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.types import Point, TrackPoint


@dataclass
class OnsetStep:
    """Output of one onset-detector step.

    `score` is the bleeding confidence attached to the current frame (for timelines);
    `onset_frame` is set on the step where an onset is raised. It may be earlier than the
    current frame (the sliding-window model places the onset inside its window).
    With it, a detector that can say why gives `cue` (which evidence raised it) and `where`
    (box x0, y0, x1, y1 of that evidence, pixels of the frame it was given).
    """

    score: float
    onset_frame: int | None = None
    cue: str | None = None
    where: tuple[int, int, int, int] | None = None


class OnsetDetectorBase(ABC):
    name: str = "onset"
    # Score above which an onset is raised, where the detector has one (drawn on timelines).
    score_threshold: float | None = None

    @abstractmethod
    def reset(self) -> None:
        """Forget everything; the next frame is frame 0."""

    @abstractmethod
    def step(self, frame: np.ndarray) -> OnsetStep:
        """Consume the next frame."""

    def rearm(self) -> None:
        """After a bleeding episode ended: start over as `reset` does. Detectors that can tell
        blood left lying in view from a new bleed override it."""
        self.reset()

    def leftover_blood(self) -> np.ndarray | None:
        """After `rearm`: a bool mask (any size; the whole frame) of the blood that lay in view
        before the new bleed, where it is on the current frame, or None when not known."""
        return None


class SourceLocatorBase(ABC):
    name: str = "source"

    @abstractmethod
    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:
        """Bleeding source on `frame`; `history` optionally holds earlier frames (oldest first);
        `exclude` optionally a bool mask (any size; the whole frame) of old blood, left by an
        earlier bleed, where the source is not placed."""

    def locate_candidates(self, frame: np.ndarray, history: list[np.ndarray] | None = None, k: int = 3,
                          exclude: np.ndarray | None = None) -> list[Point]:
        """Up to `k` separated places the source may be, best first, each with the probability
        (confidence in [0, 1]) that the source is there. A localizer with one answer gives it."""
        return [self.locate(frame, history=history, exclude=exclude)]


def allowed(exclude: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Where a source may be placed, at `size` (w, h), given `locate`'s `exclude`; None: anywhere."""
    if exclude is None:
        return None
    return cv2.resize(exclude.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) == 0


class PointTrackerBase(ABC):
    name: str = "track"

    @abstractmethod
    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        """Initialise on `frame` (index `frame_index`) at `point` (x, y)."""

    @abstractmethod
    def step(self, frame: np.ndarray) -> TrackPoint:
        """Track into the next frame; returns the point with confidence and visibility."""
