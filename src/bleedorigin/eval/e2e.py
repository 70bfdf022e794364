"""Deployment mode scored as the user sees it: the Pipeline runs end to end, each stage fed by the
previous one, and its point is compared with a reference on every frame of the first episode.

Clips: BleedSim `full` clips (gt.npz `source_xy`, from the GT onset) and real bleeding clips
with a reference on every frame (`labels_dense.json`, from their first bleeding frame). Two
views of the point are scored over every frame of the episode, from its true start to the end of
the reference:
- `live`: the point drawn on each frame as the stream went (`FrameResult.track`), the overlay a
  surgeon watches; frames before the onset was raised have none;
- `result`: the first event's `track` in result.json, the path of the source the episode ended
  with (a revised source's earlier frames are filled in from when it was tracked as a candidate).
A frame without a point has infinite error (wrong at every threshold, counted in `missed`, out of
the mean: eval.metrics.point_summary).

Time to a stable point (the clinical trial NCT07495137 scores the time to stop each bleed): the
frames from the episode's start until the point is within d px (d in SETTLE_WITHIN, strictly
below as Acc<d) and stays within d on every later scored frame; None when it never settles.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bleedorigin.eval import metrics, protocol

SETTLE_WITHIN = (25, 50)  # px at 512x384
VIEWS = ("live", "result")


def frames_to_settle(errors: Sequence[float | None], within: float) -> int | None:
    """Index of the first frame from which every error is below `within` (None, NaN and inf
    count as outside); None when the last frame is outside (or there are no frames)."""
    e = np.array([np.inf if v is None else v for v in errors], np.float64)
    inside = e < within  # NaN compares False
    if not len(e) or not inside[-1]:
        return None
    outside = np.flatnonzero(~inside)
    return int(outside[-1] + 1) if len(outside) else 0


def episode_errors(points: dict[int, tuple[float, float]], reference: np.ndarray, frames: Sequence[int],
                   image_size: Sequence[int]) -> list[float | None]:
    """Error (px at 512x384) of `points[f]` against `reference[f]` for each of `frames`; None
    where there is no point (JSON has no infinity: metrics read None as a miss)."""
    if not len(frames):
        return []
    pred = np.array([points.get(f, (np.nan, np.nan)) for f in frames], np.float64)
    err = metrics.point_errors(pred, reference[list(frames)], tuple(image_size))
    return [None if not np.isfinite(e) else round(float(e), 4) for e in err]


def eval_end_to_end(pipeline: Any, clip: Any) -> dict[str, Any]:
    """Run the pipeline on the clip; its onset, both views of its point on every frame of the
    episode, the frames to a stable point, and the source (as first located and as finally kept)
    at the onset. `frames`/`errors`/`coverage` score the result track from the GT onset on where
    it has a point. `timeline` keeps what the run's timeline plot draws (eval.plots)."""
    from bleedorigin.eval.plots import timeline_record

    steps = list(pipeline.stream(clip.video))
    events = list(pipeline.events)
    first = events[0] if events else None
    meta = protocol.clip_meta(clip)
    size = meta["image_size"]
    dense = protocol.dense_source(clip)
    start = protocol.episode_start(clip)
    n_frames = len(steps)
    end = min(len(dense), n_frames) if dense is not None else 0
    episode = [] if start is None else [f for f in range(start, end) if np.isfinite(dense[f]).all()]
    result_pts = {} if first is None else {int(t.frame): (t.x, t.y) for t in first.track}
    # the live point of the first episode only: later episodes track other bleeds
    last = n_frames if len(events) < 2 else events[1].onset.frame
    live_pts = {s.frame: (s.track.x, s.track.y) for s in steps if s.track is not None and s.frame < last}
    views = {"live": episode_errors(live_pts, dense, episode, size) if episode else [],
             "result": episode_errors(result_pts, dense, episode, size) if episode else []}
    scored = [f for f in episode if f in result_pts]
    errors = [e for f, e in zip(episode, views["result"]) if f in result_pts]
    timeline = timeline_record([s.onset_score for s in steps], [s.phase for s in steps], events,
                               getattr(pipeline.onset, "score_threshold", None))
    return {"stage": "e2e", **meta, "gt": start, "pred": None if first is None else int(first.onset.frame),
            "source": None if first is None else [first.source.x, first.source.y],
            "source_error": _source_error(first, dense, size),
            "located_error": _located_error(first, dense, size),
            "revisions": [] if first is None else [r.to_dict() for r in first.source_revisions],
            "frames": scored, "errors": errors,
            "coverage": (len(scored) / len(episode)) if episode else 0.0,
            "episode": {"frames": episode, **views},
            "settle": {v: {str(d): frames_to_settle(views[v], d) for d in SETTLE_WITHIN} for v in VIEWS},
            "events": len(events), "timeline": timeline}


def _source_error(event: Any, dense: np.ndarray | None, size: Sequence[int]) -> float | None:
    """The event's source (at its onset frame) against the reference there."""
    if event is None or dense is None or not 0 <= event.onset.frame < len(dense):
        return None
    ref = dense[event.onset.frame]
    if not np.isfinite(ref).all():
        return None
    return float(metrics.point_errors(np.array([[event.source.x, event.source.y]]), ref[None], tuple(size))[0])


def _located_error(event: Any, dense: np.ndarray | None, size: Sequence[int]) -> float | None:
    """The source as the localizer first placed it (the first revision record, at the frame
    where the onset was raised) against the reference on that frame."""
    revisions = [] if event is None else event.source_revisions
    if not revisions or dense is None or not 0 <= revisions[0].frame < len(dense):
        return _source_error(event, dense, size)
    r = revisions[0]
    ref = dense[r.frame]
    if not np.isfinite(ref).all():
        return None
    return float(metrics.point_errors(np.array([[r.x, r.y]]), ref[None], tuple(size))[0])


# -- aggregation ----------------------------------------------------------------------------------
def points_block(values: Sequence[float | None]) -> dict[str, Any]:
    """Acc<d, mean and misses over per-frame errors (None = no point: a miss)."""
    s = metrics.point_summary([np.inf if v is None else float(v) for v in values])
    return {"n": s["n"], "acc": {str(k): float(v) for k, v in s["acc"].items()},
            "err_avg": s["err_avg"], "missed": s["missed"]}


def settle_block(values: Sequence[int | None]) -> dict[str, Any]:
    """Clips, how many settled, and the mean and median frames to settle over those that did."""
    reached = [v for v in values if v is not None]
    return {"clips": len(values), "settled": len(reached),
            "mean_frames": float(np.mean(reached)) if reached else None,
            "median_frames": float(np.median(reached)) if reached else None}


def episode_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per view: the point block over every episode frame of every clip, and the settle blocks."""
    out: dict[str, Any] = {}
    for view in VIEWS:
        errs = [e for r in records if "episode" in r for e in r["episode"][view]]
        out[view] = {"points": points_block(errs),
                     "settle": {str(d): settle_block([r["settle"][view][str(d)] for r in records if "settle" in r])
                                for d in SETTLE_WITHIN}}
    sources = [r.get("source_error") for r in records]
    located = [r.get("located_error") for r in records]
    out["source"] = points_block(sources)
    out["located"] = points_block(located)
    out["revisions"] = sum(len(r.get("revisions", [])[1:]) for r in records)
    return out


def per_clip_row(record: dict[str, Any]) -> dict[str, Any]:
    """The per-clip columns the report prints for deployment mode."""
    row: dict[str, Any] = {}
    if "episode" not in record:
        return row
    for view in VIEWS:
        block = points_block(record["episode"][view])
        row[view] = {"err_avg": block.get("err_avg"), "acc25": block.get("acc", {}).get("25"),
                     "settle": record["settle"][view]}
    row["revisions"] = len(record.get("revisions", [])[1:])
    return row
