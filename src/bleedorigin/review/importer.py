"""`bleedorigin data import-review`: reviewed runs -> benchmark clips for training and evaluation.

From each RUN_DIR (result.json + the labels.json saved by `bleedorigin review`), cut from the run's
input video:
- a detection clip around the corrected onset: 150 frames with the onset at frame 120 where the
  video allows (kind `detect`, the source annotated at the onset; `full` when no source was given);
- a tracking clip from the corrected onset to the last corrected track point: the source at its
  frame 0, the corrected points after it (`track_short` / `track_long` when they fall every 30
  frames, `sparse` otherwise);
- a negative clip (kind `negative`) before every alarm of the run that the review found false: no
  bleeding in the video, or an alarm more than 16 frames before the corrected onset. It ends 30
  frames after the alarm (never past the corrected onset) and is up to 150 frames long.
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.io import bench
from bleedorigin.io.bench import Clip, write_bench_clip, write_manifest
from bleedorigin.io.video import probe_video, read_frames
from bleedorigin.review.labels import LABELS, load_labels
from bleedorigin.utils.jsonio import read_json

log = logging.getLogger(__name__)

FALSE_ALARM_MARGIN = 16  # frames: the widest onset tolerance of the paper's metric (Acc±16)
AFTER_ALARM = 30         # frames a negative clip runs on after a false alarm
MIN_NEGATIVE = 32        # shorter stretches are too short for the onset detector's window


def import_review(run_dirs: list[Path], out: Path) -> list[Clip]:
    """Write the clips of every reviewed run into the benchmark folder `out` and return them.
    Clips already in `out` stay, except those of a run imported again (same folder name)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    kept = bench.load_bench(out) if (out / bench.MANIFEST).is_file() else []
    written: list[Clip] = []
    used: set[str] = set()  # run names of this import; two runs in folders of the same name get _2, _3
    for run_dir in run_dirs:
        name = _unique(re.sub(r"[^A-Za-z0-9_-]+", "_", Path(run_dir).resolve().name) or "run", used)
        clips = _run_clips(Path(run_dir), name)
        if not clips:
            log.warning("%s: the review leaves nothing to learn from (no onset and no alarm)", run_dir)
        written += [write_bench_clip(out, clip, frames) for clip, frames in clips]
    new_ids = {c.id for c in written}
    for old in kept:  # a run imported again: clips its new review no longer gives go away
        if old.patient in used and old.id not in new_ids:
            shutil.rmtree(out / "clips" / old.id, ignore_errors=True)
    write_manifest(out, [c for c in kept if c.patient not in used] + written)
    return written


def _unique(name: str, used: set[str]) -> str:
    out, k = name, 2
    while out in used:
        out, k = f"{name}_{k}", k + 1
    used.add(out)
    return out


def _run_clips(run_dir: Path, name: str) -> list[tuple[Clip, object]]:
    """(clip, frames) pairs of one reviewed run."""
    result = read_json(run_dir / "result.json", missing=f"{run_dir}: no result.json (not a run folder)")
    labels = load_labels(run_dir, result)
    if labels is None:
        raise InputError(f"{run_dir}: no {LABELS}; review the run first (bleedorigin review {run_dir})")
    video = Path(result["video"])
    if not video.is_file():
        raise InputError(f"{run_dir}: the run's input video {video} is not a file (it is needed to cut clips)")
    info = probe_video(video)
    total = info.frames or int(result["frames"])
    if (info.width, info.height) != (int(result["width"]), int(result["height"])):
        raise InputError(f"{video}: {info.width}x{info.height}, the run saw {result['width']}x{result['height']}")
    base = dict(patient=name, fps=float(result["fps"]))
    onset, source = labels["onset_frame"], labels["source"]
    points = {int(f): [tuple(p) for p in pts] for f, pts in labels["points"].items()}
    clips = []

    def cut(clip: Clip, start: int, stop: int) -> None:
        clips.append((clip, read_frames(video, start, stop)))

    if onset is not None:
        start = max(0, min(onset - bench.DETECT_ONSET, total - bench.DETECT_FRAMES))
        cut(Clip(f"{name}_onset", video, "detect" if source else "full", onset_frame=onset - start,
                 labels={onset - start: [tuple(source)]} if source else {}, **base),
            start, min(total, start + bench.DETECT_FRAMES))
        if source and points:
            track = {0: [tuple(source)], **{f - onset: pts for f, pts in points.items()}}
            cut(Clip(f"{name}_track", video, _track_kind(sorted(track)), labels=track, **base),
                onset, onset + max(track) + 1)
    alarms = sorted(e["onset"]["frame"] for e in result.get("events", []))
    false = [a for a in alarms if onset is None or a + FALSE_ALARM_MARGIN < onset]
    last_stop = 0
    for k, alarm in enumerate(false):
        stop = min(total, alarm + AFTER_ALARM, onset if onset is not None else total)
        start = max(last_stop, stop - bench.DETECT_FRAMES)
        if stop - start < MIN_NEGATIVE:
            log.info("%s: alarm at frame %d leaves only %d clean frames; no negative clip", run_dir, alarm, stop - start)
            continue
        cut(Clip(f"{name}_negative{k}", video, "negative", scenario="none", **base), start, stop)
        last_stop = stop
    return clips


def _track_kind(frames: list[int]) -> str:
    """The benchmark's kind for a clip annotated at `frames` (relative, first 0)."""
    if frames == [0, bench.LABEL_EVERY]:
        return "track_short"
    if frames == list(range(0, frames[-1] + 1, bench.LABEL_EVERY)):
        return "track_long"
    return "sparse"
