"""A stream that ends before its header's frame count is reported; result files say whether
they are complete; a rerun never leaves two runs mixed in one folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bleedorigin.cli import main
from conftest import make_tiny_frames, write_mp4

BASELINES = ("--onset-model", "onset_hsv", "--source-model", "source_redmask", "--track-model", "track_lk")
SRC = Path(__file__).resolve().parents[1] / "src"


def cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.fixture
def truncated_clip(tmp_path) -> Path:
    frames, _ = make_tiny_frames(n=60)
    whole = tmp_path / "whole.mp4"
    write_mp4(whole, frames, faststart=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.4)])
    return cut


def test_detect_reports_a_truncated_file(truncated_clip, tmp_path, capsys, caplog):
    out = tmp_path / "onset.json"
    code, _ = cli(capsys, "-q", "detect", truncated_clip, "--out", out, "--model", "onset_hsv")
    res = json.loads(out.read_text())
    assert code == 0 and res["complete"] is False
    assert 0 < len(res["scores"]) < 60
    assert f"after {len(res['scores'])} of the 60 frames" in caplog.text


def test_run_reports_a_truncated_file(truncated_clip, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    code, _ = cli(capsys, "-q", "run", truncated_clip, "--out", out, "--no-overlay", *BASELINES)
    res = json.loads((out / "result.json").read_text())
    assert code == 0 and res["complete"] is False and res["frames"] < 60
    assert "truncated" in caplog.text


def test_complete_runs_say_so(tiny_clip, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(capsys, "-q", "run", tiny_clip.path, "--out", out, "--no-overlay", *BASELINES)[0] == 0
    assert json.loads((out / "result.json").read_text())["complete"] is True
    assert cli(capsys, "-q", "detect", tiny_clip.path, "--out", tmp_path / "o.json", "--model", "onset_hsv")[0] == 0
    assert json.loads((tmp_path / "o.json").read_text())["complete"] is True


def _old_run(out: Path) -> None:
    out.mkdir(parents=True)
    for name in ("result.json", "overlay.mp4", "timeline.png", "results.jsonl"):
        (out / name).write_text("old")


def test_rerun_into_an_earlier_run_is_refused_without_overwrite(tiny_clip, tmp_path, capsys):
    out = tmp_path / "run"
    _old_run(out)
    code, err = cli(capsys, "-q", "run", tiny_clip.path, "--out", out, *BASELINES)
    assert code == 2 and "--overwrite" in err
    assert (out / "result.json").read_text() == "old"


def test_overwrite_replaces_the_earlier_run_entirely(tiny_clip, tmp_path, capsys):
    out = tmp_path / "run"
    _old_run(out)
    code, _ = cli(capsys, "-q", "run", tiny_clip.path, "--out", out, "--no-overlay", "--overwrite", *BASELINES)
    assert code == 0 and json.loads((out / "result.json").read_text())["complete"] is True
    assert not (out / "overlay.mp4").exists()  # not this run's: it wrote none
    assert not (out / "previous").exists()


def test_killed_rerun_leaves_the_earlier_run_aside_not_mixed(tmp_path):
    frames, _ = make_tiny_frames(n=2000)
    clip = tmp_path / "long.mp4"
    write_mp4(clip, frames)
    out = tmp_path / "run"
    _old_run(out)
    proc = subprocess.Popen([sys.executable, "-m", "bleedorigin", "-q", "run", str(clip), "--out", str(out),
                             "--overwrite", *BASELINES], env={**os.environ, "PYTHONPATH": str(SRC)},
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        jsonl = out / "results.jsonl"
        if (out / "previous").is_dir() and jsonl.is_file() and jsonl.stat().st_size > 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert {p.name for p in out.iterdir()} <= {".overlay.partial.mp4", "previous", "results.jsonl"}
    assert (out / "previous" / "result.json").read_text() == "old"


def test_track_points_reports_a_truncated_file(truncated_clip, tmp_path, capsys, caplog):
    queries = tmp_path / "points.csv"
    queries.write_text("frame,x,y\n0,30,20\n")
    out = tmp_path / "tracks.json"
    code, _ = cli(capsys, "-q", "track", truncated_clip, "--points", queries, "--out", out, "--model", "track_lk")
    res = json.loads(out.read_text())
    assert code == 0 and res["complete"] is False and 0 < len(res["tracks"][0]["points"]) < 60
    assert "truncated" in caplog.text
