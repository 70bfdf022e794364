"""`bleedorigin evaluate ... --calibration`: does a model's confidence say how far off it is?

- source: per model, the Spearman correlation between confidence and error over its clips
  (negative = less confident means further off) and the mean error of the less and the more
  confident half (eval.metrics.calibration);
- track: per model, the error in confidence bins over every frame with dense truth, else every
  labelled frame (512x384 px): n, mean error, share below 25 px, share reported visible.
Both read the per-clip records of the evaluation (OUT/cache), so they cost nothing to rerun.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bleedorigin.eval.metrics import calibration

CONFIDENCE_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NEAR_PX = 25  # the "close" column of the track table


def source_calibration(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    recs = [r for r in records if "error" in r]
    return calibration(np.array([r["confidence"] for r in recs], np.float64),
                       np.array([r["error"] for r in recs], np.float64))


def track_rows(records: Sequence[dict[str, Any]]) -> list[tuple[float, float, bool]]:
    """(confidence, error, visible) of every scored frame of a tracker's records."""
    out = []
    for record in records:
        for point in record["points"]:
            pred = {record["start"] + i: p for i, p in enumerate(point["pred"])}
            if point["dense"]:
                scored = zip(point["dense"]["frames"], point["dense"]["errors"])
            else:
                scored = ((r["frame"], r["error"]) for r in point["labelled"])
            out += [(pred[fr][2], err, bool(pred[fr][3])) for fr, err in scored]
    return out


def track_calibration(records: Sequence[dict[str, Any]], edges: Sequence[float] = CONFIDENCE_BINS) -> list[dict]:
    """One row per confidence bin that holds frames (the last bin includes its upper edge)."""
    data = track_rows(records)
    if not data:
        return []
    conf, err, vis = (np.array(v, np.float64) for v in zip(*data))
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf >= lo) & ((conf < hi) if hi < edges[-1] else (conf <= hi))
        if sel.any():
            rows.append({"low": lo, "high": hi, "n": int(sel.sum()), "err_avg": float(err[sel].mean()),
                         f"acc_{NEAR_PX}": float((err[sel] < NEAR_PX).mean()), "visible": float(vis[sel].mean())})
    return rows


def calibration_block(by_model: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """{"source": {model: calibration}, "track": {model: bins}} for the stages evaluated."""
    out: dict[str, Any] = {"source": {}, "track": {}}
    for (stage, key), records in sorted(by_model.items()):
        if stage == "source":
            out["source"][key] = source_calibration(records)
        elif stage == "track":
            out["track"][key] = track_calibration(records)
    return out


def to_markdown(block: dict[str, Any]) -> str:
    lines: list[str] = []
    if block["source"]:
        lines += ["Source confidence against error (Spearman rho < 0: less confident = further off).", "",
                  "| model | n | rho | err low conf | err high conf |", "|---|---|---|---|---|"]
        for key, c in block["source"].items():
            if c["spearman"] is None:
                lines.append(f"| {key} | {c['n']} | – (constant confidence) | – | – |")
            else:
                lines.append(f"| {key} | {c['n']} | {c['spearman']:+.2f} | {c['err_low_conf']:.1f} | "
                             f"{c['err_high_conf']:.1f} |")
        lines.append("")
    for key, rows in block["track"].items():
        lines += [f"Tracking error by confidence: {key}", "",
                  f"| confidence | n | mean error (px) | Acc<{NEAR_PX} | visible |", "|---|---|---|---|---|"]
        lines += [f"| {r['low']:.1f}-{r['high']:.1f} | {r['n']} | {r['err_avg']:.1f} | "
                  f"{100 * r[f'acc_{NEAR_PX}']:.0f} % | {100 * r['visible']:.0f} % |" for r in rows]
        lines.append("")
    return "\n".join(lines)
