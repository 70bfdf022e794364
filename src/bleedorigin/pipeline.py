"""Deployment mode of Algorithm 1: waiting for bleeding -> locate the source -> track it,
revising the source while the episode goes on.

The onset detector may place the onset a few frames before the frame where it raises it. The
source is located on one buffered frame (`episode.locate_at`: the decision frame, the onset
frame, or, shipped, the onset frame where the presence check dated the onset by the blood it
counted and the decision frame otherwise), with the frames from just before the onset up to it
as history; the tracker carries it back to the onset, so the event's track starts there, and
forward to the decision frame.
The localizer's next best places are tracked with it (when the tracker tracks several points at
once); every few frames the evidence is weighed again and the source moves to another candidate
when it clearly wins (bleedorigin.source_revision). The event's track is then that candidate's
path from the onset on, and every placement is kept in `event.source_revisions`.

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
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.loading import load_stage, model_id, model_warnings
from bleedorigin.models.onset.present import CUE_FRESH, CUE_PRESENT
from bleedorigin.pipeline_config import STAGES, PipelineConfig, load_pipeline_config
from bleedorigin.source_consensus import CANDIDATES, vote, voting_frames
from bleedorigin.source_revision import Place, SourceReviser, radius_share, weigh_frame
from bleedorigin.types import BleedingEvent, FrameResult, Onset, Point, RunResult, SourceRevision, TrackPoint
from bleedorigin.utils.progress import track as progress_track
from bleedorigin.vision.color import AREA_SIZE, BLOOD_THRESHOLD, area_copy, blood_cover, red_mask

log = logging.getLogger(__name__)


@dataclass
class _Episode:
    event: BleedingEvent
    paths: list[list[TrackPoint]]  # every candidate's path from the onset (input pixels); event.track is one
    reviser: SourceReviser
    exclude: np.ndarray | None  # old blood the source is not placed on (locate's exclude)
    evaluated_at: int  # frame of the latest weighing of the evidence
    # candidates that joined after the onset, carried with the source by a fixed offset (input
    # px) until the source moves to one of them: restarting the tracker for every newcomer
    # would cost the source its long-range references
    carried: dict[int, tuple[float, float]] = field(default_factory=dict)
    quiet_run: int = 0  # consecutive frames with low confidence or no blood near the point


@dataclass
class Pipeline:
    onset: Any
    source: Any
    tracker: Any
    config: PipelineConfig = field(default_factory=load_pipeline_config)

    def __post_init__(self) -> None:
        self._mapper: FrameMapper | None = None
        self.reset()

    @classmethod
    def from_pretrained(cls, config: PipelineConfig | str | Path | None = None, device: str = "auto",
                        onset_model: str | None = None, source_model: str | None = None,
                        track_model: str | None = None) -> Pipeline:
        """The pipeline of `config` (a PipelineConfig or a YAML file; default: the shipped
        configs/pipeline.yaml), with the models named here instead of the file's."""
        cfg = config if isinstance(config, PipelineConfig) else load_pipeline_config(config)
        cfg = cfg.with_models(onset=onset_model, source=source_model, track=track_model)
        stages = [load_stage(s, cfg.stage(s).model, device, cfg.stage(s).options) for s in STAGES]
        return cls(*stages, cfg)

    @property
    def models(self) -> dict[str, str]:
        return {"onset": model_id(self.onset), "source": model_id(self.source),
                "track": model_id(self.tracker)}

    def reset(self) -> None:
        self.onset.reset()
        self._onset_origin = 0  # stream index of the detector's frame 0 (it restarts after each episode)
        self._frame_index = 0
        self._buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=self.config.episode.buffer_frames)
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
        # the localizer sees the frame `locate_at` names, with the frames from `history_frames`
        # before the onset up to it
        at = self._locate_frame(onset_frame, index, out.cue)
        seen = dict(self._buffer)[at]
        history = [img for i, img in self._buffer if onset_frame - self.config.episode.history_frames <= i < at]
        t0 = time.perf_counter()
        # after a re-arm, blood the last episode left in view is not where the new bleed starts;
        # passed only when known, so a plug-in locator without `exclude` still runs
        old = self.onset.leftover_blood()
        k = self.config.revision.candidates if self._tracks_many else 1
        if self.config.episode.consensus and at == index and hasattr(self.tracker, "add_points"):
            places = self._consensus(onset_frame, index, k, old)
            p = Point(*places[0])
        else:
            evidence = weigh_frame(self.source, seen, history or None, k, old)
            p, places = evidence.point, evidence.places
        timings["source"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        points = [(x, y) for x, y, _ in places]
        paths = self._carry_located(seen, points, p.confidence, at, onset_frame, index)
        timings["track"] = (time.perf_counter() - t0) * 1e3
        track = paths[0]
        first = track[0]  # the source where the bleeding started (the onset frame)
        located = SourceRevision(index, track[-1].x, track[-1].y, p.confidence, "located")
        event = BleedingEvent(onset, Point(first.x, first.y, p.confidence), track, [located])
        reviser = SourceReviser(self.config.revision, places, small.shape[1], p.confidence)
        self._episode = _Episode(event, paths, reviser, old, index)
        self.events.append(event)
        log.info("bleeding onset at frame %d (raised at frame %d)", onset_frame, index)
        return FrameResult(index, t, "bleeding", out.score, onset, event.source, event.track[-1], timings,
                           located)

    def _consensus(self, onset_frame: int, index: int, k: int, old: np.ndarray | None) -> list[Place]:
        """Up to `k` places (model pixels of this frame) voted on by the localizer's candidates on
        `episode.consensus` buffered frames from the onset to this one, each located with its own
        history and carried here by the tracker in one pass (bleedorigin.source_consensus)."""
        chosen = set(voting_frames(onset_frame, index, self.config.episode.consensus))
        kw = {} if old is None else {"exclude": old}
        since = onset_frame - self.config.episode.history_frames
        votes: list[tuple[int, float]] = []  # per carried candidate: frame found on, probability
        where: list[tuple[float, float]] = []  # per carried candidate: where it is now
        first = min(chosen)
        for i, img in self._buffer:
            if i < first:
                continue
            if where:
                where = [(tp.x, tp.y) for tp in self.tracker.step_many(img)]
            if i not in chosen:
                continue
            history = [h for j, h in self._buffer if since <= j < i] or None
            found = self.source.locate_candidates(img, history=history, k=CANDIDATES, **kw)
            points = [(c.x, c.y) for c in found]
            if where:
                self.tracker.add_points(points)
            else:
                self.tracker.start_many(img, points, frame_index=i)
            where += points
            votes += [(i, float(c.confidence)) for c in found]
        radius = radius_share(self.source) * self._buffer[-1][1].shape[1]
        return vote([(f, x, y, q) for (f, q), (x, y) in zip(votes, where)], radius, k)

    @property
    def _tracks_many(self) -> bool:
        return hasattr(self.tracker, "start_many") and hasattr(self.tracker, "step_many")

    def _start(self, small: np.ndarray, points: list[tuple[float, float]], index: int) -> None:
        if len(points) > 1:
            self.tracker.start_many(small, points, frame_index=index)
        else:
            self.tracker.start(small, points[0], frame_index=index)

    def _step(self, small: np.ndarray, k: int) -> list[TrackPoint]:
        return self.tracker.step_many(small) if k > 1 else [self.tracker.step(small)]

    def _locate_frame(self, onset_frame: int, index: int, cue: str | None) -> int:
        """The buffered frame the localizer sees (`episode.locate_at`). "blood": the presence check
        dates an onset at the first frame its blood passed the threshold, a frame that shows the
        bleed; the network's date (the start of the red area's rise) can come before any blood shows."""
        how = self.config.episode.locate_at
        if how == "onset" or (how == "blood" and cue in (CUE_PRESENT, CUE_FRESH)):
            return onset_frame
        return index

    def _carry_located(self, seen: np.ndarray, points: list[tuple[float, float]], confidence: float, at: int,
                       onset_frame: int, index: int) -> list[list[TrackPoint]]:
        """The candidates (model pixels of buffered frame `at`, `seen`) carried back through the
        buffered frames to the onset, then tracked forward from `at` to this frame, the tracker left
        running on them; per candidate its track points (input pixels) from the onset to this frame."""
        earlier = [(i, img) for i, img in self._buffer if onset_frame <= i < at]
        later = [(i, img) for i, img in self._buffer if at < i <= index]
        backs: list[list[TrackPoint]] = [[] for _ in points]
        if earlier:
            self._start(seen, points, at)
            for i, img in reversed(earlier):
                for back, tp in zip(backs, self._step(img, len(points))):
                    back.append(self._to_input_track(tp, i))
        self._start(seen, points, at)
        paths = [back[::-1] + [self._to_input_track(TrackPoint(at, x, y, confidence, True), at)]
                 for back, (x, y) in zip(backs, points)]
        for i, img in later:
            for path, tp in zip(paths, self._step(img, len(points))):
                path.append(self._to_input_track(tp, i))
        return paths

    def _track_step(self, index: int, t: float, small: np.ndarray,
                    timings: dict[str, float]) -> FrameResult:
        assert self._episode is not None
        episode = self._episode
        t0 = time.perf_counter()
        # the tracker follows one point per candidate, in their order (a carried one's is unused)
        for cid, tp in enumerate(self._step(small, len(episode.paths))):
            if cid not in episode.carried:
                episode.paths[cid].append(self._to_input_track(tp, index))
        source = episode.paths[episode.reviser.current][-1]
        for cid, (dx, dy) in episode.carried.items():
            episode.paths[cid].append(TrackPoint(index, source.x + dx, source.y + dy, source.confidence, source.visible))
        points = [path[-1] for path in episode.paths]
        timings["track"] = (time.perf_counter() - t0) * 1e3
        revision = None
        if len(points) > 1 and index - episode.evaluated_at >= self.config.revision.every:
            t0 = time.perf_counter()
            revision = self._revise(episode, index, small, points)
            timings["source"] = (time.perf_counter() - t0) * 1e3
        tp = episode.paths[episode.reviser.current][-1]
        quiet = self._blood_near(small, tp) < self.config.episode.end_blood_fraction
        episode.quiet_run = episode.quiet_run + 1 if quiet else 0
        if episode.quiet_run >= self.config.episode.end_patience:
            log.info("bleeding episode ended at frame %d", index)
            self._episode = None
            self.onset.rearm()  # blood left lying in view is not a new bleed
            self._onset_origin = index + 1
        return FrameResult(index, t, "tracking", 1.0, track=tp, timings_ms=timings, revision=revision)

    def _revise(self, episode: _Episode, index: int, small: np.ndarray,
                points: list[TrackPoint]) -> SourceRevision | None:
        """Weigh the evidence on this frame (the localizer's ranked places, with the frames before
        it as history) at where every candidate is now; a move makes the event's track the new
        candidate's path. Returns the record when the source moved or became clear."""
        assert self._mapper is not None
        cfg = self.config.revision
        episode.evaluated_at = index
        history = [img for i, img in self._buffer if index - cfg.history <= i < index]
        evidence = weigh_frame(self.source, small, history or None, len(points), episode.exclude)
        where = self._mapper.to_model(np.array([[p.x, p.y] for p in points]))
        decision = episode.reviser.weigh(where, evidence)
        if decision.admitted is not None:
            self._admit(episode, decision.admitted)
        if decision.current in episode.carried:
            self._track_all(episode, small)
        event = episode.event
        event.track = episode.paths[decision.current]
        first = event.track[0]
        event.source = Point(first.x, first.y, decision.confidence)
        if not decision.why:
            return None
        now = event.track[-1]
        revision = SourceRevision(index, now.x, now.y, decision.confidence, decision.why)
        event.source_revisions.append(revision)
        log.info("source %s at frame %d (confidence %.2f)", decision.why, index, decision.confidence)
        return revision

    def _admit(self, episode: _Episode, admitted: tuple[int, tuple[float, float]]) -> None:
        """A new place replaces candidate `slot`: carried with the source by the offset between
        them now, its path before now too (the tracker keeps following what it follows)."""
        slot, xy = admitted
        assert self._mapper is not None
        nx, ny = self._mapper.to_input(np.array([xy]))[0]
        source = episode.paths[episode.reviser.current]
        dx, dy = float(nx - source[-1].x), float(ny - source[-1].y)
        episode.paths[slot] = [TrackPoint(p.frame, p.x + dx, p.y + dy, p.confidence, p.visible) for p in source]
        episode.carried[slot] = (dx, dy)

    def _track_all(self, episode: _Episode, small: np.ndarray) -> None:
        """The tracker restarted on every candidate where it is now (the source moved to a
        carried one, which from now on is tracked itself)."""
        assert self._mapper is not None
        where = self._mapper.to_model(np.array([[p[-1].x, p[-1].y] for p in episode.paths]))
        self._start(small, [(float(x), float(y)) for x, y in where], episode.paths[0][-1].frame)
        episode.carried = {}

    def _blood_near(self, small: np.ndarray, tp: TrackPoint) -> float:
        """Share of blood pixels in a patch around the tracked point: by `red_mask` (model
        pixels) and, only when that finds too little (it costs more), by `blood_cover` on its
        AREA_SIZE copy of the frame (its thresholds come from the whole view)."""
        assert self._mapper is not None
        xy = self._mapper.to_model(np.array([[tp.x, tp.y]]))[0]
        red = _patch(small, xy, self.config.episode.end_patch)
        share = float((red_mask(red) > BLOOD_THRESHOLD).mean()) if red.size else 0.0
        if share >= self.config.episode.end_blood_fraction:
            return share
        area = area_copy(small)
        scale = AREA_SIZE[0] / small.shape[1]
        blood = _patch(blood_cover(area)[0], xy * scale, max(2, round(self.config.episode.end_patch * scale)))
        return max(share, float(blood.mean()) if blood.size else 0.0)

    def _clamp_to_buffer(self, frame: int) -> int:
        oldest, newest = self._buffer[0][0], self._buffer[-1][0]
        return int(min(max(frame, oldest), newest))

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
                         scores, list(self.events), self.models, self.config.to_dict(), self.config.hash,
                         model_warnings(self.models))


def _patch(img: np.ndarray, xy: np.ndarray, side: int) -> np.ndarray:
    """The `side`-pixel square of `img` around `xy`, clipped to the image."""
    half = side // 2
    h, w = img.shape[:2]
    x0, y0 = int(np.clip(xy[0] - half, 0, w - 1)), int(np.clip(xy[1] - half, 0, h - 1))
    return img[y0:y0 + 2 * half, x0:x0 + 2 * half]
