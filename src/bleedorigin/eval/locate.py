"""Score a source locator on labelled frames held in memory (frames chosen by the caller, e.g. the
source-labelled frames of real clips), with the paper's point metrics (eval.metrics)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.eval.metrics import PIXEL_THRESHOLDS, point_errors
from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.source.predictor import check_frame


def evaluate_source(locator: SourceLocatorBase, items: Any) -> dict[str, Any]:
    """Score a source locator on labelled frames.

    `items`: iterable of `(frame, (x, y))` or dicts with "frame", "xy" (input pixels) and
    optional "id", "scenario", "history" (earlier frames, oldest first, handed to the locator).
    Returns Err_avg / median (px at 512x384), Acc below each of metrics.PIXEL_THRESHOLDS as
    fractions (`acc_<px>`), per-item predictions, confidences, errors and timings, and
    per-scenario Err_avg when scenarios are given.
    """
    preds, confs, gts, sizes, ids, scen, ms = [], [], [], [], [], [], []
    for i, item in enumerate(items):
        history = None
        if isinstance(item, dict):
            frame, xy, history = item["frame"], item["xy"], item.get("history")
        else:
            frame, xy = item
        frame = check_frame(frame)
        t0 = time.perf_counter()
        p = locator.locate(frame, history=history or None)
        ms.append((time.perf_counter() - t0) * 1e3)
        preds.append((p.x, p.y))
        confs.append(float(p.confidence))
        gts.append(tuple(float(v) for v in np.asarray(xy).reshape(-1)[:2]))
        sizes.append((frame.shape[1], frame.shape[0]))
        ids.append(str(item.get("id", i)) if isinstance(item, dict) else str(i))
        scen.append(str(item.get("scenario", "")) if isinstance(item, dict) else "")
    if not preds:
        raise InputError("evaluate_source: no items to evaluate")
    err = np.array([point_errors(p, g, s)[0] for p, g, s in zip(preds, gts, sizes)])
    out: dict[str, Any] = {"n": len(err), "err_avg": float(err.mean()), "err_median": float(np.median(err))}
    out.update({f"acc_{t}": float((err < t).mean()) for t in PIXEL_THRESHOLDS})
    out["items"] = [{"id": k, "pred": list(p), "confidence": c, "gt": list(g), "error_px": float(e), "scenario": s}
                    for k, p, c, g, e, s in zip(ids, preds, confs, gts, err, scen)]
    if any(scen):
        out["per_scenario"] = {s: float(err[[x == s for x in scen]].mean()) for s in sorted(set(scen))}
    out["p50_ms"], out["p95_ms"] = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
    return out
