"""Process CPU time per frame of flow trackers on one thread, on the bench clip: a speed measure
that holds on a machine other jobs share (wall-clock frames/s from `bleedorigin bench` do not).

    python tools/track_cpu_time.py track_mft_own track_mft_visible

Each tracker starts on frame 0 with 1, 16, 64 and 256 points on the grid `bleedorigin bench`
uses, steps through frames 1-9 unmeasured, and is timed over frames 10-99.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from bleedorigin.bench import POINT_COUNTS, bench_frames, grid_points
from bleedorigin.errors import BleedOriginError
from bleedorigin.models.loading import load_stage
from bleedorigin.utils.threads import set_threads

WARMUP, FRAMES = 10, 100


def cpu_ms_per_frame(name: str, frames: list[np.ndarray], count: int) -> float:
    tracker = load_stage("track", name, "cpu")
    h, w = frames[0].shape[:2]
    tracker.start_many(frames[0], grid_points(count, w, h), 0)
    for frame in frames[1:WARMUP]:
        tracker.step_many(frame)
    start = time.process_time()
    for frame in frames[WARMUP:]:
        tracker.step_many(frame)
    return (time.process_time() - start) / (len(frames) - WARMUP) * 1e3


def main(names: list[str]) -> None:
    if not names or names[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if names else 2)
    set_threads(1)
    frames = bench_frames(FRAMES)
    for name in names:
        try:  # a wrong name ends with one line, before any timing
            load_stage("track", name, "cpu")
        except BleedOriginError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    for name in names:
        row = " ".join(f"{cpu_ms_per_frame(name, frames, n):.1f}" for n in POINT_COUNTS)
        print(f"{name}: {row} ms CPU per frame at {'/'.join(map(str, POINT_COUNTS))} points", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
