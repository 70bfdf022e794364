"""What the CLI commands do, as plain functions (the CLI only parses arguments)."""
from __future__ import annotations

import logging
import os
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.errors import InputError, note_kept
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.loading import load_stage, model_warnings
from bleedorigin.pipeline_config import shipped_config
from bleedorigin.utils.files import set_aside
from bleedorigin.utils.jsonio import JsonLinesWriter, write_json_atomic
from bleedorigin.utils.progress import track as progress_track

log = logging.getLogger(__name__)

# Frames before --frame that `locate` hands the localizer by default: what the pipeline holds.
LOCATE_HISTORY = shipped_config().episode.buffer_frames

ASSETS = Path(__file__).parent / "assets"
SAMPLE_CLIP = ASSETS / "sample" / "bleedsim_full.mp4"


# What stops a stream early but leaves the frames read so far worth keeping.
STREAM_BREAKS = (InputError, KeyboardInterrupt, OSError)


def _write_partial(out: Path, payload: dict[str, Any], error: BaseException) -> None:
    """Keep what was computed before the stream broke (`"complete": false`), note on the error
    where it went (the CLI names it in its one line), then let the error through."""
    payload["complete"] = False
    payload["error"] = str(error) or type(error).__name__
    try:
        write_json_atomic(out, payload)
    except (InputError, OSError):  # e.g. the disk that broke the run is still full
        log.debug("could not keep partial results in %s", out, exc_info=True)
        return
    note_kept(error, out)


def _completeness(reader: Any) -> bool:
    """True when the stream gave every frame its header announced; else says so in one line."""
    if reader.ended_early:
        log.warning("%s; results cover the frames read (\"complete\": false)", reader.shortfall())
        return False
    return True


def detect_onset(source: Any, out: Path, model: str | None, device: str, progress: bool) -> dict:
    detector = load_stage("onset", model, device)
    detector.reset()
    scores: list[float] = []
    onset: int | None = None
    confidence = 0.0
    with open_video(source) as reader:
        mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
        try:
            for item in progress_track(reader, reader.info.frames, "onset", progress, "frames"):
                step = detector.step(mapper.resize(item.image))
                scores.append(float(step.score))
                if onset is None and step.onset_frame is not None:
                    onset, confidence = int(step.onset_frame), float(step.score)
        except STREAM_BREAKS as e:
            _write_partial(out, {"onset_frame": onset, "confidence": confidence,
                                 "scores": scores}, e)
            raise
        complete = _completeness(reader)
    payload = {"onset_frame": onset, "confidence": confidence if onset is not None else
               float(max(scores, default=0.0)), "scores": scores, "complete": complete}
    write_json_atomic(out, payload)
    return payload


def _frame_with_history(source: str, frame: int, history: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frame `frame` (input resolution) and up to `history` frames before it (model resolution,
    oldest first; only those are kept while reading)."""
    if frame < 0:
        raise InputError(f"--frame must be >= 0, got {frame}")
    if history < 0:
        raise InputError(f"--history must be >= 0, got {history}")
    recent: deque[np.ndarray] = deque(maxlen=history)
    count = 0
    with open_video(source) as reader:
        mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
        for item in reader:
            count += 1
            if item.index == frame:
                return item.image, list(recent)
            if history:
                recent.append(mapper.resize(item.image))
    raise InputError(f"{source}: frame {frame} is past the end ({count} frames)")


def locate_source(source: str, frame: int, out: Path, model: str | None, device: str,
                  history: int | None = None) -> dict:
    """The source on frame `frame`; the localizer may use the `history` frames before it
    (default LOCATE_HISTORY)."""
    locator = load_stage("source", model, device)
    image, past = _frame_with_history(source, frame, LOCATE_HISTORY if history is None else history)
    mapper = FrameMapper((image.shape[1], image.shape[0]), MODEL_SIZE)
    p = locator.locate(mapper.resize(image), history=past or None)
    x, y = mapper.to_input(np.array([[p.x, p.y]]))[0]
    payload = {"frame": frame, "x": float(x), "y": float(y), "confidence": float(p.confidence),
               "history": len(past)}
    write_json_atomic(out, payload)
    return payload


def _tracker_mapper(tracker: Any, w: int, h: int) -> FrameMapper:
    """How frames reach the tracker: at the video's own resolution when it refines there
    (`native_frames`), else resized to the model resolution."""
    return FrameMapper((w, h), (w, h) if getattr(tracker, "native_frames", False) else MODEL_SIZE)


def track_point(source: Any, point: tuple[float, float], start: int, out: Path,
                model: str | None, device: str, progress: bool) -> dict:
    tracker = load_stage("track", model, device)
    if start < 0:
        raise InputError(f"--start must be >= 0, got {start}")
    rows: list[list[float]] = []
    with open_video(source) as reader:
        w, h = reader.info.width, reader.info.height
        x, y = point
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(f"--point {x} {y} is outside the {w}x{h} frame")
        mapper = _tracker_mapper(tracker, w, h)
        started = False
        try:
            for item in progress_track(reader, reader.info.frames, "tracking", progress, "frames"):
                if item.index < start:
                    continue
                small = mapper.resize(item.image)
                if not started:
                    mx, my = mapper.to_model(np.array([[x, y]]))[0]
                    tracker.start(small, (float(mx), float(my)), frame_index=item.index)
                    rows.append([float(x), float(y), 1.0])
                    started = True
                    continue
                tp = tracker.step(small)
                px, py = mapper.to_input(np.array([[tp.x, tp.y]]))[0]
                rows.append([float(px), float(py), float(tp.confidence)])
        except STREAM_BREAKS as e:
            _write_partial(out, {"start": start, "points": rows}, e)
            raise
        complete = _completeness(reader)
    if not started:
        raise InputError(f"{source}: --start {start} is past the end of the video")
    payload = {"start": start, "points": rows, "complete": complete}
    write_json_atomic(out, payload)
    return payload


def track_points(source: Any, queries: list[tuple[int, float, float]], out: Path, model: str | None,
                 device: str, progress: bool) -> dict:
    """Track every (frame, x, y) query from its frame to the end. A tracker that takes points
    mid-stream (`add_points`) tracks them all with one flow per frame pair; any other tracker
    runs once per point. Output: `{"tracks": [{"id", "start", "points": [[x, y, confidence],
    ...], "visible": [...]}]}`, one track per query in file order, one row per frame from its
    start frame to the end."""
    tracker = load_stage("track", model, device)
    shared = hasattr(tracker, "add_points") and hasattr(tracker, "start_many")
    trackers: dict[int, Any] = {}  # query index -> its own tracker (trackers without add_points)
    order: list[int] = []  # query indices in the shared tracker's point order
    tracks = [{"id": i, "start": f, "points": [], "visible": []} for i, (f, _, _) in enumerate(queries)]
    by_frame: dict[int, list[int]] = {}
    for i, (f, _, _) in enumerate(queries):
        by_frame.setdefault(f, []).append(i)
    with open_video(source) as reader:
        w, h = reader.info.width, reader.info.height
        for i, (f, x, y) in enumerate(queries):
            if not (0 <= x < w and 0 <= y < h):
                raise InputError(f"--points: point {i} ({x}, {y}) is outside the {w}x{h} frame")
        mapper = _tracker_mapper(tracker, w, h)
        first, last = min(by_frame), -1
        try:
            for item in progress_track(reader, reader.info.frames, "tracking", progress, "frames"):
                if item.index < first:
                    continue
                last = item.index
                small = mapper.resize(item.image)
                steps = _track_step(tracker, shared, trackers, order, small)
                for i, tp in steps:
                    px, py = mapper.to_input(np.array([[tp.x, tp.y]]))[0]
                    tracks[i]["points"].append([float(px), float(py), float(tp.confidence)])
                    tracks[i]["visible"].append(bool(tp.visible))
                new = by_frame.get(item.index, [])
                if new:
                    xy = [tuple(mapper.to_model(np.array([queries[i][1:]]))[0]) for i in new]
                    if shared and not order:
                        tracker.start_many(small, xy, frame_index=item.index)
                    elif shared:
                        tracker.add_points(xy)
                    for i, p in zip(new, xy):
                        if not shared:
                            trackers[i] = tracker if not trackers and i == new[0] else load_stage("track", model, device)
                            trackers[i].start(small, p, frame_index=item.index)
                        tracks[i]["points"].append([float(queries[i][1]), float(queries[i][2]), 1.0])
                        tracks[i]["visible"].append(True)
                    order.extend(new if shared else [])
        except STREAM_BREAKS as e:
            _write_partial(out, {"tracks": tracks}, e)
            raise
        complete = _completeness(reader)
    late = [f for f in by_frame if f > last]
    if late:
        raise InputError(f"--points: frame {min(late)} is past the end of the video ({last + 1} frames)")
    payload = {"tracks": tracks, "complete": complete}
    write_json_atomic(out, payload)
    return payload


def _track_step(tracker: Any, shared: bool, trackers: dict[int, Any], order: list[int],
                frame: np.ndarray) -> list[tuple[int, Any]]:
    """(query index, TrackPoint) of every point already started, moved into `frame`."""
    if shared:
        return list(zip(order, tracker.step_many(frame))) if order else []
    return [(i, tr.step(frame)) for i, tr in trackers.items()]


# What a run writes into its folder; a rerun first sets an earlier run's copies aside (and
# labels.json, the review's corrections of that earlier run).
RUN_FILES = ("result.json", "results.jsonl", "overlay.mp4", "timeline.png", "labels.json",
             ".overlay.partial.mp4")


def run_pipeline(source: Any, out: Path, onset_model: str | None, source_model: str | None,
                 track_model: str | None, device: str, overlay: bool, progress: bool,
                 show: bool = False, config: str | Path | None = None, overwrite: bool = False) -> Path:
    """Stream `source` through the pipeline: results.jsonl grows frame by frame; overlay.mp4,
    timeline.png and result.json appear when the stream ends (partial, `"complete": false`,
    when it breaks or is interrupted). An earlier run in `out` is refused unless `overwrite`;
    then it is moved to `out/previous/` first and deleted once this run has finished, so a
    crash never leaves two runs mixed."""
    from bleedorigin.io.video import VideoWriter
    from bleedorigin.pipeline import Pipeline
    from bleedorigin.render import LiveWindow, OverlayRenderer
    from bleedorigin.types import RunResult

    refuse_previous_run(out, overwrite)
    pipe = Pipeline.from_pretrained(config, device, onset_model, source_model, track_model)
    aside = set_aside(out, RUN_FILES)
    renderer = OverlayRenderer()
    scores: list[float] = []
    phases: list[str] = []
    error: BaseException | None = None
    complete = False  # until the stream has ended by itself with every announced frame
    with open_video(source) as reader, JsonLinesWriter(out / "results.jsonl") as jsonl:
        info = reader.info
        fps = float(info.fps or 30.0)
        writer = VideoWriter(out / "overlay.mp4", fps, (info.width, info.height)) if overlay else None
        window = LiveWindow("BleedOrigin") if show else None
        pipe.reset()
        try:
            for item in progress_track(reader, info.frames, "pipeline", progress, "frames"):
                res = pipe.step(item.image, item.time_s, fps)
                jsonl.write(res.to_dict())  # first: result.json never counts a frame missing here
                scores.append(res.onset_score)
                phases.append(res.phase)
                if writer is not None or window is not None:
                    picture = renderer.render(item.image, res)
                    if writer is not None:
                        writer.write(picture)
                    if window is not None and not window.show(picture):
                        break  # the user closed the window: stop like the end of the stream
            else:
                complete = _completeness(reader)
        except STREAM_BREAKS as e:
            error = e
        finally:
            if writer is not None:
                _finish_overlay(writer)
            if window is not None:
                window.close()
    result = RunResult(str(source), fps, info.width, info.height, len(scores), scores,
                       list(pipe.events), pipe.models, pipe.config.to_dict(), pipe.config.hash,
                       model_warnings(pipe.models), complete=complete and error is None)
    payload = result.to_dict()
    if error is not None:
        _keep_partial_run(out, payload, scores, phases, pipe, source, error)
        raise error
    write_timeline(out / "timeline.png", scores, phases, pipe, Path(str(source)).name)
    write_json_atomic(out / "result.json", payload)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return out / "result.json"


def refuse_previous_run(out: Path, overwrite: bool) -> None:
    """InputError when `out` holds files of an earlier run and `overwrite` is off."""
    present = [n for n in RUN_FILES if os.path.lexists(out / n)]
    if present and not overwrite:
        raise InputError(f"{out} holds an earlier run ({', '.join(present)}); pass --overwrite to "
                         "replace it or choose another --out")


def _finish_overlay(writer: Any) -> None:
    """Close the overlay (on errors too: the video up to the last good frame is kept); when even
    that fails (a full disk) drop the hidden partial file instead of leaving it behind."""
    try:
        writer.close()
    except (OSError, InputError, ValueError):
        log.debug("overlay could not be finished", exc_info=True)
        writer.abort()


def _keep_partial_run(out: Path, payload: dict[str, Any], scores: list[float], phases: list[str],
                      pipe: Any, source: Any, error: BaseException) -> None:
    """result.json (`"complete": false`) and timeline.png of the frames processed before `error`."""
    try:
        write_timeline(out / "timeline.png", scores, phases, pipe, Path(str(source)).name)
    except (OSError, InputError):
        log.debug("timeline of the partial run not written", exc_info=True)
    _write_partial(out / "result.json", payload, error)


def write_timeline(path: Path, scores: list[float], phases: list[str], pipe: Any, title: str) -> Path:
    """timeline.png of a run: onset score and threshold, onsets, episodes, track confidence."""
    from bleedorigin.eval.plots import run_timeline, timeline_record
    record = timeline_record(scores, phases, pipe.events, pipe.onset.score_threshold)
    return run_timeline(record, path, title)


def run_demo(out: Path, progress: bool, overwrite: bool = False) -> Path:
    if not SAMPLE_CLIP.is_file():
        raise InputError(f"sample clip missing from the installation: {SAMPLE_CLIP}")
    path = run_pipeline(str(SAMPLE_CLIP), out, None, None, None, "auto", True, progress, overwrite=overwrite)
    log.info("demo outputs: %s, %s, %s, %s", path, out / "overlay.mp4", out / "timeline.png",
             out / "results.jsonl")
    return path
