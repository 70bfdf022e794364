"""Blood masks scored against blood marked by hand on real frames (tests/fixtures/blood_polygons.json):
pooled precision and recall on frames with blood, the share of a blood-free frame's view marked,
under white-balance casts (channel gains)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.io.video import read_frames
from bleedorigin.vision.color import (
    AREA_SIZE,
    BLOOD_THRESHOLD,
    blood_mask,
    dark_blood_mask,
    field_of_view,
    red_mask,
)

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
