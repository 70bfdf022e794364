"""Contact sheets of BleedSim local motion: does the tissue deform, does the truth stay on it?

    python tools/sim_local_motion_sheet.py LOCAL_DIR --paired CAM_DIR --out runs/local_sheet.png

LOCAL_DIR is a folder made with `bleedorigin sim --local-motion`, CAM_DIR the same command
(same --seed, --n, --kind) without it: both have the same clips, camera paths and frame-0
points, so where their truth points part is the local motion alone.
- OUT: one row per clip, frames spread over the clip; green = truth tracks with local motion,
  red = where the camera alone would have carried them (line between), yellow cross = source.
- OUT with suffix _zoom: for the points the local motion moves most, a 48 px crop centred on
  the truth in each frame, enlarged: if the truth stays on the tissue, every crop shows the same
  texture at its centre.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.bench import load_bench
from bleedorigin.io.video import read_frames
from bleedorigin.sim.writer import load_gt

TILE = (256, 192)
CROP, ZOOM = 48, 3


def _draw(frame: np.ndarray, gt: dict, cam: dict | None, t: int) -> np.ndarray:
    img = frame.copy()
    vis = gt["tracks_visible"][t]
    for k in np.flatnonzero(vis):
        p = tuple(int(round(v)) for v in gt["tracks_xy"][t, k])
        if cam is not None and cam["tracks_visible"][t, k]:
            q = tuple(int(round(v)) for v in cam["tracks_xy"][t, k])
            cv2.line(img, p, q, (255, 60, 60), 1, cv2.LINE_AA)
            cv2.circle(img, q, 3, (255, 60, 60), -1, cv2.LINE_AA)
        cv2.circle(img, p, 3, (60, 255, 60), -1, cv2.LINE_AA)
    s = tuple(int(round(v)) for v in gt["source_xy"][t])
    cv2.drawMarker(img, s, (255, 255, 0), cv2.MARKER_CROSS, 14, 2)
    out = cv2.resize(img, TILE, interpolation=cv2.INTER_AREA)
    cv2.putText(out, f"t={t}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _crop(frame: np.ndarray, xy: np.ndarray) -> np.ndarray:
    pad = np.pad(frame, ((CROP, CROP), (CROP, CROP), (0, 0)))
    x, y = int(round(xy[0])) + CROP, int(round(xy[1])) + CROP
    c = pad[y - CROP // 2:y + CROP // 2, x - CROP // 2:x + CROP // 2]
    c = cv2.resize(c, (CROP * ZOOM, CROP * ZOOM), interpolation=cv2.INTER_NEAREST)
    m = CROP * ZOOM // 2
    cv2.drawMarker(c, (m, m), (60, 255, 60), cv2.MARKER_CROSS, 10, 1)
    return c


def _texture(frame: np.ndarray, xy: np.ndarray) -> float:
    """Laplacian std of the crop around xy: flat mucosa makes a useless crop."""
    x, y = int(round(xy[0])), int(round(xy[1]))
    g = cv2.cvtColor(frame[y - CROP // 2:y + CROP // 2, x - CROP // 2:x + CROP // 2], cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_32F).std())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("local_dir", type=Path)
    ap.add_argument("--paired", type=Path, default=None, help="same clips made without --local-motion")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=6, help="first N clips (after --only)")
    ap.add_argument("--only", action="append", default=[], help="clip id to show (repeatable)")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--points", type=int, default=4, help="rows of the zoom sheet")
    a = ap.parse_args(argv)
    try:
        clips = [c for c in load_bench(a.local_dir, with_labels=False) if not a.only or c.id in a.only][:a.clips]
        cams = {c.id: c for c in load_bench(a.paired, with_labels=False)} if a.paired else {}
        rows, zoom = [], []
        for c in clips:
            frames = read_frames(c.video)
            gt = load_gt(c.gt)
            cam = load_gt(cams[c.id].gt) if c.id in cams else None
            ts = np.linspace(0, len(frames) - 1, a.frames).astype(int)
            rows.append(np.concatenate([_draw(frames[t], gt, cam, t) for t in ts], 1))
            if cam is not None and len(zoom) < a.points:
                # the point the local motion moves most among those visible in all shown frames, a
                # crop away from the border and textured enough to recognise
                xy = gt["tracks_xy"][ts]
                h, w = frames.shape[1:3]
                ok = gt["tracks_visible"][ts].all(0) & cam["tracks_visible"][ts].all(0) & \
                    ((xy > CROP) & (xy < np.array([w, h]) - CROP)).all((0, 2))
                ok &= np.array([bool(o) and _texture(frames[0], xy[0, k]) > 6.0 for k, o in enumerate(ok)], bool)
                gap = np.linalg.norm(gt["tracks_xy"] - cam["tracks_xy"], axis=-1).max(0)
                if ok.any():
                    k = int(np.argmax(np.where(ok, gap, -1)))
                    zoom.append(np.concatenate([_crop(frames[t], gt["tracks_xy"][t, k]) for t in ts], 1))
    except (OSError, KeyError, ValueError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print("error: no clips to show", file=sys.stderr)
        return 2
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheets = [(a.out, rows)] + ([(a.out.with_name(a.out.stem + "_zoom" + a.out.suffix), zoom)] if zoom else [])
    for path, tiles in sheets:
        if not cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, 0), cv2.COLOR_RGB2BGR)):
            print(f"error: cannot write {path}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
