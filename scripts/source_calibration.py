"""Calibration of source models from a `bleedorigin evaluate` output folder: per model, the
Spearman correlation between confidence and error (negative = less confident means further off)
and the mean error of the less and the more confident half of its clips.

    bleedorigin evaluate simtest --out runs/eval --stages source --models source_evidence
    python scripts/source_calibration.py runs/eval
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bleedorigin.eval.metrics import calibration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path, help="output folder of bleedorigin evaluate (with cache/source)")
    args = ap.parse_args()
    root = args.eval_dir / "cache" / "source"
    if not root.is_dir():
        ap.error(f"{root}: no source records (run bleedorigin evaluate --stages source first)")
    print(f"{'model':28s} {'n':>4s} {'rho':>6s} {'err low conf':>13s} {'err high conf':>14s}")
    for model in sorted(p for p in root.iterdir() if p.is_dir()):
        recs = [json.loads(f.read_text()) for f in sorted(model.glob("*.json"))]
        recs = [r for r in recs if "error" in r]
        if not recs:
            continue
        c = calibration(np.array([r["confidence"] for r in recs]), np.array([r["error"] for r in recs]))
        if c["spearman"] is None:
            print(f"{model.name:28s} {c['n']:4d}      - (constant confidence)")
            continue
        print(f"{model.name:28s} {c['n']:4d} {c['spearman']:+6.2f} {c['err_low_conf']:13.1f} {c['err_high_conf']:14.1f}")


if __name__ == "__main__":
    main()
