"""tools/track_cpu_time.py: the per-frame CPU time is measured over the frames after the warm-up."""
from types import SimpleNamespace

import pytest

from bleedorigin.bench import bench_frames, grid_points
from conftest import load_tool


def _tool():
    return load_tool("track_cpu_time")


def test_cpu_time_is_averaged_over_the_frames_after_the_warm_up(monkeypatch):
    """A tracker that costs 1 ms of CPU per point and step: the tool reports 16 ms a frame for 16
    points, whatever the warm-up frames cost (a fake clock: no timing in the test)."""
    tool = _tool()
    clock = [0.0]

    class Costly:
        def start_many(self, frame, points, index):
            self.cost = 1e-3 * len(points)

        def step_many(self, frame):
            clock[0] += self.cost * (100 if self.warm else 1)
            self.warm = False

        warm = True

    monkeypatch.setattr(tool, "load_stage", lambda *args: Costly())
    monkeypatch.setattr(tool, "time", SimpleNamespace(process_time=lambda: clock[0]))
    frames = bench_frames(tool.WARMUP + 4)
    assert len(grid_points(16, 512, 384)) == 16
    assert tool.cpu_ms_per_frame("any", frames, 16) == pytest.approx(16.0)


def test_unknown_tracker_ends_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as stop:
        _tool().main(["track_nonexistent"])
    assert stop.value.code == 2
    assert "track_nonexistent" in capsys.readouterr().err
