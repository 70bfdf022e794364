"""STIR-style evaluation: start points in, `preds.json` out, scored the STIR 2026 way.

Input files (JSON), keyed by sequence name:
- start points: `{seq: [[x, y], ...]}` (queries on frame 0), or the frame form below (queries on
  its first frame);
- end points (optional): `{seq: [[x, y], ...]}`, the truth on the sequence's last frame, all visible
  and unordered: each prediction is scored against the nearest true end point (STIRMetrics'
  convention for tattoo end points); or the frame form `{seq: {frame: {"coords": [[x, y], ...],
  "visibilities": [bool, ...]}}}`, point i against point i, hidden points count for AJ and OA.

A sequence `seq` is the video or image folder `DATA/seq`, `DATA/seq.<ext>` or `DATA/seq/video.mp4`.

Output `preds.json` (the STIR 2026 submission format): `{seq: {frame: {"coords": [[x, y], ...],
"visibilities": [bool, ...], "latency_ms": ms}}}` for every frame from the query frame on, in input
pixels; latency is the wall time of that frame (resize + all points), and the summary gives its
p95 over all frames but the first LATENCY_SKIP of each sequence (warm-up), as STIR ranks it.
Scores: AJ, ATA (= TAP-Vid's delta_avg) and OA over eval.tap.STIR_THRESHOLDS px of the input
video, pooled over every scored (point, frame), and the same for the zero-motion control (the
start points, never moved), as STIRMetrics prints beside every model.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.errors import InputError
from bleedorigin.eval import tap
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.utils.jsonio import read_json, write_json_atomic

LATENCY_SKIP = 10  # first frames of each sequence left out of the latency percentiles
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")

Truth = dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (coords (N, 2), visible (N,))


# -- files ----------------------------------------------------------------------------------------
def _coords(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(value, np.float64) if isinstance(value, list) else None
    if arr is None or (arr.size and (arr.ndim != 2 or arr.shape[1] != 2)) or not np.isfinite(arr).all():
        raise InputError(f"{where}: expected a list of [x, y] points")
    return arr.reshape(-1, 2)


def _frames(value: dict[str, Any], where: str) -> Truth:
    out: Truth = {}
    for key, item in value.items():
        if not str(key).isdigit() or not isinstance(item, dict) or "coords" not in item:
            raise InputError(f"{where}: expected {{frame: {{\"coords\": [...], \"visibilities\": [...]}}}}")
        xy = _coords(item["coords"], f"{where}, frame {key}")
        vis = np.asarray(item.get("visibilities", [True] * len(xy)), bool).reshape(-1)
        if len(vis) != len(xy):
            raise InputError(f"{where}, frame {key}: {len(xy)} coords but {len(vis)} visibilities")
        out[int(key)] = (xy, vis)
    return out


def read_points(path: str | Path) -> dict[str, Truth | np.ndarray]:
    """A STIR-style point file: {seq: (N, 2) array} (point lists) or {seq: {frame: (coords, visible)}}."""
    raw = read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{path}: expected {{sequence: points}} with at least one sequence")
    return {str(seq): _frames(v, f"{path}, {seq}") if isinstance(v, dict) else _coords(v, f"{path}, {seq}")
            for seq, v in raw.items()}


def queries(start: Truth | np.ndarray) -> tuple[int, np.ndarray]:
    """(query frame, (N, 2) start points) of one sequence of a start file."""
    if isinstance(start, np.ndarray):
        return 0, start
    first = min(start)
    return first, start[first][0]


def find_sequence(data: str | Path, seq: str) -> Path:
    data = Path(data)
    for candidate in (data / seq, *(data / f"{seq}{s}" for s in VIDEO_SUFFIXES), data / seq / "video.mp4"):
        if candidate.is_file() or (candidate.is_dir() and not (candidate / "video.mp4").is_file()):
            return candidate
    raise InputError(f"{data}: no video or image folder for sequence {seq!r}")


# -- tracking -------------------------------------------------------------------------------------
def track_sequence(tracker: PointTrackerBase, video: str | Path, start_frame: int,
                   points: np.ndarray) -> dict[str, dict[str, Any]]:
    """Track every start point from `start_frame` to the end: {frame: {coords, visibilities,
    latency_ms}} in input pixels. The tracker sees model-resolution frames (as in the Pipeline), or
    the video's own frames when it refines at the input resolution (`native_frames`, as in
    eval.protocol); one copy of it per point unless it tracks many at once (`start_many`/`step_many`)."""
    many = hasattr(tracker, "start_many") and hasattr(tracker, "step_many")
    trackers = [tracker] if many else [copy.deepcopy(tracker) for _ in points]
    out: dict[str, dict[str, Any]] = {}
    mapper: FrameMapper | None = None
    with open_video(video) as reader:
        for item in reader:
            if item.index < start_frame:
                continue
            t0 = time.perf_counter()
            if mapper is None:
                size = item.image.shape[1::-1]
                mapper = FrameMapper(size, size if getattr(tracker, "native_frames", False) else MODEL_SIZE)
            small = mapper.resize(item.image)
            if item.index == start_frame:
                model_xy = [tuple(p) for p in mapper.to_model(points)]
                if many:
                    tracker.start_many(small, model_xy, item.index)
                else:
                    for tr, p in zip(trackers, model_xy):
                        tr.start(small, p, frame_index=item.index)
                xy, vis = points, [True] * len(points)
            else:
                steps = tracker.step_many(small) if many else [tr.step(small) for tr in trackers]
                xy = mapper.to_input(np.array([(s.x, s.y) for s in steps], np.float64).reshape(-1, 2))
                vis = [bool(s.visible) for s in steps]
            ms = (time.perf_counter() - t0) * 1e3
            out[str(item.index)] = {"coords": [[round(float(x), 3), round(float(y), 3)] for x, y in xy],
                                    "visibilities": vis, "latency_ms": round(ms, 3)}
    if not out:
        raise InputError(f"{video}: no frame at or after the query frame {start_frame}")
    return out


def still_predictions(start_frame: int, points: np.ndarray, frames: Sequence[int]) -> dict[str, dict[str, Any]]:
    """The zero-motion control: the start points on every frame, always visible."""
    coords = [[float(x), float(y)] for x, y in points]
    return {str(f): {"coords": coords, "visibilities": [True] * len(points), "latency_ms": 0.0}
            for f in frames if f >= start_frame}


# -- scoring --------------------------------------------------------------------------------------
def _nearest(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    if not len(truth):
        return np.full(len(pred), np.inf)
    return np.linalg.norm(pred[:, None, :] - truth[None, :, :], axis=2).min(axis=1)


def score_pairs(preds: dict[str, dict[str, Any]], end: Truth | np.ndarray) -> tuple[list, list, list]:
    """(distance, predicted visible, truly visible) of every scored point of one sequence."""
    dist: list[float] = []
    pred_vis: list[bool] = []
    gt_vis: list[bool] = []
    if isinstance(end, np.ndarray):  # unordered end points on the last frame
        last = preds[str(max(int(f) for f in preds))]
        xy = np.asarray(last["coords"], np.float64).reshape(-1, 2)
        dist += list(_nearest(xy, end))
        pred_vis += list(last["visibilities"])
        gt_vis += [True] * len(xy)
        return dist, pred_vis, gt_vis
    for frame, (gt_xy, visible) in sorted(end.items()):
        p = preds.get(str(frame))
        if p is None:
            continue  # a truth frame before the query frame (or past the video) is not scored
        xy = np.asarray(p["coords"], np.float64).reshape(-1, 2)
        if len(xy) != len(gt_xy):
            raise InputError(f"frame {frame}: {len(xy)} tracked points but {len(gt_xy)} true points")
        dist += list(np.linalg.norm(xy - gt_xy, axis=1))
        pred_vis += list(p["visibilities"])
        gt_vis += list(visible)
    return dist, pred_vis, gt_vis


def latency_summary(preds: dict[str, dict[str, dict[str, Any]]], skip: int = LATENCY_SKIP) -> dict[str, Any]:
    ms = [frames[f]["latency_ms"] for frames in preds.values()
          for f in sorted(frames, key=int)[skip:]]
    if not ms:
        return {"frames": 0, "skipped_per_sequence": skip, "p95_ms": None, "mean_ms": None, "median_ms": None}
    return {"frames": len(ms), "skipped_per_sequence": skip, "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(np.mean(ms)), "median_ms": float(np.median(ms))}


def summarize(preds: dict[str, dict[str, dict[str, Any]]], end: dict[str, Truth | np.ndarray] | None) -> dict[str, Any]:
    """STIR 2026 block: latency always, AJ/ATA/OA (pooled) when end points are given."""
    out: dict[str, Any] = {"sequences": len(preds), "latency": latency_summary(preds)}
    if end is not None:
        pairs = [score_pairs(frames, end[seq]) for seq, frames in preds.items() if seq in end]
        dist, pred_vis, gt_vis = ([v for p in pairs for v in p[i]] for i in range(3))
        m = tap.jaccard_metrics(dist, pred_vis, gt_vis, tap.STIR_THRESHOLDS)
        out.update(aj=m["aj"], ata=m["delta_avg"], oa=m["oa"], jaccard=m["jaccard"], accuracy=m["delta"],
                   n=m["n"], scored_sequences=len(pairs))
    return out


def evaluate_stir(data: str | Path, start_file: str | Path, end_file: str | Path | None,
                  trackers: dict[str, PointTrackerBase], out: str | Path) -> dict[str, Any]:
    """Track every sequence of `start_file` with each of `trackers` ({name: tracker}), write
    OUT/<name>/preds.json and return {"thresholds", "models": {name: block}, "control": block}."""
    starts = read_points(start_file)
    end = read_points(end_file) if end_file is not None else None
    if end is not None and not set(starts) & set(end):
        raise InputError(f"{end_file}: no sequence in common with {start_file}")
    videos = {seq: find_sequence(data, seq) for seq in starts}
    result: dict[str, Any] = {"thresholds": list(tap.STIR_THRESHOLDS), "units": "px of the input video",
                              "models": {}}
    frames_seen: dict[str, list[int]] = {}
    for name, tracker in trackers.items():
        preds = {}
        for seq, video in videos.items():
            first, points = queries(starts[seq])
            preds[seq] = track_sequence(tracker, video, first, points)
            frames_seen[seq] = [int(f) for f in preds[seq]]
        path = Path(out) / name / "preds.json"
        write_json_atomic(path, preds, indent=None)
        result["models"][name] = {**summarize(preds, end), "preds": str(path)}
    if frames_seen:
        control = {seq: still_predictions(*queries(starts[seq]), frames_seen[seq]) for seq in frames_seen}
        result["control"] = summarize(control, end)
        result["control"].pop("latency")
    return result
