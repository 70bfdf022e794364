"""`bleedorigin batch`: inputs, a corrupt video among good ones, a worker killed mid-video, a
rerun that recomputes nothing, the events table against the per-video result.json files, Ray."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bleedorigin.batch import LocalEngine, RayEngine, run_batch
from bleedorigin.batch.inputs import discover
from bleedorigin.batch.job import Job, Outcome, run_job
from bleedorigin.cli import main
from bleedorigin.commands import SAMPLE_CLIP
from bleedorigin.io.video import VideoWriter, read_frames

KILL_AFTER_FRAMES = 10
SIZE = (256, 192)


def _clip(path: Path, start: int, stop: int) -> Path:
    with VideoWriter(path, 30, SIZE) as writer:
        for frame in read_frames(str(SAMPLE_CLIP), start, stop):
            writer.write(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip that bleeds (onset at its frame 37), one that does not, and a corrupt file."""
    root = tmp_path_factory.mktemp("clips")
    _clip(root / "bleeds.mp4", 60, 130)
    _clip(root / "quiet.mp4", 0, 50)
    good = (root / "bleeds.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(good[:len(good) // 3][::-1])
    return root


def dying_job(job: Job) -> Outcome:
    """run_job whose process is SIGKILLed mid-video the first time it meets "bleeds"; every
    call leaves a line in calls.txt beside the batch folder."""
    out = Path(job.run_dir).parent
    with open(out.parent / "calls.txt", "a") as f:
        f.write(job.name + "\n")
    marker = out.parent / "killed"
    if job.name == "bleeds" and not marker.exists():
        marker.touch()
        jsonl = Path(job.run_dir) / "results.jsonl"

        def kill_when_half_done() -> None:
            while not (jsonl.is_file() and jsonl.read_text().count("\n") >= KILL_AFTER_FRAMES):
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill_when_half_done, daemon=True).start()
    return run_job(job)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def batch(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch") / "out"
    summary = run_batch([clips], out, LocalEngine(2, threads=1, job_fn=dying_job), retries=2,
                        progress=False, device="cpu")
    assert summary.videos == 3 and summary.skipped == 0
    return out


def test_inputs_from_folders_lists_and_image_clips(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "case.mp4").write_bytes(b"x")
    (tmp_path / "b" / "case.MOV").write_bytes(b"x")
    frames = tmp_path / "b" / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    (tmp_path / "notes.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.mp4").write_bytes(b"x")  # the batch folder is never searched
    listing = tmp_path / "list.txt"
    listing.write_text("# archive\na/case.mp4\n\nb/frames\n")
    videos = discover([tmp_path, listing], out)
    assert [v.path for v in videos] == [tmp_path / "a" / "case.mp4", tmp_path / "b" / "case.MOV", frames]
    names = [v.name for v in videos]
    assert names == ["a_case", "b_case", "frames"]
    assert names == [v.name for v in discover([tmp_path], out)]  # stable on a rerun


def test_corrupt_video_is_a_failure_and_the_batch_goes_on(batch: Path) -> None:
    failures = _csv(batch / "failures.csv")
    assert [f["video"] for f in failures] == ["corrupt"]
    assert failures[0]["error"] and "\n" not in failures[0]["error"]
    assert failures[0]["attempts"] == "1"  # bad input is not retried
    assert {r["video"] for r in _csv(batch / "events.csv")} == {"bleeds", "quiet"}


def test_killed_worker_is_retried_without_duplicate_rows(batch: Path) -> None:
    assert (batch.parent / "killed").exists()
    calls = (batch.parent / "calls.txt").read_text().split()
    assert calls.count("bleeds") == 2  # killed once, redone once
    assert calls.count("quiet") == 1  # the other worker's video is not charged for the death
    rows = _csv(batch / "events.csv")
    keys = [(r["video"], r["episode"]) for r in rows]
    assert len(keys) == len(set(keys))
    result = json.loads((batch / "bleeds" / "result.json").read_text())
    assert result["complete"] is True and result["frames"] == 70
    lines = (batch / "bleeds" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(70))  # cleared, not appended


def _raised_in_jsonl(run_dir: Path) -> list[int]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [r["frame"] for r in map(json.loads, lines) if r["onset"] is not None]


def test_events_table_matches_the_result_files(batch: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    rows = _csv(batch / "events.csv")
    table = pq.read_table(batch / "events.parquet").to_pylist()
    assert len(table) == len(rows)
    for row, parquet_row in zip(rows, table):
        result = json.loads((batch / row["video"] / "result.json").read_text())
        assert int(row["frames"]) == result["frames"] == parquet_row["frames"]
        assert int(row["episodes"]) == len(result["events"])
        if not result["events"]:
            assert row["episode"] == "" and parquet_row["episode"] is None
            continue
        event = result["events"][int(row["episode"]) - 1]
        assert int(row["onset_frame"]) == event["onset"]["frame"] == parquet_row["onset_frame"]
        assert float(row["source_x"]) == pytest.approx(event["source"]["x"], abs=0.01)
        assert float(row["source_y"]) == pytest.approx(event["source"]["y"], abs=0.01)
        assert int(row["episode_end_frame"]) == event["track"][-1]["frame"]
        assert int(row["onset_frame"]) <= int(row["raised_at_frame"]) <= int(row["episode_end_frame"])
        assert json.loads(row["source_revisions"]) == event["source_revisions"]
        assert int(row["raised_at_frame"]) == _raised_in_jsonl(batch / row["video"])[int(row["episode"]) - 1]
        assert row["onset_model"] == result["models"]["onset"]
    bleeds = [r for r in rows if r["video"] == "bleeds"]
    assert len(bleeds) == 1 and 20 <= int(bleeds[0]["onset_frame"]) <= 50  # true onset: frame 37
    assert [r["episode"] for r in rows if r["video"] == "quiet"] == [""]


def test_report_opens_from_disk_with_thumbnails_and_timelines(batch: Path) -> None:
    page = (batch / "report.html").read_text()
    assert "<svg" in page and "bleeds/onsets/episode_1.jpg" in page and "corrupt" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    thumb = cv2.imread(str(batch / "bleeds" / "onsets" / "episode_1.jpg"))
    assert thumb is not None and thumb.shape[1] == 256


def test_rerun_recomputes_nothing_finished(batch: Path, clips: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in batch.glob("*/result.json")}
    calls = batch.parent / "calls.txt"
    before = calls.read_text().split()
    summary = run_batch([clips], batch, LocalEngine(1, threads=1, job_fn=dying_job), progress=False,
                        device="cpu")
    assert summary.skipped == 2 and [o.name for o in summary.failed] == ["corrupt"]
    assert summary.failed[0].attempts == 1  # bad input is not retried
    assert calls.read_text().split()[len(before):] == ["corrupt"]  # only the failed one is tried again
    assert stamps == {p: p.stat().st_mtime_ns for p in batch.glob("*/result.json")}
    assert len(_csv(batch / "events.csv")) == 2


ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}


def test_ctrl_c_keeps_every_finished_video(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bleedorigin", "batch", str(clips / "quiet.mp4"), str(clips / "bleeds.mp4"),
           "--out", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while not ((out / "quiet" / "result.json").is_file() and (out / "bleeds" / "results.jsonl").is_file()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal does: the batch and its workers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert json.loads((out / "quiet" / "result.json").read_text())["complete"] is True
    cut = out / "bleeds" / "result.json"
    assert not cut.exists() or json.loads(cut.read_text())["complete"] is False
    assert [r["video"] for r in _csv(out / "events.csv")] == ["quiet"]


def test_quiet_rerun_prints_nothing(batch: Path, clips: Path) -> None:
    cmd = [sys.executable, "-m", "bleedorigin", "batch", str(clips), "--out", str(batch), "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
    assert [f["video"] for f in _csv(batch / "failures.csv")] == ["corrupt"]


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing"
    for args, message in ((["batch", str(missing)], f"error: input not found: {missing}"),
                          (["batch", str(SAMPLE_CLIP), "--engine", "spark"],
                           "error: --engine must be one of local, ray, got 'spark'")):
        with pytest.raises(SystemExit) as exc:
            main(["-q", *args, "--out", str(tmp_path / "o")])
        assert exc.value.code == 2 and capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "o").exists()


def test_ray_engine_on_a_local_instance(clips: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # dying_job for Ray's workers
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        summary = run_batch([clips / "bleeds.mp4", clips / "corrupt.mp4"], tmp_path / "out",
                            RayEngine(cpus_per_task=1, job_fn=dying_job), retries=1, progress=False,
                            device="cpu")
    finally:
        ray.shutdown()
    assert (tmp_path / "killed").exists()  # the worker died mid-video; Ray ran the task again
    assert [o.name for o in summary.done] == ["bleeds"] and [o.name for o in summary.failed] == ["corrupt"]
    rows = _csv(tmp_path / "out" / "events.csv")
    assert [(r["video"], r["episode"]) for r in rows] == [("bleeds", "1")]
    assert json.loads((tmp_path / "out" / "bleeds" / "result.json").read_text())["frames"] == 70
