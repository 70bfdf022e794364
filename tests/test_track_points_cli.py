"""`bleedorigin track --points FILE`: many points from a CSV or JSON file, each tracked from
its own frame; bad files fail with one error line and exit code 2."""
from __future__ import annotations

import json

import pytest

from bleedorigin.cli import main


def cli(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


@pytest.mark.parametrize("model", ["track_mft_own", "track_lk"])
def test_points_file_tracks_each_point_from_its_frame(tiny_clip, tmp_path, model):
    """The tiny clip's background drifts right by 0.5 px per frame."""
    x0, y0 = tiny_clip.path_xy[0]
    queries = tmp_path / "points.csv"
    queries.write_text(f"frame,x,y\n0,{x0},{y0 - 16}\n# a second point, given later\n6,{x0 - 10},{y0 + 12}\n")
    out = tmp_path / "tracks.json"
    assert cli("-q", "track", tiny_clip.path, "--points", queries, "--out", out, "--model", model) == 0
    tracks = json.loads(out.read_text())["tracks"]
    n = len(tiny_clip.frames)
    assert [t["start"] for t in tracks] == [0, 6]
    assert [len(t["points"]) for t in tracks] == [n, n - 6]
    for t, (x, y) in zip(tracks, [(x0, y0 - 16), (x0 - 10, y0 + 12)]):
        px, py, _ = t["points"][-1]
        assert abs(px - (x + 0.5 * (n - 1 - t["start"]))) < 1.5 and abs(py - y) < 1.5


@pytest.mark.parametrize("name,text", [
    ("bad.csv", "frame,x,y\n0,10,12\n3,ten,5\n"),
    ("short.csv", "0,10\n"),
    ("neg.csv", "-1,10,12\n"),
    ("bad.json", '[[0, 10, 12], {"frame": 2, "x": 5}]'),
    ("broken.json", '[[0, 10, 12'),
    ("empty.csv", "frame,x,y\n"),
    ("outside.csv", "0,500,12\n"),
    ("late.json", '[[0, 10, 12], [99, 5, 5]]'),
])
def test_bad_points_file_gives_one_error_line_and_exit_2(tiny_clip, tmp_path, capsys, name, text):
    queries = tmp_path / name
    queries.write_text(text)
    assert cli("-q", "track", tiny_clip.path, "--points", queries, "--out", tmp_path / "t.json",
               "--model", "track_mft_own") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err


def test_point_and_points_together_are_refused(tiny_clip, tmp_path, capsys):
    queries = tmp_path / "p.csv"
    queries.write_text("0,10,12\n")
    assert cli("track", tiny_clip.path, "--point", 10, 12, "--points", queries, "--out", tmp_path / "t.json") == 2
    assert capsys.readouterr().err.strip().startswith("error:")
