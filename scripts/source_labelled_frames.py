"""Score source locators on every labelled frame of single-point clips, not only the first.

`bleedorigin evaluate` scores the source stage on the first labelled frame of a clip (the
benchmark's protocol). Clips whose one point follows the bleeding source, like the real ESD
samples, hold more source labels (frames 0, 30, 60, ...): with six clips, six frames are too few
to tell two models apart, 33 frames are a steadier check. `--saturation` scales the frames'
HSV saturation first, to see how much a small change of the input moves a model.

    python scripts/source_labelled_frames.py ../shared/data/esd_clips --models source_small --models source_redmask
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from bleedorigin.errors import BleedOriginError
from bleedorigin.eval.protocol import ClipFrames
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.loading import load_stage
from bleedorigin.models.source import evaluate_source
from bleedorigin.models.source.train import source_labels


def scale_saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def labelled_items(data: str, saturation: float = 1.0) -> list[dict]:
    """Every frame whose label is the bleeding source, as `evaluate_source` items, at the model
    resolution like `bleedorigin evaluate` feeds them."""
    items = []
    for clip in discover_clips(data):
        labels = source_labels(clip)
        if not labels:
            continue
        frames = ClipFrames(clip, budget_mb=0)
        for t, frame in frames:
            if t in labels:
                frame = frame if saturation == 1.0 else scale_saturation(frame, saturation)
                items.append({"frame": frame, "xy": frames.to_model(labels[t]), "id": f"{clip.id}@{t}",
                              "first": t == min(labels)})
            if t >= max(labels):
                break
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder of clips (benchmark folder or clip folders)")
    ap.add_argument("--models", action="append", default=None, help="source model name or folder (repeat)")
    ap.add_argument("--saturation", type=float, default=1.0, help="scale the frames' saturation first")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    try:  # bad input: one line and exit 2, as the CLI does
        items = labelled_items(args.data, args.saturation)
        models = [(name, load_stage("source", name, args.device)) for name in args.models or ["source_small"]]
    except BleedOriginError as e:
        ap.error(str(e))
    if not items:
        ap.error(f"{args.data}: no clip with bleeding-source labels")
    first = np.array([it["first"] for it in items])
    print(f"{len(items)} labelled frames of {first.sum()} clips; Err_avg px at 512x384 (Acc<100 %)")
    print(f"{'model':32s} {'first frames':>16s} {'all frames':>16s}")
    for name, model in models:
        err = np.array([row["error_px"] for row in evaluate_source(model, items)["items"]])
        cols = [f"{e.mean():8.2f} ({100 * (e < 100).mean():4.1f})" for e in (err[first], err)]
        print(f"{name[-32:]:32s} {cols[0]} {cols[1]}")


if __name__ == "__main__":
    main()
