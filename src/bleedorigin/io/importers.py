"""Import clips stored in the sparse label format into `Clip`s.

The format (ESD sample clips, VL-SurgPT): a folder with `video.mp4`, `labels.json` mapping a frame
index to a list of points (`[x, y]` or null, one entry per tracked point) and an optional
`meta.json`. Points are in pixels of the stored frames. A `labels_dense.json` beside `labels.json`
(same format, the point on every frame; ESD clips) is the clip's dense truth for tracking scores.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.io.clip import Clip, check_numbers
from bleedorigin.utils.jsonio import read_json

# Scenario words used by the ESD project page, mapped to the benchmark's scenario names.
ESD_SCENARIOS = {"clear": "clear_view", "clear_view": "clear_view", "bleeding": "obscured_view",
                 "bleeding_view": "obscured_view", "camera": "camera_jitter", "reflection": "light_reflection",
                 "water": "water_flushing", "instrument": "instrument_interference"}


def read_sparse_labels(path: Path) -> dict[int, list[tuple[float, float] | None]]:
    """`{"frame": [[x, y] | null, ...]}` -> {frame: [(x, y) | None, ...]}, strictly checked."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected an object {{frame: [[x, y] or null, ...]}}")
    labels: dict[int, list[tuple[float, float] | None]] = {}
    for key, points in doc.items():
        if not str(key).isdigit() or not isinstance(points, list):
            raise InputError(f"{path}: entry {key!r} must map a frame index to a list of points")
        labels[int(key)] = [_point(p, path, key) for p in points]
    return dict(sorted(labels.items()))


def _point(p, path: Path, key: str) -> tuple[float, float] | None:
    if p is None:
        return None
    try:
        x, y = float(p[0]), float(p[1])
        if len(p) != 2 or not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError
    except (TypeError, ValueError, IndexError, KeyError):
        raise InputError(f"{path}: frame {key}: bad point {p!r} (expected [x, y] or null)") from None
    return (x, y)


def _meta(folder: Path) -> dict:
    f = folder / "meta.json"
    if not f.is_file():
        return {}
    meta = read_json(f)
    if not isinstance(meta, dict):
        raise InputError(f"{f}: expected a JSON object")
    check_numbers(meta, str(f))
    return meta


def import_sparse_clip(folder: Path, labels_file: str = "labels.json", clip_id: str | None = None) -> Clip:
    """One sparse-label clip folder as a `sparse` Clip (video read in place)."""
    from bleedorigin.io.video import probe_video

    folder = Path(folder)
    video = folder / "video.mp4"
    if not video.is_file():
        raise InputError(f"{folder}: no video.mp4")
    labels = read_sparse_labels(folder / labels_file)
    dense = folder / "labels_dense.json"  # dense truth of labels.json's point (not of labels_tissue.json)
    meta = _meta(folder)
    info = probe_video(video)
    scenario = str(meta.get("scenario", "unknown"))
    if "category" in meta:  # VL-SurgPT: "0 = Deformation" -> "deformation"
        scenario = re.sub(r"[^a-z0-9]+", "_", scenario.split("=")[-1].lower()).strip("_") or "unknown"
    else:
        scenario = ESD_SCENARIOS.get(scenario, scenario)
    return Clip(id=clip_id or folder.name, video=video, kind="sparse", patient=f"{folder.parent.name}/{folder.name}",
                site=str(meta.get("site", "unknown")), scenario=scenario,
                num_frames=int(meta.get("frames") or info.frames or 0), fps=float(meta.get("fps") or info.fps),
                width=info.width, height=info.height, onset_frame=_bleeding_from(meta, folder), labels=labels,
                dense_labels=dense if labels_file == "labels.json" and dense.is_file() else None)


def _bleeding_from(meta: dict, folder: Path) -> int | None:
    """meta.json's `bleeding_from_frame` (a labelled clip in which bleeding starts mid-clip, e.g. the
    deployment video, or a status-only clip), checked: a frame index >= 0 given with `bleeding: true`;
    None when not given (the labelled ESD samples bleed from frame 0)."""
    start = meta.get("bleeding_from_frame")
    if start is not None and (meta.get("bleeding") is not True or not isinstance(start, int) or start < 0):
        raise InputError(f"{folder / 'meta.json'}: 'bleeding_from_frame' must be a frame index >= 0 "
                         f"given with 'bleeding': true")
    return start


def _clip_folders(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    folders = sorted(p for p in root.iterdir() if (p / "video.mp4").is_file() and (p / "labels.json").is_file())
    if not folders:
        raise InputError(f"{root}: no clip folders with video.mp4 and labels.json")
    return folders


def import_esd_clips(root: str | Path) -> list[Clip]:
    """The ESD sample clips (one bleeding-source point per labelled frame)."""
    return [import_sparse_clip(f) for f in _clip_folders(Path(root))]


def import_clip_folder(folder: Path) -> list[Clip]:
    """A sparse clip folder; an extra `labels_tissue.json` (VL-SurgPT: tissue points on the same
    video) becomes a second clip `<name>_tissue`."""
    clips = [import_sparse_clip(folder)]
    if (folder / "labels_tissue.json").is_file():
        clips.append(import_sparse_clip(folder, "labels_tissue.json", f"{folder.name}_tissue"))
    return clips


def is_status_folder(folder: Path) -> bool:
    """A real clip folder without point labels whose meta.json states its bleeding status."""
    folder = Path(folder)
    return ((folder / "video.mp4").is_file() and not (folder / "labels.json").is_file()
            and "bleeding" in _meta(folder))


def import_status_clip(folder: Path) -> Clip:
    """A real clip known only to bleed from a frame on, or to be bleeding-free: meta.json holds
    `bleeding` (true/false) and, when true, `bleeding_from_frame` (the first bleeding frame)."""
    from bleedorigin.io.video import probe_video

    folder = Path(folder)
    meta = _meta(folder)
    bleeding = meta.get("bleeding")
    if not isinstance(bleeding, bool):
        raise InputError(f"{folder / 'meta.json'}: 'bleeding' must be true or false")
    start = _bleeding_from(meta, folder)
    if bleeding and start is None:
        raise InputError(f"{folder / 'meta.json'}: 'bleeding_from_frame' (a frame index >= 0) is needed "
                         f"when 'bleeding' is true")
    info = probe_video(folder / "video.mp4")
    return Clip(id=folder.name, video=folder / "video.mp4", kind="sparse",
                patient=f"{folder.parent.name}/{folder.name}",
                site=str(meta.get("site", "unknown")), scenario=str(meta.get("category", "unknown")),
                num_frames=int(info.frames or meta.get("frames") or 0), fps=float(info.fps or meta.get("fps") or 30.0),
                width=info.width, height=info.height, onset_frame=start, bleeding=bleeding)


def import_vlsurgpt(root: str | Path) -> list[Clip]:
    """VL-SurgPT clips (several manual points per clip)."""
    return [c for f in _clip_folders(Path(root)) for c in import_clip_folder(f)]
