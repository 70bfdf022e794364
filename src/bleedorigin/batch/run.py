"""`bleedorigin batch`: screen every video of an archive, resumably, on a local pool or Ray.

The batch folder holds one result folder per video (as `run` writes it) and, rebuilt at the end
of every batch from the complete result.json files (also after Ctrl-C): events.csv,
events.parquet, failures.csv and report.html.
"""
from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from bleedorigin.batch.engines import LocalEngine, RayEngine
from bleedorigin.batch.inputs import Video, discover
from bleedorigin.batch.job import Job, Outcome, finished
from bleedorigin.batch.report import write_report
from bleedorigin.batch.table import video_rows, write_csv, write_parquet
from bleedorigin.batch.thumbs import thumb_name, write_thumbnails
from bleedorigin.errors import BleedOriginError, InputError
from bleedorigin.utils.files import atomic_open
from bleedorigin.utils.jsonio import read_json
from bleedorigin.utils.progress import progress_enabled

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
FAILURE_COLUMNS = ("video", "path", "attempts", "error")


@dataclass
class Summary:
    out: Path
    videos: int
    skipped: int  # finished by an earlier batch
    done: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # not done (interrupted)
    rows: int = 0
    wall_s: float = 0.0

    @property
    def video_s(self) -> float:
        return sum(o.video_s for o in self.done)


class _FramesRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        frames, elapsed = task.fields.get("frames", 0), task.elapsed or 0.0
        return Text(f"{frames / elapsed:6.1f} frames/s" if frames and elapsed else "")


class _Bar:
    """One bar over the videos (frames/s and time left) and one line per finished video."""

    def __init__(self, total: int, enabled: bool):
        self.progress = None
        if progress_enabled(enabled):
            self.progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("videos"), _FramesRate(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.progress.add_task("batch", total=total, frames=0)
        self.frames = 0

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def finished(self, outcome: Outcome) -> None:
        self.frames += outcome.frames
        if self.progress is not None:
            self.progress.update(self.task, advance=1, frames=self.frames)
        if outcome.status == "done":
            rate = outcome.frames / outcome.wall_s if outcome.wall_s else 0.0
            log.info("done %s: %d frames, %d episode(s), %.1f frames/s", outcome.name, outcome.frames,
                     outcome.episodes, rate)
        else:
            log.info("failed %s: %s", outcome.name, outcome.error)


def make_engine(engine: str, workers: int, address: str | None, cpus_per_task: float,
                gpus_per_task: float, threads: int | None = None) -> LocalEngine | RayEngine:
    if engine == "local":
        return LocalEngine(workers, threads)
    if engine == "ray":
        return RayEngine(address, cpus_per_task, gpus_per_task)
    raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def run_batch(inputs: list[str | Path], out: str | Path, engine: LocalEngine | RayEngine,
              overlay: bool = False, retries: int = 2, progress: bool = True,
              device: str = "auto", config: str | Path | None = None) -> Summary:
    """Screen every video named by `inputs` into `out`; finished videos are skipped."""
    if retries < 0:
        raise InputError(f"--retries must be >= 0, got {retries}")
    out = Path(out).resolve()
    videos = discover(inputs, out)
    out.mkdir(parents=True, exist_ok=True)
    config = None if config is None else str(Path(config).resolve())
    jobs = [Job(str(v.path), v.name, str(out / v.name), overlay, device, config) for v in videos]
    todo = [j for j in jobs if not finished(j.run_dir)]
    summary = Summary(out, len(jobs), len(jobs) - len(todo))
    if summary.skipped:
        log.info("%d of %d videos finished earlier: skipped", summary.skipped, len(jobs))
    t0 = time.perf_counter()
    ended: set[str] = set()
    try:
        with _Bar(len(todo), progress) as bar:
            for outcome in engine.run(todo, retries) if todo else ():
                ended.add(outcome.name)
                (summary.done if outcome.status == "done" else summary.failed).append(outcome)
                bar.finished(outcome)
    except KeyboardInterrupt:
        summary.pending = [j.name for j in todo if j.name not in ended]
        write_outputs(out, videos, summary)
        log.warning("interrupted: %d videos finished, %d not done (rerun the same command to go on)",
                    len(summary.done), len(summary.pending))
        raise
    summary.wall_s = time.perf_counter() - t0
    write_outputs(out, videos, summary)
    return summary


def _finished_result(run_dir: Path, video: Video) -> dict[str, Any] | None:
    if not finished(run_dir):
        return None
    result = read_json(run_dir / "result.json")
    missing = [k for k in range(1, len(result.get("events") or []) + 1)
               if not (run_dir / thumb_name(k)).is_file()]
    if missing:  # the worker stopped between result.json and its thumbnails
        try:
            write_thumbnails(result, video.path, run_dir)
        except BleedOriginError as e:
            log.warning("%s: no onset thumbnails (%s)", video.name, e)
    return result


def write_outputs(out: Path, videos: list[Video], summary: Summary) -> None:
    """events.csv/.parquet, failures.csv and report.html from the finished result folders."""
    finished_videos = []
    rows: list[dict[str, Any]] = []
    for video in videos:
        result = _finished_result(out / video.name, video)
        if result is not None:
            video_table = video_rows(video.name, result, out / video.name)
            rows += video_table
            finished_videos.append((video.name, result, video_table))
    write_csv(rows, out / "events.csv")
    write_parquet(rows, out / "events.parquet")
    failures = [{"video": o.name, "path": o.video, "attempts": o.attempts, "error": o.error}
                for o in summary.failed]
    with atomic_open(out / "failures.csv", "w") as f:
        writer = csv.DictWriter(f, fieldnames=FAILURE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(failures)
    write_report(out / "report.html", finished_videos, failures, summary.pending)
    summary.rows = len(rows)
