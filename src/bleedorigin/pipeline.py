"""Deployment mode of Algorithm 1: waiting for bleeding -> locate the source once -> track it.

The onset detector may place the onset a few frames before the frame where it raises it. The
source is located at that decision frame, with the frames from just before the onset up to it
as history, then carried back to the onset by the tracker so the event's track starts there.

Frames are resized once to the model resolution; every stage sees that frame and the
pipeline maps points back to input pixels. After a bleeding episode ends (the tracked point's
confidence stays low) the pipeline goes back to waiting, so one video can hold several events.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.loading import load_stage, model_id
from bleedorigin.types import BleedingEvent, FrameResult, Onset, Point, RunResult, TrackPoint
from bleedorigin.utils.progress import track as progress_track
from bleedorigin.vision.color import AREA_SIZE, area_copy, blood_cover, red_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    onset_model: str | None = None  # None: the stage's default (models.loading.DEFAULT_MODELS)
    source_model: str | None = None
    track_model: str | None = None
    device: str = "auto"
    # An episode ends when the blood around the tracked point stays below this fraction, by
    # `red_mask` and by the bleeding-present check's masks (real dark and brownish blood, which
    # `red_mask` misses). Tracker confidence is not used: it is expected to drop while blood
    # covers the source.
    end_blood_fraction: float = 0.02
    end_patience: int = 90  # for this many consecutive frames
    end_patch: int = 64  # side (model pixels) of the patch around the point checked for blood
    buffer_frames: int = 90  # recent frames kept so a back-dated onset can be located and caught up
    history_frames: int = 10  # frames before the onset handed to the localizer (with those after it)


@dataclass
class _Episode:
    event: BleedingEvent
    quiet_run: int = 0  # consecutive frames with low confidence or no blood near the point


@dataclass
class Pipeline:
    onset: Any
    source: Any
    tracker: Any
    config: PipelineConfig = field(default_factory=PipelineConfig)

    def __post_init__(self) -> None:
        self._mapper: FrameMapper | None = None
        self.reset()

    @classmethod
    def from_pretrained(cls, config: PipelineConfig | None = None, **overrides: Any) -> Pipeline:
        cfg = config or PipelineConfig(**overrides)
        return cls(load_stage("onset", cfg.onset_model, cfg.device),
                   load_stage("source", cfg.source_model, cfg.device),
                   load_stage("track", cfg.track_model, cfg.device), cfg)

    @property
    def models(self) -> dict[str, str]:
        return {"onset": model_id(self.onset), "source": model_id(self.source),
                "track": model_id(self.tracker)}

    def reset(self) -> None:
        self.onset.reset()
        self._onset_origin = 0  # stream index of the detector's frame 0 (it restarts after each episode)
        self._frame_index = 0
        self._buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=self.config.buffer_frames)
        self._episode: _Episode | None = None
        self.events: list[BleedingEvent] = []

    # -- streaming -------------------------------------------------------------------------
    def step(self, frame: np.ndarray, time_s: float | None = None, fps: float = 30.0) -> FrameResult:
        """Consume the next frame (RGB uint8, input resolution)."""
        h, w = frame.shape[:2]
        if self._mapper is None or self._mapper.in_size != (w, h):
            self._mapper = FrameMapper((w, h), MODEL_SIZE)
        index = self._frame_index
        self._frame_index += 1
        t = index / fps if time_s is None else time_s
        small = self._mapper.resize(frame)
        self._buffer.append((index, small))
        timings: dict[str, float] = {}
        if self._episode is None:
            return self._wait_step(index, t, small, fps, timings)
        return self._track_step(index, t, small, timings)

    def _wait_step(self, index: int, t: float, small: np.ndarray, fps: float,
                   timings: dict[str, float]) -> FrameResult:
        t0 = time.perf_counter()
        out = self.onset.step(small)
        timings["onset"] = (time.perf_counter() - t0) * 1e3
        if out.onset_frame is None:
            return FrameResult(index, t, "waiting", out.score, timings_ms=timings)
        onset_frame = self._clamp_to_buffer(self._onset_origin + out.onset_frame)
        where = None if out.where is None else tuple(self._mapper.to_input(  # type: ignore[union-attr]
            np.array(out.where, float).reshape(2, 2)).reshape(-1))
        onset = Onset(onset_frame, onset_frame / fps, out.score, out.cue, where)
        # decision time: the localizer sees the frame where the onset was raised, with the frames
        # from `history_frames` before the (back-dated) onset up to it
        history = [img for i, img in self._buffer if onset_frame - self.config.history_frames <= i < index]
        t0 = time.perf_counter()
        # after a re-arm, blood the last episode left in view is not where the new bleed starts;
        # passed only when known, so a plug-in locator without `exclude` still runs
        old = self.onset.leftover_blood()
        p = self.source.locate(small, history=history or None, **({} if old is None else {"exclude": old}))
        timings["source"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        track = self._track_back(small, p, index, onset_frame)
        self.tracker.start(small, (p.x, p.y), frame_index=index)
        timings["track"] = (time.perf_counter() - t0) * 1e3
        first = track[0]  # the source where the bleeding started (the onset frame)
        event = BleedingEvent(onset, Point(first.x, first.y, p.confidence))
        event.track.extend(track)
        self._episode = _Episode(event)
        self.events.append(event)
        log.info("bleeding onset at frame %d (raised at frame %d)", onset_frame, index)
        return FrameResult(index, t, "bleeding", out.score, onset, event.source, event.track[-1], timings)

    def _track_back(self, small: np.ndarray, p: Point, index: int, onset_frame: int) -> list[TrackPoint]:
        """The located point carried back from the decision frame to the onset through the
        buffered frames; track points (input pixels) from the onset to the decision frame."""
        here = self._to_input_point(p)
        back = [TrackPoint(index, here.x, here.y, p.confidence, True)]
        earlier = [(i, img) for i, img in self._buffer if onset_frame <= i < index]
        if earlier:
            self.tracker.start(small, (p.x, p.y), frame_index=index)
            for i, img in reversed(earlier):
                back.append(self._to_input_track(self.tracker.step(img), i))
        return back[::-1]

    def _track_step(self, index: int, t: float, small: np.ndarray,
                    timings: dict[str, float]) -> FrameResult:
        assert self._episode is not None
        t0 = time.perf_counter()
        tp = self._to_input_track(self.tracker.step(small), index)
        timings["track"] = (time.perf_counter() - t0) * 1e3
        episode = self._episode
        episode.event.track.append(tp)
        quiet = self._blood_near(small, tp) < self.config.end_blood_fraction
        episode.quiet_run = episode.quiet_run + 1 if quiet else 0
        if episode.quiet_run >= self.config.end_patience:
            log.info("bleeding episode ended at frame %d", index)
            self._episode = None
            self.onset.rearm()  # blood left lying in view is not a new bleed
            self._onset_origin = index + 1
        return FrameResult(index, t, "tracking", 1.0, track=tp, timings_ms=timings)

    def _blood_near(self, small: np.ndarray, tp: TrackPoint) -> float:
        """Share of blood pixels in a patch around the tracked point: by `red_mask` (model
        pixels) and, only when that finds too little (it costs more), by `blood_cover` on its
        AREA_SIZE copy of the frame (its thresholds come from the whole view)."""
        assert self._mapper is not None
        xy = self._mapper.to_model(np.array([[tp.x, tp.y]]))[0]
        red = _patch(small, xy, self.config.end_patch)
        share = float((red_mask(red) > 0.5).mean()) if red.size else 0.0
        if share >= self.config.end_blood_fraction:
            return share
        area = area_copy(small)
        scale = AREA_SIZE[0] / small.shape[1]
        blood = _patch(blood_cover(area)[0], xy * scale, max(2, round(self.config.end_patch * scale)))
        return max(share, float(blood.mean()) if blood.size else 0.0)

    def _clamp_to_buffer(self, frame: int) -> int:
        oldest, newest = self._buffer[0][0], self._buffer[-1][0]
        return int(min(max(frame, oldest), newest))

    def _to_input_point(self, p: Point) -> Point:
        assert self._mapper is not None
        x, y = self._mapper.to_input(np.array([[p.x, p.y]]))[0]
        return Point(float(x), float(y), p.confidence)

    def _to_input_track(self, tp: TrackPoint, index: int) -> TrackPoint:
        assert self._mapper is not None
        x, y = self._mapper.to_input(np.array([[tp.x, tp.y]]))[0]
        return TrackPoint(index, float(x), float(y), tp.confidence, tp.visible)

    # -- whole videos ------------------------------------------------------------------------
    def stream(self, source: Any, progress: bool = False) -> Iterator[FrameResult]:
        """Generator of FrameResult, one per decoded frame (video file, folder, camera, URL)."""
        self.reset()
        with open_video(source) as reader:
            fps = reader.info.fps or 30.0
            frames = progress_track(reader, total=reader.info.frames, description="frames",
                                    enabled=progress, unit="frames")
            for item in frames:
                yield self.step(item.image, item.time_s, fps)

    def run(self, source: Any, progress: bool = True) -> RunResult:
        with open_video(source) as reader:
            info = reader.info
        scores = [r.onset_score for r in self.stream(source, progress)]
        return RunResult(str(source), float(info.fps), info.width, info.height, len(scores),
                         scores, list(self.events), self.models)


def _patch(img: np.ndarray, xy: np.ndarray, side: int) -> np.ndarray:
    """The `side`-pixel square of `img` around `xy`, clipped to the image."""
    half = side // 2
    h, w = img.shape[:2]
    x0, y0 = int(np.clip(xy[0] - half, 0, w - 1)), int(np.clip(xy[1] - half, 0, h - 1))
    return img[y0:y0 + 2 * half, x0:x0 + 2 * half]
