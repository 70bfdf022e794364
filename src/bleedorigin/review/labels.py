"""The corrections of one run: `RUN_DIR/labels.json`.

    {"onset_frame": F | null, "source": [x, y] | null, "points": {"<frame>": [[x, y], ...], ...}}

`onset_frame` null means "no bleeding in this video" (the run's alarms were false); then `source`
and `points` are empty. `source` is the bleeding source at the onset frame; `points` are later
positions of the tracked source (the paper labels every 30 frames). Coordinates are pixels of the
run's input video, origin at the centre of the top-left pixel.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bleedorigin.errors import InputError
from bleedorigin.utils.jsonio import read_json

LABELS = "labels.json"
FIELDS = ("onset_frame", "source", "points")


class LabelsError(InputError):
    """A labels body that does not fit the run; the message is one line."""


def parse_labels(raw: bytes | str | Any, frames: int, width: int, height: int) -> dict[str, Any]:
    """The labels of `raw` (JSON text or an already parsed object) checked against a run of
    `frames` frames of `width` x `height`, normalised: points keyed by frame in order."""
    doc = raw
    if isinstance(raw, (bytes, str)):
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LabelsError(f"body is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise LabelsError("body must be a JSON object with onset_frame, source and points")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise LabelsError(f"unknown field {unknown[0]!r} (expected {', '.join(FIELDS)})")
    for key in ("onset_frame", "source"):
        if key not in doc:
            raise LabelsError(f"missing field {key!r}")
    onset = _frame(doc["onset_frame"], frames, "onset_frame", allow_none=True)
    source = None if doc["source"] is None else _xy(doc["source"], width, height, "source")
    points_in = doc.get("points") or {}
    if not isinstance(points_in, dict):
        raise LabelsError("points must be an object {\"frame\": [[x, y], ...]}")
    points: dict[int, list[list[float]]] = {}
    for key, value in points_in.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise LabelsError(f"points: key {key!r} is not a frame number")
        frame = _frame(int(key), frames, f"points[{key}]")
        if not isinstance(value, list) or not value:
            raise LabelsError(f"points[{key}] must be a non-empty list of [x, y]")
        points[frame] = [_xy(p, width, height, f"points[{key}]") for p in value]
    if onset is None and (source is not None or points):
        raise LabelsError("onset_frame is null (no bleeding) but source or points are given")
    early = [f for f in points if onset is not None and f < onset]
    if early:
        raise LabelsError(f"points[{early[0]}] is before the onset frame {onset}")
    return {"onset_frame": onset, "source": source,
            "points": {str(f): points[f] for f in sorted(points)}}


def _frame(value: Any, frames: int, what: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabelsError(f"{what} must be an integer frame{' or null' if allow_none else ''}, got {value!r}")
    if not 0 <= value < frames:
        raise LabelsError(f"{what} {value} outside the run's frames 0..{frames - 1}")
    return value


def _xy(value: Any, width: int, height: int, what: str) -> list[float]:
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        raise LabelsError(f"{what} must be [x, y] with two finite numbers, got {json.dumps(value)[:60]}")
    x, y = float(value[0]), float(value[1])
    if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
        raise LabelsError(f"{what} ({x:.1f}, {y:.1f}) outside the {width}x{height} frame")
    return [x, y]


def load_labels(run_dir: Path, result: dict[str, Any]) -> dict[str, Any] | None:
    """The run's saved corrections checked against its result.json, or None when there are none."""
    path = Path(run_dir) / LABELS
    if not path.is_file():
        return None
    try:
        return parse_labels(read_json(path), int(result["frames"]), int(result["width"]), int(result["height"]))
    except LabelsError as e:
        raise InputError(f"{path}: {e}") from None
