"""A tiny reviewed-run folder for the review tests: input video, overlay.mp4 and result.json."""
from __future__ import annotations

import shutil
from pathlib import Path

from conftest import make_tiny_frames, write_mp4

from bleedorigin.types import BleedingEvent, Onset, Point, RunResult, TrackPoint
from bleedorigin.utils.jsonio import write_json_atomic

W, H = 64, 48


def make_run(tmp_path: Path, n: int = 60, onset: int = 20, alarms: tuple[int, ...] = ()) -> Path:
    """RUN_DIR of a run on an n-frame clip whose red disc appears at `onset`: one event raised
    at `onset` (source at the disc, track on it), plus false alarms at `alarms` (raised first)."""
    frames, path_xy = make_tiny_frames(n=n, size=(W, H), onset=onset)
    video = tmp_path / "input.mp4"
    write_mp4(video, frames)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(video, run / "overlay.mp4")
    events = [BleedingEvent(Onset(a, a / 30, 0.7), Point(10.0, 10.0, 0.3)) for a in alarms]
    x, y = path_xy[onset]
    track = [TrackPoint(t, *path_xy[t], 0.9) for t in range(onset, n)]
    events.append(BleedingEvent(Onset(onset, onset / 30, 0.9), Point(x, y, 0.8), track))
    scores = [0.1 + 0.8 * (t >= onset) for t in range(n)]
    result = RunResult(str(video), 30.0, W, H, n, scores, events, {"onset": "onset_test"})
    write_json_atomic(run / "result.json", result.to_dict())
    return run
