"""tools/track_cpu_time.py: the per-frame CPU time is measured over the frames after the warm-up,
and more points cost more."""
from bleedorigin.bench import bench_frames, grid_points
from conftest import load_tool


def _tool():
    return load_tool("track_cpu_time")


def test_cpu_time_per_frame_grows_with_the_points():
    tool = _tool()
    frames = bench_frames(tool.WARMUP + 4)
    assert len(grid_points(16, 512, 384)) == 16
    one = tool.cpu_ms_per_frame("track_mft_visible", frames, 1)
    many = tool.cpu_ms_per_frame("track_mft_visible", frames, 256)
    assert 0 < one < many


def test_unknown_tracker_ends_with_exit_code_2(capsys):
    import pytest
    with pytest.raises(SystemExit) as stop:
        _tool().main(["track_nonexistent"])
    assert stop.value.code == 2
    assert "track_nonexistent" in capsys.readouterr().err
