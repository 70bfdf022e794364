"""Highest window score of onset networks on bleeding-free videos: the margin to a false alarm.

Each MODEL (the shipped "small" or a checkpoint folder) runs as `onset_small_transition`, without
the bleeding-present check, whose evidence would otherwise mix into the score. Prints one row per
video: the highest score and whether an onset was raised. Run from the repository root:

    python experiments/onset_margin.py --model small --model runs/onset_v2/last VIDEO [VIDEO ...]
"""
from __future__ import annotations

import argparse

from bleedorigin.errors import BleedOriginError
from bleedorigin.io.video import open_video
from bleedorigin.models import registry


def clip_margin(det, video: str) -> tuple[float, int | None]:
    """(highest score, first onset raised or None) over the whole video."""
    det.reset()
    best, onset = 0.0, None
    with open_video(video) as reader:
        for item in reader:
            step = det.step(item.image)
            best = max(best, step.score)
            if onset is None and step.onset_frame is not None:
                onset = step.onset_frame
    return best, onset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="'small' or an onset checkpoint folder")
    ap.add_argument("videos", nargs="+", help="bleeding-free videos")
    args = ap.parse_args()
    try:  # bad input: one line and exit 2, as the CLI does
        dets = [registry.create("onset_small_transition", device="cpu", weights=m) for m in args.model]
        print("video\t" + "\t".join(args.model))
        for video in args.videos:
            cells = [clip_margin(d, video) for d in dets]
            print(video + "\t" + "\t".join(f"{s:.3f}" + (f" (onset {o})" if o is not None else "")
                                           for s, o in cells))
    except BleedOriginError as e:
        ap.error(str(e))


if __name__ == "__main__":
    main()
