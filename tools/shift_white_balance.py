"""Copies of real sample clip folders under a shifted white balance (robustness checks).

    python tools/shift_white_balance.py ../shared/data OUT [--gains 1 0.8 0.55] [--max-width 512]

Every clip folder under the source (video.mp4 + labels.json) is written to OUT/<parent>/<clip>/
with its RGB channels multiplied by `--gains` (clipped to 0..255; e.g. 1 0.8 0.55 is an orange
cast, 1 0.75 0.75 a red one), resized to at most `--max-width` pixels wide (labels scaled), and
its labels and meta.json beside it. Evaluate the copies with
`bleedorigin evaluate OUT --stages onset` (the "real bleeding present" table).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.io.video import VideoWriter, open_video


def shift_clip(folder: Path, out: Path, gains: np.ndarray, max_width: int) -> None:
    with open_video(str(folder / "video.mp4")) as reader:
        w, h, fps = reader.info.width, reader.info.height, reader.info.fps or 30.0
        scale = min(1.0, max_width / w)
        size = (int(round(w * scale)), int(round(h * scale)))
        with VideoWriter(out / "video.mp4", fps, size, crf=12) as writer:
            for item in reader:
                img = item.image if scale == 1.0 else cv2.resize(item.image, size, interpolation=cv2.INTER_AREA)
                writer.write(np.clip(img * gains, 0, 255).astype(np.uint8))
    labels = json.loads((folder / "labels.json").read_text())
    scaled = {k: [None if p is None else [p[0] * scale, p[1] * scale] for p in pts] for k, pts in labels.items()}
    (out / "labels.json").write_text(json.dumps(scaled))
    if (folder / "meta.json").is_file():
        shutil.copy(folder / "meta.json", out / "meta.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--gains", type=float, nargs=3, default=[1.0, 0.8, 0.55])
    ap.add_argument("--max-width", type=int, default=512)
    args = ap.parse_args()
    folders = sorted(p.parent for p in args.source.glob("**/video.mp4") if (p.parent / "labels.json").is_file())
    if not folders:
        print(f"error: no clip folders (video.mp4 + labels.json) under {args.source}", file=sys.stderr)
        raise SystemExit(2)
    gains = np.array(args.gains, np.float32)
    for folder in folders:
        target = args.out / folder.relative_to(args.source)
        target.mkdir(parents=True, exist_ok=True)
        shift_clip(folder, target, gains, args.max_width)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
