"""The events table of a batch: one row per bleeding episode (a video without bleeding: one row
with no episode), built from the per-video result.json files, so a retried video is counted once.

Frames are 0-based indices of the decoded stream; times in seconds; points in input pixels.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from bleedorigin.utils.files import atomic_open

log = logging.getLogger(__name__)

# column -> type (pyarrow name), in order
COLUMNS: dict[str, str] = {
    "video": "string",  # result folder name inside the batch folder
    "episode": "int64",  # 1, 2, ... within the video; empty when it has no bleeding
    "episodes": "int64",  # episodes in this video
    "onset_frame": "int64",
    "onset_time_s": "float64",
    "onset_confidence": "float64",
    "raised_at_frame": "int64",  # the frame where the alert was raised (the onset is back-dated)
    "source_x": "float64",
    "source_y": "float64",
    "source_confidence": "float64",
    "source_revisions": "string",  # JSON list [{frame, x, y, confidence, why}], "[]" when none
    "episode_end_frame": "int64",  # last tracked frame of the episode
    "episode_end_time_s": "float64",
    "duration_s": "float64",  # onset to episode end
    "ended": "bool_",  # the episode ended before the video did
    "fps": "float64",
    "frames": "int64",
    "onset_model": "string",
    "source_model": "string",
    "track_model": "string",
    "config_hash": "string",
    "path": "string",  # the input video
}


def config_hash(result: dict[str, Any]) -> str:
    """The hash of the pipeline configuration result.json records, else of its model ids: rows
    with equal hashes were made the same way."""
    recorded = result.get("config_hash")
    return recorded if isinstance(recorded, str) and recorded else _digest(result.get("models") or {})


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def raised_frames(run_dir: Path) -> list[int]:
    """Frames where an onset was raised, in order, from the run's per-frame results.jsonl."""
    path = run_dir / "results.jsonl"
    frames: list[int] = []
    if not path.is_file():
        return frames
    with open(path, encoding="utf-8") as f:
        for line in f:
            if '"onset": {' not in line:  # cheap filter: most frames raise nothing
                continue
            record = json.loads(line)
            if record.get("onset") is not None:
                frames.append(int(record["frame"]))
    return frames


def video_rows(name: str, result: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """Rows of one video's complete result.json (times to 1 ms, points to 0.01 px)."""
    fps = float(result.get("fps") or 30.0)
    frames = int(result.get("frames") or 0)
    models = result.get("models") or {}
    events = result.get("events") or []
    base = {"video": name, "episodes": len(events), "fps": fps, "frames": frames,
            "onset_model": models.get("onset"), "source_model": models.get("source"),
            "track_model": models.get("track"), "config_hash": config_hash(result),
            "path": result.get("video")}
    if not events:
        return [{**{c: None for c in COLUMNS}, **base}]
    revisions = [event.get("source_revisions") or [] for event in events]
    # the localizer's decision ("located", the first revision) is made where the alert is raised;
    # results without revisions are read frame by frame for it
    raised = ([int(r[0]["frame"]) for r in revisions] if all(r and r[0].get("why") == "located" for r in revisions)
              else raised_frames(run_dir))
    rows = []
    for k, event in enumerate(events, 1):
        onset, source = event["onset"], event["source"]
        track = event.get("track") or []
        end = int(track[-1]["frame"]) if track else int(onset["frame"])
        at = raised[k - 1] if k <= len(raised) else None
        rows.append({**base, "episode": k, "onset_frame": int(onset["frame"]),
                     "onset_time_s": round(float(onset["time_s"]), 3),
                     "onset_confidence": round(float(onset["confidence"]), 4), "raised_at_frame": at,
                     "source_x": round(float(source["x"]), 2), "source_y": round(float(source["y"]), 2),
                     "source_confidence": round(float(source.get("confidence", 1.0)), 4),
                     "source_revisions": json.dumps(revisions[k - 1]),
                     "episode_end_frame": end, "episode_end_time_s": round(end / fps, 3),
                     "duration_s": round((end - int(onset["frame"])) / fps, 3), "ended": end < frames - 1})
    return [{c: row.get(c) for c in COLUMNS} for row in rows]


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with atomic_open(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """events.parquet, or None (and one log line) when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.warning("%s not written: parquet needs pyarrow (pip install pyarrow)", path.name)
        return None
    schema = pa.schema([(c, getattr(pa, t)()) for c, t in COLUMNS.items()])
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_open(path, "wb") as f:
        pq.write_table(table, f)
    return path
