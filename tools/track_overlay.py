"""Contact sheet of tracked points on a clip's frames: the truth and each model's point, from the
per-clip records that `bleedorigin evaluate --stages track` cached.

    python tools/track_overlay.py CLIP_DIR RUN_DIR MODEL [MODEL ...] --out sheet.png [--tiles 12] [--frames A B]

CLIP_DIR: a clip folder (frames.npz or video.mp4, with gt.npz or labels_dense.json for the truth).
RUN_DIR: the evaluate output folder. Truth is a white ring; models get the colours listed in the
legend (a hollow marker where the model reports the point hidden). Each tile shows the frame
number and each model's error in 512x384 pixels. `--frames A B`: tiles spread over frames A-B only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.importers import read_sparse_labels
from bleedorigin.io.video import load_clip_frames

COLOURS = [(255, 80, 80), (80, 255, 80), (80, 160, 255), (255, 220, 0)]  # RGB
TILE_W = 320
COLUMNS = 4


def truth(clip: Path, n: int) -> np.ndarray:
    """(n, 2) true point per frame, NaN where unknown."""
    out = np.full((n, 2), np.nan)
    if (clip / "gt.npz").is_file():
        with np.load(clip / "gt.npz") as z:
            xy = np.asarray(z["source_xy"], np.float64)[:n]
        out[:len(xy)] = xy
    elif (clip / "labels_dense.json").is_file():
        for f, pts in read_sparse_labels(clip / "labels_dense.json").items():
            if f < n and pts and pts[0] is not None:
                out[f] = pts[0]
    return out


def record(run: Path, model: str, clip: str) -> dict:
    # evaluate caches by configuration: cache/<hash>/track/<model>/<clip>.json
    for f in sorted([*(run / "cache" / "track" / model).glob("*.json"), *run.glob(f"cache/*/track/{model}/*.json")]):
        rec = json.loads(f.read_text())
        if rec["clip"] == clip:
            return rec
    raise InputError(f"no cached track record of {model} for clip {clip} in {run}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiles", type=int, default=12)
    parser.add_argument("--frames", type=int, nargs=2, metavar=("FIRST", "LAST"))
    args = parser.parse_args()
    try:
        print(draw(args))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def draw(args: argparse.Namespace) -> Path:
    """Write the sheet; return its path."""
    if not args.clip.is_dir() or not args.run.is_dir():
        raise InputError(f"not a folder: {args.clip if not args.clip.is_dir() else args.run}")
    if len(args.models) > len(COLOURS):
        raise InputError(f"at most {len(COLOURS)} models")
    if args.tiles < 1:
        raise InputError(f"--tiles must be at least 1, got {args.tiles}")
    frames = load_clip_frames(args.clip)
    h, w = frames.shape[1:3]
    scale = np.array([512.0 / w, 384.0 / h])
    gt = truth(args.clip, len(frames))
    recs = [record(args.run, m, args.clip.name) for m in args.models]
    start = recs[0]["start"]
    preds = [np.array(r["points"][0]["pred"], np.float64) for r in recs]  # (T, 4): x, y, confidence, visible
    first, last = start, start + min(len(p) for p in preds) - 1
    if args.frames is not None:
        if not first <= args.frames[0] <= args.frames[1] <= last:
            raise InputError(f"--frames {args.frames[0]} {args.frames[1]}: expected {first} <= FIRST <= LAST <= {last}")
        first, last = args.frames
    zoom = TILE_W / w
    tiles = []
    for t in np.linspace(first, last, args.tiles).round().astype(int):
        tile = cv2.resize(frames[t], (TILE_W, int(round(h * zoom))), interpolation=cv2.INTER_CUBIC)
        text = [f"f{t}"]
        if np.isfinite(gt[t]).all():
            cv2.circle(tile, tuple(int(v) for v in gt[t] * zoom), 7, (255, 255, 255), 2, cv2.LINE_AA)
        for k, p in enumerate(preds):
            x, y, _, visible = p[t - start]
            cv2.drawMarker(tile, (int(x * zoom), int(y * zoom)), COLOURS[k],
                           cv2.MARKER_CROSS if visible else cv2.MARKER_SQUARE, 12, 2)
            if np.isfinite(gt[t]).all():
                text.append(f"{np.hypot(*((p[t - start, :2] - gt[t]) * scale)):.0f}")
        cv2.putText(tile, " ".join(text), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.concatenate([np.concatenate(tiles[i:i + COLUMNS], 1) for i in range(0, len(tiles), COLUMNS)], 0)
    legend = np.zeros((24, sheet.shape[1], 3), np.uint8)
    x = 4
    for k, name in enumerate(["truth"] + args.models):
        colour = (255, 255, 255) if k == 0 else COLOURS[k - 1]
        cv2.putText(legend, name, (x, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        x += 12 * len(name) + 20
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate([legend, sheet], 0), cv2.COLOR_RGB2BGR))
    return args.out


if __name__ == "__main__":
    main()
