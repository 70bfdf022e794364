"""Calibration of a tracker's confidence: tracking error per confidence bin, from the per-clip
records that `bleedorigin evaluate --stages track` cached.

    python scripts/track_calibration.py runs/eval track_mft [--bins 0 0.2 0.4 0.6 0.8 1]

Scores every frame with dense truth, else every labelled frame (errors in 512x384 pixels).
Prints a Markdown table: confidence bin, n, mean error, share of frames below 25 px, share
reported visible.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def rows(out_dir: Path, model: str) -> list[tuple[float, float, bool]]:
    """(confidence, error, visible) of every scored frame of `model`'s cached track records."""
    folder = out_dir / "cache" / "track" / model
    if not folder.is_dir():
        sys.exit(f"error: no cached track records in {folder}")
    out = []
    for f in sorted(folder.glob("*.json")):
        record = json.loads(f.read_text())
        for point in record["points"]:
            pred = {record["start"] + i: p for i, p in enumerate(point["pred"])}
            if point["dense"]:
                scored = zip(point["dense"]["frames"], point["dense"]["errors"])
            else:
                scored = ((r["frame"], r["error"]) for r in point["labelled"])
            out += [(pred[fr][2], err, bool(pred[fr][3])) for fr, err in scored]
    return out


def table(data: list[tuple[float, float, bool]], edges: list[float]) -> str:
    conf, err, vis = (np.array(v, np.float64) for v in zip(*data))
    lines = ["| confidence | n | mean error (px) | Acc<25 | visible |", "|---|---|---|---|---|"]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf >= lo) & ((conf < hi) if hi < edges[-1] else (conf <= hi))
        if sel.any():
            lines.append(f"| {lo:.1f}-{hi:.1f} | {int(sel.sum())} | {err[sel].mean():.1f} | "
                         f"{100 * (err[sel] < 25).mean():.0f} % | {100 * vis[sel].mean():.0f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="an evaluate --out folder")
    parser.add_argument("model", help="model key (registry name)")
    parser.add_argument("--bins", type=float, nargs="+", default=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    args = parser.parse_args()
    data = rows(args.out_dir, args.model)
    if not data:
        sys.exit(f"error: {args.model} has no scored frames in {args.out_dir}")
    print(table(data, sorted(args.bins)))


if __name__ == "__main__":
    main()
