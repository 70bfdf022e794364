"""LabelMe JSON with `point` shapes for the bleeding source (or several tracked points).

Point k of a frame is the `point` shape with `group_id == k` (shapes without a group id take the
next free index in file order). Points absent from a file read back as None. Extra fields and
non-point shapes are ignored; a file that is not a LabelMe object, or a point shape without exactly
one pair of finite numbers, is an InputError naming the file.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.utils.jsonio import read_json, write_json_atomic

DEFAULT_LABEL = "bleeding_source"
LABELME_VERSION = "5.4.1"

XY = tuple[float, float]


@dataclass
class LabelMeFile:
    points: list[XY | None]
    labels: list[str] = field(default_factory=list)
    image_size: tuple[int, int] | None = None  # (W, H)
    image_path: str = ""


def save_labelme(path: str | os.PathLike, points: list[XY | None], image_size: tuple[int, int],
                 image_path: str = "", label: str | list[str] = DEFAULT_LABEL) -> None:
    """Write point k as a `point` shape with group_id k (None points are left out), atomically."""
    labels = [label] * len(points) if isinstance(label, str) else list(label)
    shapes = [{"label": labels[k], "points": [[float(p[0]), float(p[1])]], "group_id": k,
               "description": "", "shape_type": "point", "flags": {}, "mask": None}
              for k, p in enumerate(points) if p is not None]
    doc = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
           "imageData": None, "imageHeight": int(image_size[1]), "imageWidth": int(image_size[0])}
    write_json_atomic(Path(path), doc)


def load_labelme(path: str | os.PathLike) -> LabelMeFile:
    path = Path(path)
    doc = read_json(path, missing=f"{path}: no such LabelMe file")
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise InputError(f"{path}: not a LabelMe file (no 'shapes' list)")
    found: dict[int, tuple[XY, str]] = {}
    ungrouped: list[tuple[XY, str]] = []
    for i, shape in enumerate(doc["shapes"]):
        if not isinstance(shape, dict):
            raise InputError(f"{path}: shape {i} is not an object")
        if shape.get("shape_type", "polygon") != "point":
            continue
        xy = _point_of(shape, path, i)
        label = str(shape.get("label", DEFAULT_LABEL))
        gid = shape.get("group_id")
        if gid is None:
            ungrouped.append((xy, label))
        elif not isinstance(gid, int) or gid < 0 or gid in found:
            raise InputError(f"{path}: shape {i} has a bad or repeated group_id {gid!r}")
        else:
            found[gid] = (xy, label)
    for item in ungrouped:
        found[next(k for k in range(len(found) + 1) if k not in found)] = item
    n = max(found) + 1 if found else 0
    points = [found[k][0] if k in found else None for k in range(n)]
    labels = [found[k][1] if k in found else "" for k in range(n)]
    return LabelMeFile(points, labels, _image_size(doc, path), str(doc.get("imagePath") or ""))


def _point_of(shape: dict, path: Path, i: int) -> XY:
    pts = shape.get("points")
    ok = isinstance(pts, list) and len(pts) == 1 and isinstance(pts[0], list | tuple) and len(pts[0]) == 2
    if ok:
        try:
            x, y = float(pts[0][0]), float(pts[0][1])
            ok = math.isfinite(x) and math.isfinite(y)
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise InputError(f"{path}: point shape {i} needs exactly one [x, y] pair of numbers, got {pts!r}")
    return (x, y)


def _image_size(doc: dict, path: Path) -> tuple[int, int] | None:
    w, h = doc.get("imageWidth"), doc.get("imageHeight")
    if w is None and h is None:
        return None
    if not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
        raise InputError(f"{path}: imageWidth/imageHeight must be positive integers, got {w!r}x{h!r}")
    return (w, h)
