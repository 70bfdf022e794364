"""One video of a batch: what `bleedorigin run` does, into the video's own result folder.

A folder whose result.json says `"complete": true` is finished and never recomputed; anything
else in it (a run cut short by a crash, a kill or Ctrl-C) is cleared before the video is redone.
Bad input (corrupt file, decode error) comes back as a failure record, not an exception, so the
engines retry only what may succeed on a second try (a dead worker, an unexpected error).
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bleedorigin.batch.thumbs import FOLDER as THUMB_FOLDER, write_thumbnails
from bleedorigin.commands import run_pipeline
from bleedorigin.errors import BleedOriginError, InputError
from bleedorigin.utils.jsonio import read_json

log = logging.getLogger(__name__)

RUN_FILES = ("result.json", "results.jsonl", "timeline.png", "overlay.mp4")


@dataclass(frozen=True)
class Job:
    video: str  # path
    name: str
    run_dir: str
    overlay: bool = False
    device: str = "auto"
    config: str | None = None  # pipeline configuration file (None: the shipped one)


@dataclass
class Outcome:
    name: str
    video: str
    status: str  # "done" | "failed"
    frames: int = 0
    video_s: float = 0.0  # seconds of video
    wall_s: float = 0.0  # seconds this job took
    cpu_s: float = 0.0  # CPU seconds of this job's process
    episodes: int = 0
    error: str = ""
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finished(run_dir: str | Path) -> bool:
    """True when the folder holds a complete result.json."""
    path = Path(run_dir) / "result.json"
    if not path.is_file():
        return False
    try:
        result = read_json(path)
    except BleedOriginError:
        return False
    return isinstance(result, dict) and result.get("complete") is True


def clear_run(run_dir: Path) -> None:
    """Remove what an earlier, unfinished attempt left (only the files a run writes)."""
    if not run_dir.is_dir():
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for leftover in run_dir.glob(".*"):  # temp files of atomic writes and the partial overlay
        if leftover.is_file() and (leftover.suffix == ".tmp" or ".partial" in leftover.name):
            leftover.unlink()
    for folder in (THUMB_FOLDER, "previous"):  # "previous": what `run` set aside before it stopped
        shutil.rmtree(run_dir / folder, ignore_errors=True)


def run_job(job: Job) -> Outcome:
    """Run the pipeline on one video (redoing an unfinished folder); bad input -> "failed"."""
    run_dir = Path(job.run_dir)
    clear_run(run_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        path = run_pipeline(job.video, run_dir, None, None, None, job.device, job.overlay, False,
                            config=job.config, overwrite=True)
        result = read_json(path)
        if result.get("complete") is not True:  # the stream ended before the frames it announced
            raise InputError(f"{job.video}: the stream ended early, after {result.get('frames')} frames "
                             "(partial results kept, \"complete\": false)")
        write_thumbnails(result, job.video, run_dir)
    except BleedOriginError as e:
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # the video did not even open: leave no empty folder
        return Outcome(job.name, job.video, "failed", wall_s=time.perf_counter() - t0,
                       cpu_s=time.process_time() - c0, error=_one_line(e))
    frames = int(result.get("frames") or 0)
    fps = float(result.get("fps") or 30.0)
    return Outcome(job.name, job.video, "done", frames, frames / fps, time.perf_counter() - t0,
                   time.process_time() - c0, len(result.get("events") or []))


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())
