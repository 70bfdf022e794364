"""STIR-style point files from sample clip folders (video.mp4 + labels.json), to check the STIR
path of `bleedorigin evaluate --stir-start` on clips with manual labels.

    python tools/labels_to_stir.py ../shared/data/vlsurgpt --out runs/stir_vl
    bleedorigin evaluate ../shared/data/vlsurgpt --out runs/stir_vl/eval \\
        --stir-start runs/stir_vl/start.json --stir-end runs/stir_vl/end.json

start.json: the points labelled on each clip's first labelled frame (`{clip: [[x, y], ...]}`);
end.json: every later labelled frame in the frame form, point by point, a null label = hidden.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bleedorigin.utils.jsonio import read_json, write_json_atomic


def point_files(data: Path) -> tuple[dict, dict]:
    start, end = {}, {}
    for clip in sorted(p for p in data.iterdir() if (p / "labels.json").is_file() and (p / "video.mp4").is_file()):
        labels = {int(k): v for k, v in read_json(clip / "labels.json").items()}
        first = min(labels)
        if first != 0:
            continue  # STIR start points are on frame 0
        keep = [i for i, p in enumerate(labels[first]) if p is not None]
        start[clip.name] = [labels[first][i] for i in keep]
        end[clip.name] = {str(f): {"coords": [labels[f][i] or [0.0, 0.0] for i in keep],
                                   "visibilities": [labels[f][i] is not None for i in keep]}
                          for f in sorted(labels) if f > first}
    return start, end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder of clip folders with labels.json")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    start, end = point_files(args.data)
    if not start:
        ap.error(f"{args.data}: no clip folder labelled from frame 0")
    write_json_atomic(args.out / "start.json", start)
    write_json_atomic(args.out / "end.json", end)
    print(f"{len(start)} sequences, {sum(len(v) for v in start.values())} points -> {args.out}")


if __name__ == "__main__":
    main()
