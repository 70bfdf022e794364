"""Overlay video in the paper's display style, one frame at a time (supervision-style annotators).

"Non Bleeding" / "Bleeding" label top left, a flashing red box around the source after the
onset and after each move of the source (dashed and labelled "source ?", and kept on the point,
while the evidence names no clear place), why the onset was raised (the onset detector's cue,
named under the label, and a yellow box where it saw it), the tracked point with its confidence,
and a short trail.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from bleedorigin.pipeline_config import RevisionConfig
from bleedorigin.types import FrameResult

RED = (230, 30, 30)
GREEN = (40, 220, 60)
WHITE = (255, 255, 255)
YELLOW = (250, 220, 40)
# source confidence below which the box is dashed: the evidence named no clear place (the same
# threshold at which the pipeline records a source as confirmed)
SOURCE_UNSURE = RevisionConfig.clear


def _scale(frame: np.ndarray) -> float:
    """Drawing sizes grow with the frame so the overlay reads the same at 112 px or 1080 px."""
    return max(frame.shape[0], frame.shape[1]) / 512.0


@dataclass
class OnsetBannerAnnotator:
    """Top-left status label."""

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        bleeding = result.phase != "waiting"
        text = "Bleeding" if bleeding else "Non Bleeding"
        s = _scale(frame)
        font_scale, thick = 0.6 * s, max(1, int(round(2 * s)))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        pad = int(6 * s)
        cv2.rectangle(frame, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(frame, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    RED if bleeding else GREEN, thick, cv2.LINE_AA)
        return frame


@dataclass
class OnsetBoxAnnotator:
    """A red box around the source with its confidence above it. It flashes for `duration`
    frames after the onset, and again when the source moves or becomes clear (the pipeline's
    source revisions). While the confidence is below `SOURCE_UNSURE` (another place scores about
    as well, or no blood stood out) the box is dashed, labelled "source ?", and stays on the
    tracked point after the flash until the evidence is clear or the episode ends."""

    duration: int = 45
    period: int = 6
    _onset_at: int | None = None
    _center: tuple[float, float] | None = None
    _confidence: float = 0.0

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        if result.phase == "waiting":
            self._onset_at = None
            return frame
        if result.onset is not None and result.source is not None:
            self._onset_at, self._center = result.frame, (result.source.x, result.source.y)
            self._confidence = result.source.confidence
        revision = result.revision
        if revision is not None and revision.why != "located":
            self._onset_at, self._center = result.frame, (revision.x, revision.y)
            self._confidence = revision.confidence
        if self._onset_at is None:
            return frame
        unsure = self._confidence < SOURCE_UNSURE
        since = result.frame - self._onset_at
        if since >= self.duration and not unsure:
            return frame
        if since < self.duration and (since // (self.period // 2)) % 2 == 1:
            return frame  # the "off" half of the flash
        s = _scale(frame)
        half = int(40 * s)
        cx, cy = (result.track.x, result.track.y) if result.track else self._center
        x, y = int(round(cx)), int(round(cy))
        corners = [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)]
        for a, b in zip(corners, corners[1:] + corners[:1]):
            _edge(frame, a, b, max(1, int(round(3 * s))), int(8 * s) if unsure else 0)
        label = f"source ? {self._confidence:.2f}" if unsure else f"source {self._confidence:.2f}"
        font, thick = 0.5 * s, max(1, int(round(s)))
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        org = (x - half, y - half - int(6 * s))
        # on black: red text on bleeding tissue would not read
        cv2.rectangle(frame, (org[0] - 2, org[1] - th - 2), (org[0] + tw + 2, org[1] + base), (0, 0, 0), -1)
        cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, font, RED, thick, cv2.LINE_AA)
        return frame


def _edge(frame: np.ndarray, a: tuple[int, int], b: tuple[int, int], thick: int, dash: int) -> None:
    """A red line from a to b on a black outline (it must show on blood), in dashes of `dash` px
    with equal gaps (solid when dash is 0)."""
    length = int(np.hypot(b[0] - a[0], b[1] - a[1]))
    d = np.subtract(b, a) / max(length, 1)
    step = 2 * dash if dash > 0 else max(length, 1)
    pieces = [(np.add(a, d * t), np.add(a, d * min(t + (dash or length), length)))
              for t in range(0, max(length, 1), step)]
    for color, width in (((0, 0, 0), thick + 2), (RED, thick)):
        for p, q in pieces:
            cv2.line(frame, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, width, cv2.LINE_AA)


@dataclass
class OnsetCueAnnotator:
    """For `duration` frames after the onset: the onset detector's cue (why it was raised) under
    the status label and a thin yellow box where the cue was seen, so a false alarm shows its
    cause."""

    duration: int = 45
    _onset_at: int | None = None
    _cue: str | None = None
    _where: tuple[float, float, float, float] | None = None

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        if result.onset is not None:
            self._onset_at, self._cue, self._where = result.frame, result.onset.cue, result.onset.where
        if self._onset_at is None or self._cue is None or result.frame - self._onset_at >= self.duration:
            return frame
        s = _scale(frame)
        thick = max(1, int(round(s)))
        if self._where is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in self._where)
            cv2.rectangle(frame, (x0, y0), (x1, y1), YELLOW, thick, cv2.LINE_AA)
        label = f"cue: {self._cue}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s, thick)
        top = int(40 * s)
        cv2.rectangle(frame, (0, top), (tw + int(12 * s), top + th + base + int(8 * s)), (0, 0, 0), -1)
        cv2.putText(frame, label, (int(6 * s), top + th + int(4 * s)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s,
                    YELLOW, thick, cv2.LINE_AA)
        return frame


@dataclass
class TrackTrailAnnotator:
    """The tracked point, its confidence, and the last `length` positions."""

    length: int = 30
    _trail: deque = field(default_factory=lambda: deque(maxlen=30))

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        if result.phase == "waiting":
            self._trail.clear()
            return frame
        if result.track is None:
            return frame
        s = _scale(frame)
        p = (int(round(result.track.x)), int(round(result.track.y)))
        self._trail.append(p)
        pts = np.array(self._trail, np.int32).reshape(-1, 1, 2)
        if len(pts) > 1:
            cv2.polylines(frame, [pts], False, GREEN, max(1, int(round(2 * s))), cv2.LINE_AA)
        color = GREEN if result.track.visible else (240, 200, 40)
        cv2.circle(frame, p, max(2, int(round(6 * s))), color, -1, cv2.LINE_AA)
        cv2.circle(frame, p, max(3, int(round(9 * s))), WHITE, max(1, int(round(s))), cv2.LINE_AA)
        cv2.putText(frame, f"{result.track.confidence:.2f}", (p[0] + int(12 * s), p[1] - int(8 * s)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * s, WHITE, max(1, int(round(s))), cv2.LINE_AA)
        return frame


@dataclass
class OverlayRenderer:
    annotators: list = field(default_factory=lambda: [OnsetBannerAnnotator(), OnsetBoxAnnotator(),
                                                      OnsetCueAnnotator(), TrackTrailAnnotator()])

    def render(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        out = np.ascontiguousarray(frame.copy())
        for annotator in self.annotators:
            out = annotator.annotate(out, result)
        return out


class LiveWindow:
    """`--show`: an OpenCV window when a display and a GUI build of OpenCV exist, else a no-op
    with one warning (the headless wheel installed by default has no GUI)."""

    def __init__(self, title: str):
        import logging
        import os
        self.title = title
        self.enabled = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if self.enabled:
            try:
                cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            except cv2.error:
                self.enabled = False
        if not self.enabled:
            logging.getLogger(__name__).warning("--show: no display or no GUI support in OpenCV; "
                                                "writing files only")

    def show(self, rgb: np.ndarray) -> bool:
        """Draw a frame; False once the user pressed q/Esc or closed the window."""
        if not self.enabled:
            return True
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        return key not in (ord("q"), 27) and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        if self.enabled:
            cv2.destroyWindow(self.title)
