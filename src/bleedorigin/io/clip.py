"""One clip of a benchmark folder, as the manifest describes it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

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
