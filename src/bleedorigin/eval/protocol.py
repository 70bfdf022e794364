"""Evaluation mode of Algorithm 1 (paper section 4.3): each stage scored on its own, per clip.

- onset: stream the clip from frame 0, the first raised onset is the prediction; real sample
  clips (sparse) are scored as "real bleeding present" (`real_bleeding`);
- source: the localizer runs on the GT onset frame (sparse clips: their first labelled frame),
  with the frames before it as history;
- track: the tracker starts from the GT point at the first labelled frame (full clips: the GT
  onset) and runs to the end; every later labelled frame is scored, and every frame when the
  clip has dense truth (gt.npz `source_xy`, or labels_dense.json of an imported clip).
Deployment mode (the Pipeline end to end) is scored in eval.e2e.

Predictors see frames resized to the model resolution (as in the Pipeline); their points are
mapped back to input pixels before scoring. Errors are in 512x384 pixels (eval.metrics).
Every function returns a plain JSON-serialisable dict ("record"), cached by eval.cache.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.eval import metrics, tap
from bleedorigin.io.clip import read_arrays
from bleedorigin.io.video import FrameMapper, open_video

log = logging.getLogger(__name__)

ONSET_KINDS = ("detect", "full", "negative")
SOURCE_KINDS = ("detect", "full", "sparse")
TRACK_KINDS = ("track_short", "track_long", "sparse", "full")
E2E_KINDS = ("full",)
PRESENT_WITHIN = 30  # frames: real bleeding must be flagged with an onset within this of its start
HISTORY_FRAMES = 10  # frames before the onset handed to the localizer (as the Pipeline does)
FRAME_BUDGET_MB = 384  # resized frames kept in memory for multi-point clips (else re-decoded)

XY = tuple[float, float]


def clip_meta(clip: Any) -> dict[str, Any]:
    """The grouping keys every record carries (metrics.json is grouped by them)."""
    return {"clip": clip.id, "kind": clip.kind, "scenario": clip.scenario or "unknown",
            "site": clip.site or "unknown", "patient": clip.patient, "split": clip.split,
            "image_size": [int(clip.width), int(clip.height)]}


def applicable(stage: str, clip: Any) -> bool:
    """Whether `clip` is scored for `stage` under this protocol."""
    if stage == "onset":
        if clip.kind == "sparse":
            return real_bleeding(clip) is not None
        return clip.kind in ONSET_KINDS and (clip.kind == "negative" or clip.onset_frame is not None)
    if stage == "source":
        return source_query(clip) is not None
    if stage == "track":
        return track_queries(clip) is not None
    if stage == "e2e":
        return episode_start(clip) is not None and dense_source(clip) is not None
    raise ValueError(f"unknown stage {stage!r}")


# -- ground truth -----------------------------------------------------------------------------
def dense_source(clip: Any) -> np.ndarray | None:
    """Dense truth of the (single) point, (T, 2) input pixels, NaN on frames without it: gt.npz
    `source_xy` (BleedSim) or an imported clip's `labels_dense.json`; None when there is neither."""
    if getattr(clip, "dense_labels", None) is not None and Path(clip.dense_labels).is_file():
        from bleedorigin.io.importers import read_sparse_labels
        labels = read_sparse_labels(Path(clip.dense_labels))
        out = np.full((max(clip.num_frames, max(labels, default=-1) + 1), 2), np.nan)
        for f, pts in labels.items():
            if pts and pts[0] is not None:
                out[f] = pts[0]
        return out
    if clip.gt is None or not Path(clip.gt).is_file():
        return None
    source = read_arrays(clip.gt, "source_xy").get("source_xy")
    return None if source is None else np.asarray(source, np.float64)


def dense_visible(clip: Any) -> np.ndarray | None:
    """Whether the dense truth's point is in view on each frame (gt.npz `source_visible`), or None
    when the clip does not say (imported dense labels mark a point wherever it was seen)."""
    if clip.gt is None or not Path(clip.gt).is_file():
        return None
    visible = read_arrays(clip.gt, "source_visible").get("source_visible")
    return None if visible is None else np.asarray(visible, bool)


def _label_point(clip: Any, frame: int, k: int = 0) -> XY | None:
    pts = clip.labels.get(frame) or []
    p = pts[k] if k < len(pts) else None
    return None if p is None else (float(p[0]), float(p[1]))


def _onset_point(clip: Any) -> XY | None:
    """The bleeding source at the GT onset: its label, else the dense truth."""
    p = _label_point(clip, clip.onset_frame)
    if p is None:
        dense = dense_source(clip)
        if dense is not None and clip.onset_frame < len(dense):
            p = (float(dense[clip.onset_frame, 0]), float(dense[clip.onset_frame, 1]))
    return p


def real_bleeding(clip: Any) -> bool | None:
    """Whether a real sample clip bleeds: single-point clips label the bleeding source (the ESD
    samples, active bleeding from frame 0), multi-point clips label tissue/instruments
    (VL-SurgPT, no bleeding); clips without labels carry their status from meta.json (bleeding
    from `onset_frame`). None when neither tells."""
    if clip.kind != "sparse":
        return None
    if not clip.labels:
        return getattr(clip, "bleeding", None)
    return len(clip.labels[min(clip.labels)]) == 1


def real_bleeding_start(clip: Any) -> int:
    """First bleeding frame of a bleeding real clip: its stated start (meta.json), else 0 (the
    labelled ESD samples bleed from their first frame)."""
    return 0 if clip.onset_frame is None else int(clip.onset_frame)


def episode_start(clip: Any) -> int | None:
    """First frame of the bleeding episode deployment mode is scored on: the GT onset of a
    `full` clip, the first bleeding frame of a real bleeding clip; None for other clips."""
    if clip.kind in E2E_KINDS:
        return None if clip.onset_frame is None else int(clip.onset_frame)
    if clip.kind == "sparse" and real_bleeding(clip):
        return real_bleeding_start(clip)
    return None


def source_query(clip: Any) -> tuple[int, XY] | None:
    """(frame, GT source) the localizer is scored on, or None when the clip has none.
    Multi-point sparse clips (e.g. VL-SurgPT) mark tissue/instrument points, not one
    bleeding source, so they are not localisation clips."""
    if clip.kind in ("detect", "full") and clip.onset_frame is not None:
        p = _onset_point(clip)
        return None if p is None else (int(clip.onset_frame), p)
    if clip.kind == "sparse" and clip.labels:
        first = min(clip.labels)
        pts = clip.labels[first]
        if len(pts) == 1 and pts[0] is not None:
            return first, (float(pts[0][0]), float(pts[0][1]))
    return None


def track_queries(clip: Any) -> tuple[int, list[tuple[int, XY]]] | None:
    """(start frame, [(point index, GT start point), ...]) or None. Null start points are skipped."""
    if clip.kind not in TRACK_KINDS:
        return None
    if clip.kind == "full":
        if clip.onset_frame is None:
            return None
        p = _onset_point(clip)
        return None if p is None else (int(clip.onset_frame), [(0, p)])
    if not clip.labels:
        return None
    start = min(clip.labels)
    points = [(k, (float(p[0]), float(p[1]))) for k, p in enumerate(clip.labels[start]) if p is not None]
    return (start, points) if points else None


# -- frames ---------------------------------------------------------------------------------
class ClipFrames:
    """The clip's frames resized to the model resolution (`native`: at the clip's own
    resolution), decoded once and kept in memory when they fit in `budget_mb` (multi-point clips
    are tracked once per point), else re-decoded."""

    def __init__(self, clip: Any, budget_mb: float = FRAME_BUDGET_MB, native: bool = False):
        self.video, self.native = clip.video, native
        w, h = (int(clip.width), int(clip.height)) if native else MODEL_SIZE
        self._keep = clip.num_frames * w * h * 3 <= budget_mb * 2**20
        self._frames: list[np.ndarray] | None = None
        self.mapper: FrameMapper | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self._frames is not None:
            yield from enumerate(self._frames)
            return
        kept: list[np.ndarray] = []
        with open_video(self.video) as reader:
            for item in reader:
                img = item.image
                if self.mapper is None:
                    size = (img.shape[1], img.shape[0])
                    self.mapper = FrameMapper(size, size if self.native else MODEL_SIZE)
                small = self.mapper.resize(img)
                if self._keep:
                    kept.append(small)
                yield item.index, small
        if self._keep:
            self._frames = kept

    def to_model(self, xy: XY) -> XY:
        assert self.mapper is not None
        x, y = self.mapper.to_model(np.array([xy], np.float64))[0]
        return float(x), float(y)

    def to_input(self, xy: XY) -> XY:
        assert self.mapper is not None
        x, y = self.mapper.to_input(np.array([xy], np.float64))[0]
        return float(x), float(y)


def _error(pred: XY, gt: XY, image_size: list[int]) -> float:
    return float(metrics.point_errors(np.array([pred]), np.array([gt]), tuple(image_size))[0])


# -- stages ---------------------------------------------------------------------------------
def eval_onset(detector: Any, clip: Any) -> dict[str, Any]:
    """Stream the whole clip; the first raised onset is the prediction (None = missed, or no
    false alarm on a negative clip). Scores of every frame are kept for timelines."""
    detector.reset()
    scores: list[float] = []
    pred = raised_at = None
    confidence = None
    for index, small in ClipFrames(clip, budget_mb=0):
        out = detector.step(small)
        scores.append(round(float(out.score), 5))
        if pred is None and out.onset_frame is not None:
            pred, raised_at, confidence = int(out.onset_frame), index, float(out.score)
    gt = None if clip.kind == "negative" else clip.onset_frame
    record = {"stage": "onset", **clip_meta(clip), "gt": gt, "pred": pred, "raised_at": raised_at,
              "confidence": confidence, "frames": len(scores), "scores": scores}
    if clip.kind == "sparse":
        bleeding = real_bleeding(clip)
        start = real_bleeding_start(clip) if bleeding else None
        record.update(gt=start, real_bleeding=bleeding,
                      flagged=pred is not None and (not bleeding or abs(pred - start) <= PRESENT_WITHIN))
    return record


def eval_source(locator: Any, clip: Any, history_frames: int = HISTORY_FRAMES) -> dict[str, Any]:
    """Localise on the GT onset frame with up to `history_frames` earlier frames as history."""
    query = source_query(clip)
    if query is None:
        raise ValueError(f"clip {clip.id} has no source query")
    frame, gt = query
    frames = ClipFrames(clip, budget_mb=0)
    history: deque[np.ndarray] = deque(maxlen=history_frames)
    target = None
    for index, small in frames:
        if index == frame:
            target = small
            break
        history.append(small)
    if target is None:
        raise ValueError(f"clip {clip.id}: source frame {frame} is past the end of the video")
    p = locator.locate(target, history=list(history) or None)
    pred = frames.to_input((p.x, p.y))
    meta = clip_meta(clip)
    return {"stage": "source", **meta, "frame": frame, "gt": list(gt), "pred": list(pred),
            "confidence": float(p.confidence), "error": _error(pred, gt, meta["image_size"])}


def _track_one(tracker: Any, frames: ClipFrames, start: int, xy: XY) -> dict[int, list[float]]:
    """Predicted [x, y, confidence, visible] per frame from `start` to the end (input pixels)."""
    out: dict[int, list[float]] = {}
    for index, small in frames:
        if index < start:
            continue
        if index == start:
            tracker.start(small, frames.to_model(xy), frame_index=start)
            out[index] = [xy[0], xy[1], 1.0, 1.0]
            continue
        tp = tracker.step(small)
        x, y = frames.to_input((tp.x, tp.y))
        out[index] = [round(x, 3), round(y, 3), round(float(tp.confidence), 5), float(bool(tp.visible))]
    return out


def _track_all(tracker: Any, frames: ClipFrames, start: int, points: list[XY]) -> list[dict[int, list[float]]]:
    """`_track_one` for all points at once (`start_many` / `step_many`)."""
    out: list[dict[int, list[float]]] = [{} for _ in points]
    for index, small in frames:
        if index < start:
            continue
        if index == start:
            tracker.start_many(small, [frames.to_model(xy) for xy in points], frame_index=start)
            for o, xy in zip(out, points):
                o[index] = [xy[0], xy[1], 1.0, 1.0]
            continue
        for o, tp in zip(out, tracker.step_many(small)):
            x, y = frames.to_input((tp.x, tp.y))
            o[index] = [round(x, 3), round(y, 3), round(float(tp.confidence), 5), float(bool(tp.visible))]
    return out


def eval_track(tracker: Any, clip: Any) -> dict[str, Any]:
    """Track every non-null start point to the end; score labelled frames (and dense truth)."""
    query = track_queries(clip)
    if query is None:
        raise ValueError(f"clip {clip.id} has no tracking query")
    start, points = query
    meta = clip_meta(clip)
    size = meta["image_size"]
    dense_gt = dense_source(clip) if len(points) == 1 and points[0][0] == 0 else None
    dense_vis = dense_visible(clip) if dense_gt is not None else None
    # trackers that refine at the input resolution (`native_frames`) get the clip's own frames
    frames = ClipFrames(clip, native=getattr(tracker, "native_frames", False))
    # a tracker whose points do not interact (`add_points`) tracks them all in one pass, each as alone
    together = _track_all(tracker, frames, start, [xy for _, xy in points]) if hasattr(tracker, "add_points") else None
    tracks = []
    for j, (k, xy) in enumerate(points):
        pred = together[j] if together is not None else _track_one(tracker, frames, start, xy)
        rows, hidden = [], []
        for f in sorted(clip.labels):
            gt = _label_point(clip, f, k)
            if f <= start or f not in pred:
                continue
            if gt is None:  # a point whose later label is null is not scored there (paper metrics),
                hidden.append(f)  # it counts as hidden for the occlusion metrics (eval.tap)
                continue
            p = (pred[f][0], pred[f][1])
            rows.append({"frame": f, "since": f - start, "gt": list(gt), "pred": list(p),
                         "error": _error(p, gt, size), "confidence": pred[f][2]})
        dense = None
        if dense_gt is not None:
            fs = [f for f in sorted(pred) if start < f < len(dense_gt) and np.isfinite(dense_gt[f]).all()]
            if fs:
                p, g = np.array([pred[f][:2] for f in fs]), dense_gt[fs]
                errs = metrics.point_errors(p, g, tuple(size))
                tap_errs = metrics.point_errors(p, g, tuple(size), scale_to=tap.TAPVID_SIZE)
                dense = {"frames": fs, "errors": [round(float(e), 4) for e in errs],
                         "errors_tapvid": [round(float(e), 4) for e in tap_errs],
                         "visible": None if dense_vis is None else
                         [bool(dense_vis[f]) if f < len(dense_vis) else True for f in fs]}
        tracks.append({"point": k, "start_xy": list(xy), "labelled": rows, "hidden": hidden, "dense": dense,
                       "pred": [pred[f] for f in sorted(pred)]})
    return {"stage": "track", **meta, "start": start, "points": tracks}
