"""Trackers on the shared ESD clips from more start frames and both ways in time
(docs/tracking-choices.md, "Started elsewhere, played backwards"): each clip tracked from its dense
label at frame 0, 30 and 60 forward, and from the last frame, 30 and 60 before it backwards; mean
error (px at 512x384) against the dense labels of the frames after the start.

    python experiments/track_stress.py --models track_mft_own_agree_mean --models track_lk
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

from bleedorigin.io.video import read_frames
from bleedorigin.models.loading import load_stage
from bleedorigin.utils.threads import default_threads, set_threads

WAYS = ("f0", "f30", "f60", "r0", "r30", "r60")  # forward from frame N / backwards from N before the last


def run(model: str, video: np.ndarray, labels: dict[int, list[float]], way: str) -> float:
    """Mean error of `model` tracking the labelled point along the frames of `way`."""
    n, (h, w) = len(video), video.shape[1:3]
    s = int(way[1:])
    order = list(range(s, n)) if way[0] == "f" else list(range(n - 1 - s, -1, -1))
    tracker = load_stage("track", model, "cpu")
    tracker.start(video[order[0]], tuple(labels[order[0]]), frame_index=0)
    errors = []
    for i in order[1:]:
        p = tracker.step(video[i])
        if i in labels:
            errors.append(np.hypot((p.x - labels[i][0]) * 512 / w, (p.y - labels[i][1]) * 384 / h))
    return float(np.mean(errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", action="append", required=True)
    ap.add_argument("--clips", default="../shared/data/esd_clips")
    a = ap.parse_args()
    set_threads(default_threads())
    scores: dict[str, dict[str, float]] = {m: {} for m in a.models}
    for clip in sorted(glob.glob(f"{a.clips}/*/labels_dense.json")):
        folder = Path(clip).parent
        video = read_frames(str(folder / "video.mp4"))
        labels = {int(k): v[0] for k, v in json.loads(Path(clip).read_text()).items()}
        for m in a.models:
            for way in WAYS:
                scores[m][f"{folder.name} {way}"] = run(m, video, labels, way)
        cells = [f"{way} " + " / ".join(f"{scores[m][f'{folder.name} {way}']:.1f}" for m in a.models) for way in WAYS]
        print(folder.name, "  ".join(cells), flush=True)
    for m, runs in scores.items():
        e = np.array(list(runs.values()))
        worst = max(runs, key=runs.get)
        fwd = np.mean([v for k, v in runs.items() if k.split()[1][0] == "f"])
        back = np.mean([v for k, v in runs.items() if k.split()[1][0] == "r"])
        print(f"{m}: mean {e.mean():.2f} px over {len(e)} runs (forward {fwd:.2f}, backwards {back:.2f}); "
              f"worst {runs[worst]:.1f} ({worst})")


if __name__ == "__main__":
    main()
