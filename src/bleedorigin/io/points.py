"""Query points for `bleedorigin track --points FILE`: a CSV or JSON list of (frame, x, y).

CSV: one `frame,x,y` row per point (a first row `frame,x,y` is a header; blank lines and lines
starting with `#` are skipped). JSON: a list of `[frame, x, y]` or of `{"frame", "x", "y"}`.
Frames are 0-based indices, x and y input-video pixels. A bad row raises InputError naming the
file and the row."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from bleedorigin.errors import InputError


def read_points(path: str | Path) -> list[tuple[int, float, float]]:
    """The (frame, x, y) rows of a points file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--points {path}: cannot read ({e.__class__.__name__})") from None
    rows = _json_rows(path, text) if path.suffix.lower() == ".json" else _csv_rows(text)
    points = [_point(path, where, row) for where, row in rows]
    if not points:
        raise InputError(f"--points {path}: no points")
    return points


def _json_rows(path: Path, text: str) -> list[tuple[str, object]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"--points {path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(doc, list):
        raise InputError(f"--points {path}: expected a list of [frame, x, y] or {{frame, x, y}}")
    rows: list[tuple[str, object]] = []
    for i, item in enumerate(doc):
        if isinstance(item, dict):
            item = [item.get("frame"), item.get("x"), item.get("y")]
        rows.append((f"item {i}", item))
    return rows


def _csv_rows(text: str) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for line_no, row in enumerate(csv.reader(text.splitlines()), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and [c.lower() for c in cells] == ["frame", "x", "y"]:
            rows.append(("header", None))
            continue
        rows.append((f"line {line_no}", cells))
    return [r for r in rows if r[0] != "header"]


def _point(path: Path, where: str, row: object) -> tuple[int, float, float]:
    bad = InputError(f"--points {path}, {where}: expected frame, x, y (a frame index >= 0 and two finite "
                     f"numbers), got {row!r}")
    if not isinstance(row, (list, tuple)) or len(row) != 3 or any(isinstance(v, bool) for v in row):
        raise bad
    try:
        frame, x, y = float(row[0]), float(row[1]), float(row[2])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad from None
    if not (math.isfinite(x) and math.isfinite(y)) or not frame.is_integer() or frame < 0:
        raise bad
    return int(frame), x, y
