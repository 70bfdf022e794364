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
import re
from pathlib import Path
from typing import Any

from bleedorigin.errors import InputError

LABELS = "labels.json"
FIELDS = ("onset_frame", "source", "points")
# A labels body is at most 4 deep (object > points > list > [x, y]); deeper input is refused
# before parsing, since json.loads recurses once per level and fails at ~1000.
MAX_DEPTH = 8
MAX_DIGITS = 15  # an integer beyond any frame number or pixel; longer ones cost quadratic time
FRAME_KEY = re.compile(r"0|[1-9][0-9]*")  # canonical decimal: no sign, no leading 0, ASCII digits
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
NOT_BRACKET = re.compile(rb"[^\[\]{}]")


class LabelsError(InputError):
    """A labels body that does not fit the run; the message is one line."""


def parse_labels(raw: bytes | str | Any, frames: int, width: int, height: int) -> dict[str, Any]:
    """The labels of `raw` (JSON text or an already parsed object) checked against a run of
    `frames` frames of `width` x `height`, normalised: points keyed by frame in order."""
    doc = _loads(raw) if isinstance(raw, (bytes, str)) else raw
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
        if not (isinstance(key, str) and len(key) <= MAX_DIGITS and FRAME_KEY.fullmatch(key)):
            raise LabelsError(f"points: key {key[:20]!r} is not a frame number (decimal digits, no leading 0)")
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


def _loads(raw: bytes | str) -> Any:
    """json.loads with bounded nesting and integer length, and no key given twice."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _depth(data) > MAX_DEPTH:
        raise LabelsError(f"body is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabelsError(f"body is not valid JSON ({e})") from None


def _depth(data: bytes) -> int:
    """How deep [ and { nest outside strings, counted up to one past MAX_DEPTH."""
    depth = deepest = 0
    for c in NOT_BRACKET.sub(b"", JSON_STRING.sub(b"", data)):
        depth += 1 if c in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise LabelsError(f"integer with more than {MAX_DIGITS} digits ({text[:12]}...)")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise LabelsError(f"key {twice[:20]!r} given twice")
    return out


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
    return labels_of_file(path.read_bytes(), path, result)


def labels_of_file(data: bytes, path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The corrections in `data`, the content of labels.json at `path`, checked against `result`."""
    try:
        return parse_labels(data, int(result["frames"]), int(result["width"]), int(result["height"]))
    except LabelsError as e:
        raise InputError(f"{path}: {e}") from None
