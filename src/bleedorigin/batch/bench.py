"""`bleedorigin bench --batch`: archive throughput of `batch` with 1, 2, ... local workers.

The archive is `videos` copies of the shipped sample clip (512x384, 30 fps, 10 s, one bleeding
episode). Each worker gets one core (one compute thread), so the worker counts compare fairly.
Reported per worker count: wall time (pool start-up and the table/report included), videos/hour,
the real-time factor (video seconds per wall second) and where a video's time goes: decoding,
each stage (from the per-frame timings in results.jsonl) and the rest (writing results, the
timeline plot, loading the models).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bleedorigin.batch.engines import LocalEngine
from bleedorigin.batch.run import run_batch
from bleedorigin.commands import SAMPLE_CLIP
from bleedorigin.errors import InputError
from bleedorigin.io.video import open_video

STAGES = ("onset", "source", "track")


def decode_ms_per_frame(video: Path) -> float:
    t0 = time.perf_counter()
    with open_video(str(video)) as reader:
        n = sum(1 for _ in reader)
    return (time.perf_counter() - t0) * 1e3 / max(n, 1)


def _stage_ms(run_dir: Path) -> dict[str, float]:
    totals = dict.fromkeys(STAGES, 0.0)
    with open(run_dir / "results.jsonl", encoding="utf-8") as f:
        for line in f:
            for stage, ms in json.loads(line).get("timings_ms", {}).items():
                totals[stage] = totals.get(stage, 0.0) + float(ms)
    return totals


def bench_batch(videos: int = 6, workers: tuple[int, ...] = (1, 2), clip: Path = SAMPLE_CLIP,
                device: str = "cpu") -> dict[str, Any]:
    if videos < 1 or not workers or min(workers) < 1:
        raise InputError("--batch needs at least one video and worker counts >= 1")
    if not clip.is_file():
        raise InputError(f"sample clip missing from the installation: {clip}")
    decode = decode_ms_per_frame(clip)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bleedorigin-batch-bench-") as tmp:
        archive = Path(tmp) / "archive"
        archive.mkdir()
        for i in range(videos):
            (archive / f"video_{i:03d}{clip.suffix}").symlink_to(clip.resolve())
        for n in workers:
            out = Path(tmp) / f"workers_{n}"
            t0 = time.perf_counter()
            summary = run_batch([archive], out, LocalEngine(n, threads=1), retries=0, progress=False,
                                device=device)
            wall = time.perf_counter() - t0
            if summary.failed:
                raise InputError(f"bench video failed: {summary.failed[0].error}")
            frames = sum(o.frames for o in summary.done)
            stage = dict.fromkeys(STAGES, 0.0)
            for o in summary.done:
                for k, ms in _stage_ms(out / o.name).items():
                    stage[k] = stage.get(k, 0.0) + ms
            job_ms = sum(o.wall_s for o in summary.done) * 1e3
            per_frame = {k: v / frames for k, v in stage.items()}
            per_frame["decode"] = decode
            per_frame["other"] = job_ms / frames - sum(per_frame.values())
            runs[str(n)] = {
                "workers": n, "videos": len(summary.done), "frames": frames, "wall_s": round(wall, 2),
                "videos_per_hour": round(len(summary.done) / wall * 3600, 1),
                "realtime_factor": round(summary.video_s / wall, 3),
                "job_s_per_video": round(job_ms / 1e3 / len(summary.done), 2),
                "cpu_s_per_video": round(sum(o.cpu_s for o in summary.done) / len(summary.done), 2),
                "ms_per_frame": {k: round(v, 2) for k, v in per_frame.items()}}
    base = runs[str(min(workers))]["videos_per_hour"]
    for r in runs.values():
        r["speedup"] = round(r["videos_per_hour"] / base, 2)
    return {"clip": clip.name, "video_s_each": _duration(clip), "threads_per_worker": 1, "runs": runs}


def _duration(clip: Path) -> float:
    with open_video(str(clip)) as reader:
        info = reader.info
    return round((info.frames or 0) / (info.fps or 30.0), 2)


def format_batch_bench(result: dict[str, Any]) -> str:
    rows = ["| workers | videos | wall s | videos/hour | real-time factor | speed-up | s per video (job) "
            "| ms/frame: decode, onset, source, track, other |", "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"].values():
        ms = r["ms_per_frame"]
        split = ", ".join(f"{ms[k]:.1f}" for k in ("decode", "onset", "source", "track", "other"))
        rows.append(f"| {r['workers']} | {r['videos']} | {r['wall_s']:.1f} | {r['videos_per_hour']:.0f} "
                    f"| {r['realtime_factor']:.2f} | {r['speedup']:.2f} | {r['job_s_per_video']:.2f} | {split} |")
    return (f"batch over copies of {result['clip']} ({result['video_s_each']:g} s of video each), "
            f"one compute thread per worker\n\n" + "\n".join(rows))
