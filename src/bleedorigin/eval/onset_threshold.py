"""`bleedorigin evaluate DATA --onset-thresholds`: the onset model's decision replayed for each
confidence threshold and red-area refinement radius, on validation clips (`detect`/`full` clips
with an onset and bleeding-free `negative` clips; never the test folder).

The network runs once per clip; `decide` then answers as the streaming detector would at every
setting: Acc within +-8 frames, Err_avg, missed onsets and false alarms per (radius, threshold).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bleedorigin.eval.metrics import false_alarm_rate, onset_summary
from bleedorigin.eval.protocol import ClipFrames
from bleedorigin.eval.runner import model_lists
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.onset.model import decode_onset
from bleedorigin.models.onset.predictor import OnsetDetector, embed_clip, prepare_clip, refine_onset, window_logits
from bleedorigin.models.weights import resolve_device
from bleedorigin.utils.jsonio import write_json_atomic
from bleedorigin.utils.progress import track
from bleedorigin.vision.color import blood_area

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
RADII = (0, 8, 16)
TOLERANCE = 8  # frames: the accuracy column


@torch.no_grad()
def clip_trace(det: OnsetDetector, clip: Any) -> dict[str, Any]:
    """Window probabilities (delta, confidence) over the whole clip and the red area per frame."""
    frames = np.stack([f for _, f in ClipFrames(clip, budget_mb=0)])
    emb, _ = embed_clip(det.net, det.prep, *prepare_clip(det.prep, frames))
    d, c, starts = window_logits(det.net, emb)
    return {"gt": None if clip.kind == "negative" else clip.onset_frame,
            "delta": torch.sigmoid(d).cpu().numpy(), "conf": torch.sigmoid(c).cpu().numpy(),
            "starts": starts, "areas": np.array([blood_area(f) for f in frames])}


def decide(trace: dict[str, Any], threshold: float, radius: int, window: int) -> int | None:
    """The streaming detector's answer at this threshold and refinement radius."""
    onset = decode_onset(trace["delta"], trace["conf"], trace["starts"], window, threshold)
    if onset is None or radius == 0:
        return onset
    raised_at = trace["starts"][int(np.flatnonzero(trace["conf"] > threshold)[0])] + window - 1
    return refine_onset(trace["areas"][:raised_at + 1], 0, onset, radius)


def threshold_table(model: str, clips: Sequence[Any], device: str = "cpu", progress: bool = True,
                    thresholds: Sequence[float] = THRESHOLDS, radii: Sequence[int] = RADII) -> dict[str, Any]:
    """One row per (radius, threshold) for the onset checkpoint or preset `model`."""
    det = OnsetDetector.from_pretrained(model, device=device, refine_radius=0)
    clips = [c for c in clips if c.kind == "negative" or c.onset_frame is not None]
    traces = [clip_trace(det, c) for c in track(clips, total=len(clips), description="onset thresholds",
                                                unit="clip", enabled=progress)]
    pos = [t for t in traces if t["gt"] is not None]
    neg = [t for t in traces if t["gt"] is None]
    rows = []
    for radius in radii:
        for thr in thresholds:
            s = onset_summary([decide(t, thr, radius, det.cfg.window) for t in pos], [t["gt"] for t in pos])
            rows.append({"radius": radius, "threshold": thr, f"acc_{TOLERANCE}": s["acc"][TOLERANCE],
                         "err_avg": s["err_avg"], "missed": s["missed"],
                         "false_alarm_rate": false_alarm_rate([decide(t, thr, radius, det.cfg.window) for t in neg])})
    return {"model": model, "onsets": len(pos), "negatives": len(neg), "rows": rows}


def check(data: str | Path, out: str | Path, models: Sequence[str] | None = None, device: str = "auto",
          progress: bool = True) -> dict[str, Any]:
    """The table for the first onset model of `models` (else the shipped one) on DATA's clips,
    written to OUT/onset_thresholds.json."""
    model = model_lists(list(models or []), ("onset",), baselines=False)["onset"][0]
    table = threshold_table(model, discover_clips(data), str(resolve_device(device)), progress)
    write_json_atomic(Path(out) / "onset_thresholds.json", table)
    return table


def to_markdown(table: dict[str, Any]) -> str:
    lines = [f"Onset thresholds of {table['model']}: {table['onsets']} clips with an onset, "
             f"{table['negatives']} bleeding-free.", "",
             f"| radius | threshold | Acc ±{TOLERANCE} | Err_avg | missed | false alarms |", "|---|---|---|---|---|---|"]
    for r in table["rows"]:
        err = "–" if r["err_avg"] is None else f"{r['err_avg']:.2f}"
        lines.append(f"| {r['radius']} | {r['threshold']:.2f} | {100 * r[f'acc_{TOLERANCE}']:.1f} % | {err} | "
                     f"{r['missed']} | {100 * r['false_alarm_rate']:.1f} % |")
    return "\n".join(lines) + "\n"
