"""One clip of a benchmark folder, as the manifest describes it."""
from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin.errors import InputError

XY = tuple[float, float]


@dataclass
class Clip:
    id: str
    video: Path
    kind: str
    patient: str = "unknown"
    site: str = "unknown"
    scenario: str = "unknown"
    num_frames: int = 0
    fps: float = 30.0
    width: int = 0
    height: int = 0
    onset_frame: int | None = None
    labels: dict[int, list[XY | None]] = field(default_factory=dict)
    gt: Path | None = None
    split: str | None = None
    # sparse-format file with the tracked point on every frame (imported clips' labels_dense.json)
    dense_labels: Path | None = None
    # real clip without point labels: its bleeding status from meta.json (onset_frame = where it starts)
    bleeding: bool | None = None

    def to_manifest(self, root: Path) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "labels"}
        d["video"] = _relative(self.video, root)
        d["gt"] = _relative(self.gt, root) if self.gt is not None else None
        d["dense_labels"] = _relative(self.dense_labels, root) if self.dense_labels is not None else None
        d["label_frames"] = sorted(self.labels)
        return d


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


# Numbers a manifest entry or a meta.json gives about a clip: (integer?, smallest allowed).
CLIP_NUMBERS = {"num_frames": (True, 0), "frames": (True, 0), "width": (True, 0), "height": (True, 0),
                "fps": (False, 0), "onset_frame": (True, 0), "bleeding_from_frame": (True, 0)}


def check_numbers(values: dict[str, Any], where: str) -> None:
    """InputError naming the first of `values`' CLIP_NUMBERS that is not a number of its kind
    (null is allowed: the value is then unknown)."""
    for key, (integer, low) in CLIP_NUMBERS.items():
        value = values.get(key)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (integer and not float(value).is_integer()) or value < low:
            kind = "an integer" if integer else "a number"
            raise InputError(f"{where}: {key!r} must be {kind} >= {low}, got {value!r}")


def read_arrays(path: str | Path, *keys: str) -> dict[str, np.ndarray]:
    """Those of `keys` found in the .npz file `path`; InputError when it is damaged (cut short,
    not a zip, an array unreadable)."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:  # only these arrays: the rest stays packed
            return {k: np.asarray(z[k]) for k in keys if k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: unreadable arrays ({e})") from None
