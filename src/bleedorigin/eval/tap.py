"""The point-tracking field's metrics, beside the paper's Acc@px and Err_avg (eval.metrics).

Every (point, frame) pair scored counts as in TAP-Vid (Doersch et al. 2022) and STIR 2026:
- delta^x: share of the frames where the truth is visible whose prediction is closer than x px
  (strictly), whatever the predicted visibility; delta_avg (TAP-Vid) = ATA (STIR) = its mean over
  the thresholds;
- Jaccard_x = TP / (visible truth + FP), TP: predicted visible, truly visible and within x;
  FP: predicted visible where the truth is hidden or the prediction is x or more away (a visible
  truth predicted far away is both a miss and a false positive); AJ = the mean over thresholds;
- OA: share of frames whose predicted visibility equals the truth's;
- AJ_RD (TAPNext++'s re-detection score, `redetection_metrics`): for each time a point becomes
  visible again after longer hidden than ever before on its track, the Jaccard of its track from
  that frame to the end (within D: at most D px, as TAPNext++ counts), averaged over such events
  hidden at least d_min frames, then over D (TAPVID_THRESHOLDS) and d_min
  (REDETECT_MIN_HIDDEN): a tracker that never finds a point again after it was hidden scores 0.

Scales (each block is measured where its field measures it, so its numbers compare with that
field's tables):
- TAP-Vid: distances after scaling the frame to 256x256 (x*256/W, y*256/H), thresholds
  TAPVID_THRESHOLDS; the paper's metrics stay at 512x384 (eval.metrics);
- STIR 2026: pixels of the input video, thresholds STIR_THRESHOLDS (eval.stir).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TAPVID_SIZE = (256, 256)  # (W, H) TAP-Vid scores at
TAPVID_THRESHOLDS = (1, 2, 4, 8, 16)  # px at TAPVID_SIZE
STIR_THRESHOLDS = (2, 4, 8, 16, 32)  # px of the input video
REDETECT_MIN_HIDDEN = (1, 4, 16, 64, 256)  # AJ_RD: least hidden frames before a reappearance (TAPNext++)


def jaccard_metrics(dist, pred_visible, gt_visible, thresholds: Sequence[float]) -> dict[str, Any]:
    """AJ, delta_avg and OA of (N,) scored pairs: `dist` prediction-to-truth distances (any value
    where the truth is hidden; inf for a missing prediction), visibilities as booleans.
    Values with nothing to count (no visible truth, no pair) are None."""
    dist = np.asarray(dist, np.float64).reshape(-1)
    pred_vis = np.asarray(pred_visible, bool).reshape(-1)
    gt_vis = np.asarray(gt_visible, bool).reshape(-1)
    if not (len(dist) == len(pred_vis) == len(gt_vis)):
        raise ValueError(f"{len(dist)} distances, {len(pred_vis)} predicted and {len(gt_vis)} true visibilities")
    n_vis = int(gt_vis.sum())
    dist = np.where(np.isnan(dist), np.inf, dist)
    jaccard: dict[float, float | None] = {}
    delta: dict[float, float | None] = {}
    for th in thresholds:
        correct = (dist < th) & gt_vis
        delta[th] = float(correct.sum() / n_vis) if n_vis else None
        jaccard[th] = _jaccard(correct, pred_vis, n_vis)
    return {"aj": _mean(jaccard.values()), "delta_avg": _mean(delta.values()),
            "oa": float((pred_vis == gt_vis).mean()) if len(dist) else None,
            "jaccard": {str(k): v for k, v in jaccard.items()}, "delta": {str(k): v for k, v in delta.items()},
            "n": len(dist), "visible": n_vis}


def _jaccard(correct: np.ndarray, pred_vis: np.ndarray, n_visible: int) -> float | None:
    """TP / (visible truth + FP): TP predicted visible and `correct` (truly visible, within the
    threshold), FP predicted visible and not correct."""
    fp = int((pred_vis & ~correct).sum())
    return float((correct & pred_vis).sum() / (n_visible + fp)) if n_visible + fp else None


def _mean(values) -> float | None:
    vals = list(values)
    return None if not vals or any(v is None for v in vals) else float(np.mean(vals))


def average_over_clips(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """TAP-Vid averages its metrics per video, then over videos: the mean of each of AJ,
    delta_avg and OA over the clips that have it, with n = number of clips averaged."""
    out: dict[str, Any] = {"clips": len(blocks)}
    for key in ("aj", "delta_avg", "oa"):
        vals = [b[key] for b in blocks if b.get(key) is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out


def reappearances(gt_visible) -> list[tuple[int, int]]:
    """(frame index, hidden frames just before it) of each reappearance of one track that AJ_RD
    scores: the point visible after a hidden stretch longer than every earlier one of the track
    (a track hidden from its first frame reappears too)."""
    events, hidden, longest = [], 0, 0
    for t, visible in enumerate(np.asarray(gt_visible, bool)):
        if not visible:
            hidden += 1
            continue
        if hidden > longest:
            events.append((t, hidden))
            longest = hidden
        hidden = 0
    return events


def redetection_metrics(tracks: Sequence[tuple], thresholds: Sequence[float] = TAPVID_THRESHOLDS,
                        min_hidden: Sequence[int] = REDETECT_MIN_HIDDEN) -> dict[str, Any]:
    """AJ_RD over `tracks`, each (dist, pred_visible, gt_visible) on consecutive frames (dist:
    prediction-to-truth distance, any value where the truth is hidden, inf for no prediction).
    Events of every track are pooled; a d_min with no event is None, and so is AJ_RD without any."""
    scores: list[list[float]] = []  # per event, its Jaccard at each threshold
    hidden_for: list[int] = []
    for dist, pred_visible, gt_visible in tracks:
        dist = np.asarray(dist, np.float64)  # NaN, like inf, is within no threshold
        pred_vis, gt_vis = np.asarray(pred_visible, bool), np.asarray(gt_visible, bool)
        for t, hidden in reappearances(gt_vis):
            seen, said, d = gt_vis[t:], pred_vis[t:], dist[t:]
            scores.append([_jaccard(seen & (d <= th), said, int(seen.sum())) for th in thresholds])
            hidden_for.append(hidden)
    by_min: dict[str, float | None] = {}
    for d_min in min_hidden:
        rows = [r for r, h in zip(scores, hidden_for) if h >= d_min]
        by_min[str(d_min)] = float(np.mean(rows)) if rows else None
    known = [v for v in by_min.values() if v is not None]
    return {"aj_rd": float(np.mean(known)) if known else None, "by_min_hidden": by_min, "events": len(scores),
            "events_by_min_hidden": {str(d): sum(h >= d for h in hidden_for) for d in min_hidden}}
