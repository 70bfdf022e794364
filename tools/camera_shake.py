"""What camera motion alone does to a tracker: each clip is warped by a known per-frame similarity
(a random walk plus shake), the tracker follows the first frame's point on the warped clip, and
its points, mapped back, are compared with its points on the original clip. No labels needed;
with `labels_dense.json` in a clip folder the error against it is printed too.

    python tools/camera_shake.py CLIPS_DIR TRACKER [TRACKER ...] [--amp 2] [--seed 0]

CLIPS_DIR: a folder of clip folders (frames.npz or video.mp4). `--amp`: px per frame of the shake
at a 112 px wide frame (scaled with the width); the walk moves half of that per frame. Errors in
px of a 512x384 frame.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import BleedOriginError, InputError
from bleedorigin.io.importers import read_sparse_labels
from bleedorigin.io.video import load_clip_frames
from bleedorigin.models.loading import load_stage


def shake_warps(n: int, width: int, height: int, amp: float, seed: int = 0) -> list[np.ndarray]:
    """n (2, 3) similarities: frame 0 untouched, then a random walk plus shake of `amp` px."""
    rng = np.random.default_rng(seed)
    shift = np.cumsum(rng.normal(0, amp, (n, 2)), 0) * 0.5 + rng.normal(0, amp, (n, 2))
    angle = np.cumsum(rng.normal(0, 0.01 * amp, n))
    scale = 1 + 0.005 * amp * np.sin(np.arange(n) / 7)
    shift[0], angle[0], scale[0] = 0, 0, 1
    warps = []
    for t, a, s in zip(shift, angle, scale):
        m = cv2.getRotationMatrix2D((width / 2, height / 2), float(np.degrees(a)), float(s))
        m[:, 2] += t
        warps.append(m)
    return warps


def track_path(name: str, frames: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(n, 2) the tracker's point on every frame, from `point` on frame 0."""
    tracker = load_stage("track", name, "cpu")
    tracker.start(frames[0], (float(point[0]), float(point[1])))
    return np.array([point] + [[p.x, p.y] for p in (tracker.step(f) for f in frames[1:])], np.float64)


def shaken_path(name: str, frames: np.ndarray, point: np.ndarray, amp: float, seed: int = 0) -> np.ndarray:
    """The tracker's points on the shaken clip, mapped back to the original frames."""
    n, h, w = frames.shape[:3]
    warps = shake_warps(n, w, h, amp * w / 112, seed)
    moved = np.stack([cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REFLECT) for f, m in zip(frames, warps)])
    path = track_path(name, moved, warps[0][:, :2] @ point + warps[0][:, 2])
    back = [cv2.invertAffineTransform(m) for m in warps]
    return np.array([b[:, :2] @ p + b[:, 2] for b, p in zip(back, path)])


def _reference(clip: Path, n: int) -> np.ndarray | None:
    """(n, 2) the dense reference point per frame, NaN where there is none; None without labels."""
    path = clip / "labels_dense.json"
    if not path.is_file():
        return None
    out = np.full((n, 2), np.nan)
    for frame, points in read_sparse_labels(path).items():
        if frame < n and points and points[0] is not None:
            out[frame] = points[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path)
    parser.add_argument("trackers", nargs="+")
    parser.add_argument("--amp", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        clips = sorted(p for p in args.clips.iterdir() if p.is_dir()) if args.clips.is_dir() else []
        if not clips:
            raise InputError(f"no clip folders in {args.clips}")
        for name in args.trackers:
            load_stage("track", name, "cpu")  # a wrong name ends here, before any work
        for name in args.trackers:
            for clip in clips:
                frames = load_clip_frames(clip)
                n, h, w = frames.shape[:3]
                ref = _reference(clip, n)
                start = ref[0] if ref is not None and np.isfinite(ref[0]).all() else np.array([w / 2, h / 2])
                scale = np.array([512.0 / w, 384.0 / h])
                plain, shaken = track_path(name, frames, start), shaken_path(name, frames, start, args.amp, args.seed)
                line = f"{name} {clip.name}: shaken vs plain {np.hypot(*((shaken - plain) * scale).T).mean():.2f} px"
                if ref is not None:
                    err = [np.nanmean(np.hypot(*((p - ref) * scale).T)) for p in (plain, shaken)]
                    line += f"; against the reference plain {err[0]:.2f}, shaken {err[1]:.2f} px"
                print(line, flush=True)
    except BleedOriginError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
