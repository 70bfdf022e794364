"""Result objects: plain Python/numpy, no tensors or images, each with to_dict/from_dict.

Coordinates are pixels of the input video (x right, y down); frames are 0-based indices.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Point:
    x: float
    y: float
    confidence: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return {"x": float(self.x), "y": float(self.y), "confidence": float(self.confidence)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Point:
        return cls(float(d["x"]), float(d["y"]), float(d.get("confidence", 1.0)))


@dataclass(slots=True)
class TrackPoint:
    frame: int
    x: float
    y: float
    confidence: float
    visible: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"frame": int(self.frame), "x": float(self.x), "y": float(self.y),
                "confidence": float(self.confidence), "visible": bool(self.visible)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackPoint:
        return cls(int(d["frame"]), float(d["x"]), float(d["y"]), float(d["confidence"]),
                   bool(d.get("visible", True)))


@dataclass(slots=True)
class Onset:
    frame: int
    time_s: float
    confidence: float
    cue: str | None = None  # why it was raised (the onset detector's cue), when the detector says
    where: tuple[float, float, float, float] | None = None  # box x0, y0, x1, y1 (input px) of that cue

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": int(self.frame), "time_s": float(self.time_s),
                               "confidence": float(self.confidence)}
        if self.cue is not None:
            out["cue"] = self.cue
        if self.where is not None:
            out["where"] = [round(float(v), 1) for v in self.where]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Onset:
        where = d.get("where")
        return cls(int(d["frame"]), float(d["time_s"]), float(d["confidence"]), d.get("cue"),
                   None if where is None else tuple(float(v) for v in where))


@dataclass(slots=True)
class SourceRevision:
    """Where the pipeline placed the source on `frame` and why (the first one of an episode is
    the localizer's decision at the onset, later ones moves or confirmations)."""

    frame: int
    x: float
    y: float
    confidence: float
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"frame": int(self.frame), "x": float(self.x), "y": float(self.y),
                "confidence": float(self.confidence), "why": str(self.why)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceRevision:
        return cls(int(d["frame"]), float(d["x"]), float(d["y"]), float(d["confidence"]), str(d.get("why", "")))


PHASES = ("waiting", "bleeding", "tracking")


@dataclass
class FrameResult:
    """What the pipeline knows after one frame."""

    frame: int
    time_s: float
    phase: str  # one of PHASES
    onset_score: float
    onset: Onset | None = None  # set on the frame where an onset is raised
    source: Point | None = None  # set on the onset frame
    track: TrackPoint | None = None  # set on every tracked frame
    timings_ms: dict[str, float] = field(default_factory=dict)
    revision: SourceRevision | None = None  # set where the source was placed, moved or confirmed

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "time_s": self.time_s, "phase": self.phase,
                "onset_score": float(self.onset_score),
                "onset": None if self.onset is None else self.onset.to_dict(),
                "source": None if self.source is None else self.source.to_dict(),
                "track": None if self.track is None else self.track.to_dict(),
                "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
                "revision": None if self.revision is None else self.revision.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameResult:
        return cls(int(d["frame"]), float(d["time_s"]), str(d["phase"]), float(d["onset_score"]),
                   None if d.get("onset") is None else Onset.from_dict(d["onset"]),
                   None if d.get("source") is None else Point.from_dict(d["source"]),
                   None if d.get("track") is None else TrackPoint.from_dict(d["track"]),
                   dict(d.get("timings_ms", {})),
                   None if d.get("revision") is None else SourceRevision.from_dict(d["revision"]))


@dataclass
class BleedingEvent:
    """One bleeding episode: onset, the source (where the kept source was at the onset), its
    tracked path from the onset, and every place the source was put while the episode went on
    (`source_revisions[0]`: the localizer's decision)."""

    onset: Onset
    source: Point
    track: list[TrackPoint] = field(default_factory=list)
    source_revisions: list[SourceRevision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"onset": self.onset.to_dict(), "source": self.source.to_dict(),
                "source_revisions": [r.to_dict() for r in self.source_revisions],
                "track": [t.to_dict() for t in self.track]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BleedingEvent:
        return cls(Onset.from_dict(d["onset"]), Point.from_dict(d["source"]),
                   [TrackPoint.from_dict(t) for t in d["track"]],
                   [SourceRevision.from_dict(r) for r in d.get("source_revisions", [])])


@dataclass
class RunResult:
    """The `result.json` of `bleedorigin run` (README.md, "result.json"). `onset`/`source`/`track` describe
    the first bleeding event; `events` lists all of them."""

    video: str
    fps: float
    width: int
    height: int
    frames: int
    scores: list[float] = field(default_factory=list)
    events: list[BleedingEvent] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the pipeline configuration it ran with
    config_hash: str = ""
    warnings: list[str] = field(default_factory=list)  # e.g. a stage running untrained weights
    complete: bool = True  # False: the stream ended early, broke or was interrupted

    @property
    def onset(self) -> Onset | None:
        return self.events[0].onset if self.events else None

    @property
    def source(self) -> Point | None:
        return self.events[0].source if self.events else None

    @property
    def track(self) -> list[TrackPoint]:
        return self.events[0].track if self.events else []

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "fps": self.fps, "width": self.width, "height": self.height,
                "frames": self.frames, "complete": self.complete,
                "onset": None if self.onset is None else self.onset.to_dict(),
                "source": None if self.source is None else self.source.to_dict(),
                "track": [t.to_dict() for t in self.track],
                "events": [e.to_dict() for e in self.events],
                "scores": [round(float(s), 5) for s in self.scores],
                "models": dict(self.models), "config": self.config, "config_hash": self.config_hash,
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(d["video"], float(d["fps"]), int(d["width"]), int(d["height"]),
                   int(d["frames"]), [float(s) for s in d.get("scores", [])],
                   [BleedingEvent.from_dict(e) for e in d.get("events", [])],
                   dict(d.get("models", {})), dict(d.get("config") or {}), str(d.get("config_hash", "")),
                   [str(w) for w in d.get("warnings", [])], bool(d.get("complete", True)))


def as_plain(obj: Any) -> Any:
    """Dataclass -> dict for JSON dumping of the simple records above."""
    return obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj)
