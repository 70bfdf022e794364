"""Choose the onset confidence threshold and refinement radius on validation clips.

Runs an onset checkpoint once over every clip of DATA (a benchmark folder with `detect`/`full`
clips and bleeding-free `negative` clips; never the test folder), then replays its decision for
each threshold and red-area refinement radius: Acc within +-8 frames, Err_avg, missed onsets and
false alarms. Run from the repository root:

    bleedorigin sim --out simval/detect --n 24 --seed 1 --kind detect   # the trainer's validation seeds
    bleedorigin sim --out simval/negative --n 24 --seed 1 --kind negative
    python scripts/onset_threshold.py weights/onset_small simval
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from bleedorigin.errors import BleedOriginError
from bleedorigin.eval.metrics import false_alarm_rate, onset_summary
from bleedorigin.eval.protocol import ClipFrames
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.onset.model import decode_onset
from bleedorigin.models.onset.predictor import OnsetDetector, embed_clip, prepare_clip, refine_onset, window_logits
from bleedorigin.utils.progress import track
from bleedorigin.vision.color import blood_area

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
RADII = (0, 8, 16)


@torch.no_grad()
def clip_trace(det: OnsetDetector, clip) -> dict:
    """Window probabilities (delta, confidence) over the whole clip and the red area per frame."""
    frames = np.stack([f for _, f in ClipFrames(clip, budget_mb=0)])
    emb, _ = embed_clip(det.net, det.prep, *prepare_clip(det.prep, frames))
    d, c, starts = window_logits(det.net, emb)
    return {"gt": None if clip.kind == "negative" else clip.onset_frame,
            "delta": torch.sigmoid(d).cpu().numpy(), "conf": torch.sigmoid(c).cpu().numpy(),
            "starts": starts, "areas": np.array([blood_area(f) for f in frames])}


def decide(trace: dict, threshold: float, radius: int, window: int) -> int | None:
    """The streaming detector's answer at this threshold and refinement radius."""
    onset = decode_onset(trace["delta"], trace["conf"], trace["starts"], window, threshold)
    if onset is None or radius == 0:
        return onset
    raised_at = trace["starts"][int(np.flatnonzero(trace["conf"] > threshold)[0])] + window - 1
    return refine_onset(trace["areas"][:raised_at + 1], 0, onset, radius)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="onset checkpoint folder or preset")
    ap.add_argument("data", help="validation benchmark folder")
    args = ap.parse_args()
    try:  # bad input: one line and exit 2, as the CLI does
        det = OnsetDetector.from_pretrained(args.model, device="cpu", refine_radius=0)
        clips = [c for c in discover_clips(args.data) if c.kind == "negative" or c.onset_frame is not None]
    except BleedOriginError as e:
        ap.error(str(e))
    if not clips:
        ap.error(f"{args.data}: no clip with an onset label and no bleeding-free clip")
    traces = [clip_trace(det, c) for c in track(clips, total=len(clips), description="clips", unit="clip")]
    pos = [t for t in traces if t["gt"] is not None]
    neg = [t for t in traces if t["gt"] is None]
    print(f"{len(pos)} clips with an onset, {len(neg)} bleeding-free")
    print("radius threshold  acc+-8  Err_avg  missed  false alarms")
    for radius in RADII:
        for thr in THRESHOLDS:
            s = onset_summary([decide(t, thr, radius, det.cfg.window) for t in pos], [t["gt"] for t in pos])
            fa = false_alarm_rate([decide(t, thr, radius, det.cfg.window) for t in neg])
            err = f"{s['err_avg']:7.2f}" if s["err_avg"] is not None else "      -"
            print(f"{radius:6d} {thr:9.2f} {s['acc'][8] * 100:6.1f}% {err} {s['missed']:7d} {fa * 100:12.1f}%")


if __name__ == "__main__":
    main()
