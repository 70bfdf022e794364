"""The two fixed-guess reference rows, `source_centre` and `source_channel` (6 o'clock half the view's
equivalent radius below its centre), against reference points (docs/source-choices.md, "The working
channel's side"), on the labelled frames, not only where `evaluate` scores a localizer. Mean
error in px of a 512x384 frame; nothing is fitted.

    python experiments/fixed_guess.py --real ../shared/data/esd_clips --real data/extra_real/positive_esd \
        --sim simval/full_s11 --sim simtest/detect [--stride 10]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.io.video import open_video, read_frames
from bleedorigin.models.loading import load_stage

GUESSES = [load_stage("source", name) for name in ("source_centre", "source_channel")]


def guesses(frame: np.ndarray) -> list[tuple[float, float]]:
    """Each reference row's answer on an RGB frame as `evaluate` hands it over (at 512x384)."""
    small = cv2.resize(frame, (512, 384), interpolation=cv2.INTER_AREA)
    return [(p.x, p.y) for p in (g.locate(small) for g in GUESSES)]


def errors(points: list[tuple[float, float]], places: list[tuple[float, float]]) -> list[list[float]]:
    return [[float(np.hypot(x - px, y - py)) for px, py in places] for x, y in points]


def real_clip(clip: Path, stride: int) -> dict[str, list[list[float]]]:
    """Errors of a clip folder's labelled frames: frame 0, frame 60, and every frame whose index is
    a multiple of `stride`; each scored on its own frame."""
    labels = {int(k): v[0] for k, v in json.loads((clip / "labels_dense.json").read_text()).items() if v and v[0]}
    every = "every labelled frame" if stride == 1 else f"every {stride}th labelled frame"
    out: dict[str, list[list[float]]] = {"frame 0": [], "frame 60": [], every: []}
    with open_video(clip / "video.mp4") as reader:  # one pass over the clip, not a seek per frame
        for item in reader:
            t, frame = item.index, item.image
            names = [n for n, hit in (("frame 0", t == 0), ("frame 60", t == 60), (every, t % stride == 0)) if hit]
            if t not in labels or not names:
                continue
            x, y = labels[t]
            row = errors([(x * 512 / frame.shape[1], y * 384 / frame.shape[0])], guesses(frame))
            for n in names:
                out[n] += row
    return out


def sim_clip(clip: Path) -> list[list[float]]:
    """Errors at a BleedSim clip's onset frame (none for a bleeding-free clip)."""
    gt = np.load(clip / "gt.npz")
    t = int(gt["onset_frame"])
    if t < 0:
        return []
    frame = read_frames(clip / "video.mp4", t, t + 1)[0]
    x, y = gt["source_xy"][t] * [512 / frame.shape[1], 384 / frame.shape[0]]
    return errors([(x, y)], guesses(frame))


def show(name: str, rows: list[list[float]]) -> None:
    e = np.array(rows)
    print(f"{name}: n={len(e)}  centre {e[:, 0].mean():.1f}  6 o'clock {e[:, 1].mean():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", action="append", default=[], help="folder of clip folders with labels_dense.json")
    ap.add_argument("--sim", action="append", default=[], help="BleedSim folder (clips/*/gt.npz)")
    ap.add_argument("--stride", type=int, default=1, help="real clips: also score every this many frames")
    a = ap.parse_args()
    for folder in a.real:
        rows: dict[str, list[list[float]]] = {}
        for clip in sorted(p for p in Path(folder).iterdir() if (p / "labels_dense.json").is_file()):
            for name, r in real_clip(clip, a.stride).items():
                rows.setdefault(name, []).extend(r)
        for name, r in rows.items():
            if r:
                show(f"{folder}, {name}", r)
    for folder in a.sim:
        rows = [r for clip in sorted(Path(folder).glob("clips/*")) for r in sim_clip(clip)]
        show(f"{folder}, onset frame", rows)


if __name__ == "__main__":
    main()
