"""Precision / recall of blood masks against hand-marked real frames.

    python experiments/blood_mask_scores.py [--data ../shared/data] [--polygons tests/fixtures/blood_polygons.json] [--per-clip]

Scores `vision.color.red_mask` (> 0.5, the networks' input), the calibrated
`vision.color.blood_mask`, the dark-pool cue `vision.color.dark_blood_mask` and the union of the
last two (the bleeding-present check's blood) on the marked frames (blood polygons; an empty list marks a blood-free
frame), inside the lit view, under several white balances (channel gains). Frames with blood
are scored at their stored size; blood-free frames of other sizes at 128x96.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bleedorigin.eval.blood_masks import CASTS, MASKS, marked_frames, scores

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--polygons", type=Path, default=ROOT / "tests" / "fixtures" / "blood_polygons.json")
    ap.add_argument("--per-clip", action="store_true", help="also score each clip's marked frames alone (neutral)")
    args = ap.parse_args()
    frames = marked_frames(args.data, args.polygons)
    n_blood = sum(t.any() for _, _, t in frames)
    print(f"{len(frames)} marked frames ({n_blood} with blood, {len(frames) - n_blood} blood-free)")
    print("| mask | white balance | precision | recall | blood-free view marked |")
    print("|---|---|---|---|---|")
    for name, fn in MASKS.items():
        for cast, gains in CASTS.items():
            s = scores(frames, fn, gains)
            print(f"| {name} | {cast} | {100 * s['precision']:.1f} % | {100 * s['recall']:.1f} % | "
                  f"{100 * s['blood_free_marked']:.2f} % |")
    if args.per_clip:
        clips = sorted({key.rsplit(":", 1)[0] for key, _, truth in frames if truth.any()})
        print("\n| clip (frames) | mask | pixels marked | precision | recall |")
        print("|---|---|---|---|---|")
        for clip in clips:
            own = [f for f in frames if f[0].rsplit(":", 1)[0] == clip]
            for name, fn in MASKS.items():
                s = scores(own, fn, CASTS["neutral"])
                precision = f"{100 * s['precision']:.1f} %" if s["marked"] else "-"
                print(f"| {clip} ({len(own)}) | {name} | {s['marked']} | {precision} | {100 * s['recall']:.1f} % |")


if __name__ == "__main__":
    main()
