"""The paper's metrics (section 5), plus the false-alarm rate on bleeding-free clips.

Onset: accuracy within ±k frames for k in ONSET_TOLERANCES and Err_avg, the mean |pred - gt| in
frames. A clip where no onset is raised (prediction None) is *missed*: wrong at every tolerance,
counted in `missed`, and left out of Err_avg (it has no frame difference).

Points: errors are Euclidean distances after scaling the frame to 512x384, accuracy is the share
of errors strictly below each threshold in PIXEL_THRESHOLDS, Err_avg their mean. A missing
prediction (NaN) has infinite error: wrong at every threshold, counted in `missed`, out of Err_avg.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE

ONSET_TOLERANCES = (0, 1, 2, 4, 8, 16)
PIXEL_THRESHOLDS = (10, 25, 50, 75, 100)


def onset_summary(preds: Sequence[int | None], gts: Sequence[int],
                  tolerances: Sequence[int] = ONSET_TOLERANCES) -> dict:
    """{"acc": {k: fraction}, "err_avg": frames or None, "missed": count, "n": clips}."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth onsets")
    diffs = [abs(int(p) - int(g)) for p, g in zip(preds, gts) if p is not None]
    n = len(gts)
    acc = {k: (sum(d <= k for d in diffs) / n if n else 0.0) for k in tolerances}
    return {"acc": acc, "err_avg": float(np.mean(diffs)) if diffs else None,
            "missed": n - len(diffs), "n": n}


def false_alarm_rate(preds: Sequence[int | None]) -> float:
    """Share of bleeding-free clips on which an onset was raised (0 for no clips)."""
    return sum(p is not None for p in preds) / len(preds) if len(preds) else 0.0


def point_errors(pred, gt, image_size: tuple[int, int], scale_to: tuple[int, int] = MODEL_SIZE) -> np.ndarray:
    """Distances (N,) in pixels of a `scale_to` frame (512x384 unless told) between (N, 2) predicted
    and true points given in pixels of an image of `image_size` (W, H). NaN predictions give inf;
    NaN ground truth raises."""
    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    gt = np.asarray(gt, np.float64).reshape(-1, 2)
    if pred.shape != gt.shape:
        raise ValueError(f"{len(pred)} predicted points for {len(gt)} ground-truth points")
    if not np.isfinite(gt).all():
        raise ValueError("ground-truth points must be finite")
    scale = np.array([scale_to[0] / image_size[0], scale_to[1] / image_size[1]])
    err = np.linalg.norm((pred - gt) * scale, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def point_summary(errors: Sequence[float], thresholds: Sequence[float] = PIXEL_THRESHOLDS) -> dict:
    """{"acc": {th: fraction below th}, "err_avg": mean finite error or None, "missed", "n"}."""
    e = np.asarray(errors, np.float64).reshape(-1)
    n = len(e)
    finite = e[np.isfinite(e)]
    acc = {th: (float((e < th).sum()) / n if n else 0.0) for th in thresholds}
    return {"acc": acc, "err_avg": float(finite.mean()) if len(finite) else None,
            "missed": int(n - len(finite)), "n": n}


def calibration(conf: np.ndarray, err: np.ndarray) -> dict[str, Any]:
    """Spearman rho (confidence vs error) and mean error of the lower / upper confidence half."""
    if len(err) < 4 or np.ptp(conf) == 0:
        return {"n": int(len(err)), "spearman": None}
    rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(np.float64)  # noqa: E731
    rho = float(np.corrcoef(rank(conf), rank(err))[0, 1])
    order = np.argsort(conf, kind="stable")
    half = len(err) // 2
    return {"n": int(len(err)), "spearman": rho, "err_low_conf": float(err[order[:half]].mean()),
            "err_high_conf": float(err[order[half:]].mean())}
