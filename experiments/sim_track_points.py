"""Track BleedSim tissue points (not only the source) and score them where they are visible.

    python experiments/sim_track_points.py SIM_DIR --points 6 --models track_scene --models track_lk

`bleedorigin evaluate --stages track` follows one point per clip, the bleeding source, often
under blood. This follows K tissue points per clip from frame 0 (truth `tracks_xy`, visible at
frame 0 and in at least half of the clip, evenly spread over that list) and scores the frames
where each is visible: mean error (px at 512x384), Acc<25, n point-frames, and TAPNext++'s
re-detection score AJ_RD over every frame (eval.tap: each time a point comes back into view after
a longer hidden stretch than before, the Jaccard of the rest of its track). Trackers with
`start_many` follow all K points in one pass; the others one point at a time.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.eval import tap
from bleedorigin.eval.metrics import point_errors
from bleedorigin.io.bench import load_bench
from bleedorigin.io.video import read_frames
from bleedorigin.models.registry import create
from bleedorigin.sim.writer import load_gt


def pick_points(gt: dict, k: int) -> np.ndarray:
    vis = gt["tracks_visible"]
    ok = np.flatnonzero(vis[0] & (vis.mean(0) >= 0.5))
    return ok[np.linspace(0, len(ok) - 1, min(k, len(ok))).round().astype(int)] if len(ok) else ok


def track(name: str, frames: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, K, 2) predictions from frame 0 and (T, K) whether each was said visible."""
    tracker = create(name)
    out, seen = np.empty((len(frames), len(starts), 2)), np.ones((len(frames), len(starts)), bool)
    out[0] = starts
    if hasattr(tracker, "start_many"):
        tracker.start_many(frames[0], [tuple(p) for p in starts])
        for t in range(1, len(frames)):
            step = tracker.step_many(frames[t])
            out[t], seen[t] = [(p.x, p.y) for p in step], [p.visible for p in step]
        return out, seen
    for k, p in enumerate(starts):
        tracker.start(frames[0], (float(p[0]), float(p[1])))
        for t in range(1, len(frames)):
            tp = tracker.step(frames[t])
            out[t, k], seen[t, k] = (tp.x, tp.y), tp.visible
    return out, seen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sim_dir", type=Path)
    ap.add_argument("--models", action="append", required=True)
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None, help="per clip and model errors")
    a = ap.parse_args(argv)
    try:
        clips = load_bench(a.sim_dir, with_labels=False)
        errs: dict[str, list[np.ndarray]] = {m: [] for m in a.models}
        reappear: dict[str, list[tuple]] = {m: [] for m in a.models}  # (dist at 256x256, said visible, visible) per point
        per_clip = []
        for c in clips:
            gt = load_gt(c.gt)
            frames = read_frames(c.video)
            if frames.shape[1:3] != (384, 512):
                raise InputError(f"{c.id}: expected 512x384 frames")
            idx = pick_points(gt, a.points)
            if not len(idx):
                continue
            truth, visible = gt["tracks_xy"][:, idx].astype(np.float64), gt["tracks_visible"][:, idx]
            vis = visible.copy()
            vis[0] = False  # the start frame is given
            row = {"clip": c.id, "scenario": c.scenario, "points": idx.tolist()}
            for m in a.models:
                pred, said = track(m, frames, truth[0])
                e = np.linalg.norm(pred - truth, axis=-1)[vis]
                errs[m].append(e)
                row[m] = float(e.mean())
                d = point_errors(pred[1:].reshape(-1, 2), truth[1:].reshape(-1, 2), (512, 384),
                                 scale_to=tap.TAPVID_SIZE).reshape(len(pred) - 1, len(idx))
                reappear[m] += [(d[:, k], said[1:, k], visible[1:, k]) for k in range(len(idx))]
            per_clip.append(row)
            print(json.dumps(row), flush=True)
    except (InputError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("| tracker | mean error px | Acc<25 % | n point-frames | AJ_RD % | reappearances |")
    print("|---|---|---|---|---|---|")
    for m in sorted(a.models, key=lambda m: np.concatenate(errs[m]).mean()):
        e = np.concatenate(errs[m])
        rd = tap.redetection_metrics(reappear[m])
        aj_rd = "-" if rd["aj_rd"] is None else f"{100 * rd['aj_rd']:.1f}"
        print(f"| `{m}` | {e.mean():.2f} | {100 * (e < 25).mean():.1f} | {len(e)} | {aj_rd} | {rd['events']} |")
    if a.json:
        a.json.write_text(json.dumps(per_clip, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
