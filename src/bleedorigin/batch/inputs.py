"""Which videos a batch screens: video files, folders searched recursively for videos and
image-folder clips, and text files listing paths (one a line, `#` comments, relative to the list).
Each video gets a result folder name inside the batch folder that stays the same on a rerun."""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.io.video import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv",
                  ".flv", ".ts", ".mts", ".m2ts", ".3gp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
MIN_CLIP_IMAGES = 2  # a folder with one picture is not a clip (benchmark folders hold previews)


@dataclass(frozen=True)
class Video:
    path: Path  # absolute
    name: str  # result folder inside the batch folder


def _is_image_clip(folder: Path) -> bool:
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return len(images) >= MIN_CLIP_IMAGES


def _search(folder: Path, skip: Path | None) -> list[Path]:
    """Videos and image-folder clips under `folder` (an image-folder clip is not searched further)."""
    if skip is not None and folder.resolve() == skip:
        return []
    if _is_image_clip(folder):
        return [folder]
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            found += _search(entry, skip)
        elif entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append(entry)
    return found


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the list {path}: {e}") from None
    entries = [line.strip() for line in lines]
    return [(path.parent / e) for e in entries if e and not e.startswith("#")]


def _expand(item: Path, skip: Path | None, from_list: bool) -> list[Path]:
    if not item.exists():
        raise InputError(f"input not found: {item}")
    if item.is_dir():
        return _search(item, skip)
    suffix = item.suffix.lower()
    if suffix in LIST_SUFFIXES and not from_list:
        return [p for entry in _read_list(item) for p in _expand(entry, skip, True)]
    if suffix in IMAGE_SUFFIXES:
        raise InputError(f"{item}: a single image is not a video (give its folder)")
    return [item]  # any other file is taken as a video: a bad one fails as that video's failure


def _names(paths: list[Path]) -> list[str]:
    """The file or folder stem; a stem shared by several inputs gets its folder's name in front
    (`clip_007_video`), then, if still shared, a short hash of the path."""
    names = [p.stem if p.is_file() else p.name for p in paths]
    for widen in (lambda n, p: f"{p.parent.name}_{n}",
                  lambda n, p: f"{n}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"):
        count = Counter(names)
        names = [widen(n, p) if count[n] > 1 else n for n, p in zip(names, paths)]
    return names


def discover(inputs: list[str | Path], out: str | Path | None = None) -> list[Video]:
    """The videos named by `inputs`, each once, in the given order (folders sorted); `out` (the
    batch folder) is never searched."""
    skip = Path(out).resolve() if out is not None else None
    paths: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        for p in _expand(Path(item), skip, False):
            p = Path(os.path.abspath(p))  # symlinks kept: each link is a video of the archive
            if p not in seen:
                seen.add(p)
                paths.append(p)
    if not paths:
        raise InputError(f"no videos found in {', '.join(str(i) for i in inputs)}")
    return [Video(p, n) for p, n in zip(paths, _names(paths))]
