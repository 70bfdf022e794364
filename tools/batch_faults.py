"""The fault drill of docs/batch.md: a 10-video batch with one corrupt file and one worker process
killed (SIGKILL from outside) half-way through a video, then the same command again.

    python tools/batch_faults.py --work /tmp/batch_drill [--workers 2]

Checks and prints: 9 videos in events.csv (no duplicate rows), 1 in failures.csv, every finished
result.json complete, and on the rerun no finished video recomputed (result.json mtimes).
Exit 1 when a check fails.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bleedorigin.commands import SAMPLE_CLIP


def _workers(pid: int) -> list[int]:
    """The batch's worker processes (not multiprocessing's resource tracker)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    archive, out = args.work / "archive", args.work / "out"
    shutil.rmtree(args.work, ignore_errors=True)
    archive.mkdir(parents=True)
    for i in range(9):
        (archive / f"case_{i}.mp4").symlink_to(SAMPLE_CLIP.resolve())
    data = SAMPLE_CLIP.read_bytes()
    (archive / "case_9_corrupt.mp4").write_bytes(data[: len(data) // 4] + os.urandom(4096))
    cmd = [sys.executable, "-m", "bleedorigin", "batch", str(archive), "--out", str(out),
           "--workers", str(args.workers), "--device", "cpu"]

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    killed = None
    while proc.poll() is None and killed is None:  # kill a worker once a video is half done
        time.sleep(0.2)
        half = [p for p in out.glob("*/results.jsonl") if p.stat().st_size > 30_000
                and not (p.parent / "result.json").exists()]
        workers = _workers(proc.pid)
        if half and workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
            print(f"killed worker {killed} while {', '.join(p.parent.name for p in half)} were in work "
                  "(the batch log names the video it was running)", flush=True)
    proc.wait()
    first_s = time.perf_counter() - t0
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/result.json")}

    rows, failures = _rows(out / "events.csv"), _rows(out / "failures.csv")
    videos = sorted({r["video"] for r in rows})
    keys = [(r["video"], r["episode"]) for r in rows]
    checks = {
        "a worker was killed": killed is not None,
        "9 videos in events.csv": len(videos) == 9,
        "no duplicate rows": len(keys) == len(set(keys)),
        "1 video in failures.csv": [f["video"] for f in failures] == ["case_9_corrupt"],
    }
    t1 = time.perf_counter()
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    rerun_s = time.perf_counter() - t1
    checks["rerun exit 0"] = rerun.returncode == 0
    checks["rerun recomputed nothing finished"] = stamps == {
        p: p.stat().st_mtime_ns for p in out.glob("*/result.json") if p in stamps}
    checks["rerun table unchanged"] = _rows(out / "events.csv") == rows
    print(f"first batch {first_s:.0f} s (exit {proc.returncode}), rerun {rerun_s:.0f} s")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
