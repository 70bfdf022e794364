"""How much of a clip's motion is not one camera motion: BleedSim against real clips.

    python experiments/sim_nonrigid_motion.py ../shared/data/esd_clips SIMCAM SIMLOCAL

For frame pairs GAP frames apart (every STEP frames), at 112 px height: DIS flow inside the
field stop, a homography fitted to it with RANSAC, and the residual |flow - homography| per
pixel. Per pair the median and the 90th percentile of that residual (in % of the frame height)
measure the local (non-rigid) motion; instruments, blood and glare add to it in sim and real alike.
Prints, per folder, the median over pairs of both and their 25-75 % range over clips.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.sim.realism import collect_clips
from bleedorigin.vision.flow import dis_flow, to_gray

HEIGHT, GAP, STEP = 112, 10, 5


def pair_residuals(frames: np.ndarray) -> np.ndarray:
    """(pairs, 2): median and p90 residual in % of the height."""
    h, w = frames.shape[1:3]
    size = (max(8, round(w * HEIGHT / h)), HEIGHT)
    dis = dis_flow("medium")
    gray = [to_gray(cv2.resize(f, size, interpolation=cv2.INTER_AREA)) for f in frames[::STEP]]
    k = max(1, GAP // STEP)
    yy, xx = np.mgrid[2:size[1] - 2:3, 2:size[0] - 2:3]
    out = []
    for a, b in zip(gray[:-k], gray[k:]):
        flow = dis.calc(a, b, None)
        ok = cv2.erode((a > 20).astype(np.uint8), np.ones((7, 7), np.uint8))[yy, xx] > 0
        if ok.sum() < 50:
            continue
        src = np.stack([xx[ok], yy[ok]], 1).astype(np.float32)
        dst = src + flow[yy[ok], xx[ok]]
        hm, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
        if hm is None:
            continue
        pred = cv2.perspectiveTransform(src[None], hm)[0]
        r = np.linalg.norm(dst - pred, axis=1) * 100.0 / HEIGHT
        out.append((np.median(r), np.percentile(r, 90)))
    return np.array(out).reshape(-1, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    a = ap.parse_args(argv)
    rows = []
    try:
        for folder in a.folders:
            per_clip = [pair_residuals(f) for f in collect_clips(folder).values()]
            per_clip = [r for r in per_clip if len(r)]
            if not per_clip:
                raise InputError(f"{folder}: no frame pair with enough content")
            allr = np.concatenate(per_clip)
            clip_p90 = [np.median(r[:, 1]) for r in per_clip]
            rows.append(f"{str(folder):40s} {len(per_clip):5d} {len(allr):6d} {np.median(allr[:, 0]):12.2f} "
                        f"{np.median(allr[:, 1]):10.2f}  ({np.percentile(clip_p90, 25):.2f}-"
                        f"{np.percentile(clip_p90, 75):.2f})")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'folder':40s} clips  pairs  median res %  p90 res %  (clip 25-75 % of p90)")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
