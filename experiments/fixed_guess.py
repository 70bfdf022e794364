"""Two fixed guesses for the bleeding source against reference points (docs/source.md, "The working
channel's side"): the centre of the field of view, and 6 o'clock half the view's equivalent radius
below it (`prior_shift: 0.5`). Mean error in px of a 512x384 frame; nothing is fitted.

    python experiments/fixed_guess.py --real ../shared/data/esd_clips --real data/extra_real/positive_esd \
        --sim simval/full_s11 --sim simtest/detect
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.models.source.evidence import centre_prior
from bleedorigin.vision.color import field_of_view

SHIFT = 0.5


def frame_at(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    if not ok:
        raise SystemExit(f"error: cannot read frame {index} of {video}")
    return frame


def guesses(frame: np.ndarray) -> list[tuple[float, float]]:
    """(centre, shifted) in px of 512x384."""
    small = cv2.cvtColor(cv2.resize(frame, (512, 384), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    fov = field_of_view(small)
    return [centre_prior(fov, 1.5, shift)[1] for shift in (0.0, SHIFT)]


def errors(points: list[tuple[float, float]], places: list[tuple[float, float]]) -> list[list[float]]:
    return [[float(np.hypot(x - px, y - py)) for px, py in places] for x, y in points]


def real_clip(clip: Path) -> tuple[list[list[float]], list[list[float]]]:
    """(errors on the first labelled frame, errors on every labelled frame) of a clip folder."""
    labels = {int(k): v[0] for k, v in json.loads((clip / "labels_dense.json").read_text()).items() if v and v[0]}
    first = min(labels)
    frame = frame_at(clip / "video.mp4", first)
    sx, sy = 512 / frame.shape[1], 384 / frame.shape[0]
    places = guesses(frame)
    every = errors([(x * sx, y * sy) for _, (x, y) in sorted(labels.items())], places)
    return every[:1], every


def sim_clip(clip: Path) -> list[list[float]]:
    """Errors at a BleedSim clip's onset frame (none for a bleeding-free clip)."""
    gt = np.load(clip / "gt.npz")
    t = int(gt["onset_frame"])
    if t < 0:
        return []
    frame = frame_at(clip / "video.mp4", t)
    x, y = gt["source_xy"][t] * [512 / frame.shape[1], 384 / frame.shape[0]]
    return errors([(x, y)], guesses(frame))


def show(name: str, rows: list[list[float]]) -> None:
    e = np.array(rows)
    print(f"{name}: n={len(e)}  centre {e[:, 0].mean():.1f}  6 o'clock {e[:, 1].mean():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", action="append", default=[], help="folder of clip folders with labels_dense.json")
    ap.add_argument("--sim", action="append", default=[], help="BleedSim folder (clips/*/gt.npz)")
    a = ap.parse_args()
    for folder in a.real:
        first, every = [], []
        for clip in sorted(p for p in Path(folder).iterdir() if (p / "labels_dense.json").is_file()):
            f, e = real_clip(clip)
            first += f
            every += e
        show(f"{folder}, first labelled frame", first)
        show(f"{folder}, every labelled frame", every)
    for folder in a.sim:
        rows = [r for clip in sorted(Path(folder).glob("clips/*")) for r in sim_clip(clip)]
        show(f"{folder}, onset frame", rows)


if __name__ == "__main__":
    main()
