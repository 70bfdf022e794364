"""tools/camera_shake.py: a known camera shake, undone, leaves a tracker's point on a textured
plane where it was; no shake changes nothing; a bad folder ends with exit code 2."""
import sys

import numpy as np
import pytest

from conftest import load_tool
from test_track_flow import SIZE, _frames  # the textured plane moved by a known homography


def _tool():
    return load_tool("camera_shake")


def test_shake_undone_leaves_the_point_where_it_was():
    tool = _tool()
    frames = np.stack(_frames(16))
    point = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    plain = tool.track_path("track_mft_own", frames, point)
    assert np.array_equal(tool.shaken_path("track_mft_own", frames, point, amp=0.0), plain)
    shaken = tool.shaken_path("track_mft_own", frames, point, amp=0.5)
    moved = np.hypot(*np.diff(np.stack([m[:, 2] for m in tool.shake_warps(16, *SIZE, 0.5 * SIZE[0] / 112)]), axis=0).T)
    assert moved.max() > 3.0, "the shake does not move the view: the test shows nothing"
    assert np.hypot(*(shaken - plain).T).max() < 1.5


def test_a_folder_without_clips_ends_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["camera_shake.py", str(tmp_path), "track_mft_own"])
    with pytest.raises(SystemExit) as stop:
        _tool().main()
    assert stop.value.code == 2 and "no clip folders" in capsys.readouterr().err
