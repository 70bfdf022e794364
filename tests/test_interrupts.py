"""One interrupt policy for every streaming command: SIGINT, SIGTERM and SIGHUP keep what was
computed (`"complete": false`), say so in one line and exit with 128 + the signal number."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import make_tiny_frames, write_mp4

SRC = Path(__file__).resolve().parents[1] / "src"
BASELINES = ("--onset-model", "onset_hsv", "--source-model", "source_redmask", "--track-model", "track_lk")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    frames, _ = make_tiny_frames(n=1500, size=(128, 96))
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    write_mp4(path, frames)
    return path


def interrupt(args: list[str], sig: int, ready) -> tuple[int, list[str]]:
    """Run the CLI, send `sig` once `ready(stderr_lines)` holds; exit code and stderr lines."""
    proc = subprocess.Popen([sys.executable, "-m", "bleedorigin", "-v", *map(str, args)],
                            env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "400"},
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while proc.poll() is None and not ready(lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before the signal: {lines}"
    proc.send_signal(sig)
    code = proc.wait(60)
    reader.join(10)
    return code, lines


def streaming(lines: list[str]) -> bool:
    return any("streaming" in ln for ln in lines)


def error_lines(lines: list[str]) -> list[str]:
    return [ln.strip() for ln in lines if ln.startswith("error:")]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_run_keeps_what_was_computed(long_clip, tmp_path, sig, code):
    out = tmp_path / "run"

    def some_frames_done(_lines) -> bool:
        jsonl = out / "results.jsonl"
        return jsonl.is_file() and jsonl.read_text().count("\n") >= 5

    got, lines = interrupt(["run", long_clip, "--out", out, *BASELINES], sig, some_frames_done)
    assert got == code, lines
    (line,) = error_lines(lines)
    assert signal.Signals(sig).name in line and str(out / "result.json") in line
    res = json.loads((out / "result.json").read_text())
    assert res["complete"] is False and 5 <= res["frames"] < 1500
    assert (out / "overlay.mp4").is_file() and (out / "timeline.png").is_file()
    assert not (out / ".overlay.partial.mp4").exists()


@pytest.mark.parametrize("command, sig", [("detect", signal.SIGINT), ("track", signal.SIGTERM)])
def test_detect_and_track_keep_what_was_computed(long_clip, tmp_path, command, sig):
    out = tmp_path / "out.json"
    extra = ["--model", "onset_hsv"] if command == "detect" else ["--model", "track_lk", "--point", 60, 40]
    got, lines = interrupt([command, long_clip, "--out", out, *extra], sig, streaming)
    assert got == 128 + sig
    (line,) = error_lines(lines)
    assert signal.Signals(sig).name in line and str(out) in line
    res = json.loads(out.read_text())
    assert res["complete"] is False
    assert len(res["scores" if command == "detect" else "points"]) < 1500


def test_sim_keeps_the_finished_clips_usable(tmp_path):
    out = tmp_path / "sim"

    def one_clip_done(_lines) -> bool:
        return len(list(out.glob("clips/*/video.mp4"))) >= 2  # the first is complete once the second starts

    got, lines = interrupt(["sim", "--out", out, "--n", 50, "--kind", "track_short", "--width", 64,
                            "--height", 48], signal.SIGTERM, one_clip_done)
    assert got == 143
    (line,) = error_lines(lines)
    assert str(out / "manifest.json") in line
    clips = json.loads((out / "manifest.json").read_text())["clips"]
    assert 1 <= len(clips) < 50 and all((out / c["video"]).is_file() for c in clips)


def test_cli_called_from_another_thread_still_answers(tmp_path, capsys):
    from bleedorigin.cli import main
    codes = []

    def call() -> None:
        try:
            main(["data", "check", str(tmp_path / "missing")])
        except SystemExit as e:
            codes.append(e.code)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(60)
    assert codes == [2] and "error: not a folder" in capsys.readouterr().err
