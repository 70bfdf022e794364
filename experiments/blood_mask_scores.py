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
import json
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.io.video import read_frames
from bleedorigin.vision.color import (AREA_SIZE, BLOOD_THRESHOLD, blood_mask, dark_blood_mask, field_of_view,
                                      red_mask)

ROOT = Path(__file__).resolve().parents[1]
CASTS = {"neutral": (1.0, 1.0, 1.0), "orange": (1.0, 0.8, 0.55), "red": (1.0, 0.75, 0.75),
         "cool": (0.8, 0.92, 1.0), "yellow": (1.0, 0.95, 0.7)}
MASKS = {"red_mask": lambda f, v: red_mask(f) > BLOOD_THRESHOLD, "blood_mask": blood_mask,
         "dark_blood_mask": dark_blood_mask,
         "blood_mask or dark_blood_mask": lambda f, v: blood_mask(f, v) | dark_blood_mask(f, v)}


def marked_frames(data: Path, polygons: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB frame, bool truth mask) for every marked frame found under `data`."""
    out = []
    for key, polys in json.loads(polygons.read_text())["frames"].items():
        clip, index = key.rsplit(":", 1)
        video = data / clip / "video.mp4"
        if not video.is_file():
            continue
        frame = read_frames(str(video), int(index), int(index) + 1)[0]
        if not polys and frame.shape[:2] != (112, 112):
            frame = cv2.resize(frame, AREA_SIZE, interpolation=cv2.INTER_AREA)
        truth = np.zeros(frame.shape[:2], np.uint8)
        for p in polys:
            cv2.fillPoly(truth, [np.array(p, np.int32)], 1)
        out.append((key, frame, truth.astype(bool)))
    return out


def scores(frames, mask_fn, gains) -> dict[str, float]:
    """Pooled precision / recall on frames with blood, and the share of blood-free frames'
    view marked as blood."""
    tp = fp = fn = 0
    free_marked = free_total = 0
    for _, frame, truth in frames:
        f = np.clip(frame * np.array(gains, np.float32), 0, 255).astype(np.uint8)
        view = field_of_view(f)
        pred = mask_fn(f, view) & view
        if truth.any():
            tp += int((pred & truth).sum())
            fp += int((pred & ~truth).sum())
            fn += int((~pred & truth & view).sum())
        else:
            free_marked += int(pred.sum())
            free_total += int(view.sum())
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "marked": tp + fp,
            "blood_free_marked": free_marked / max(1, free_total)}


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
