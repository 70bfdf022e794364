"""The pipeline's configuration: which model runs each stage, with which options, and when an
episode ends. The shipped one is `configs/pipeline.yaml` (package data); `run`, `evaluate` and
`bench` take `--config FILE` (an edited copy). Loading is strict: an unknown key or a value of
the wrong type is a ConfigError naming it; a stage option the model does not take fails when the
model is built. result.json records the configuration a run used and its hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bleedorigin.config import from_dict, load_yaml, to_dict
from bleedorigin.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parent / "configs" / "pipeline.yaml"
STAGES = ("onset", "source", "track")
HASH_NEUTRAL = {("consensus", 0)}  # episode options left out of the hash at these values


@dataclass(frozen=True)
class StageConfig:
    model: str                                              # registry name or checkpoint folder
    options: dict[str, Any] = field(default_factory=dict)   # keyword options of that model's preset


LOCATE_AT = ("decision", "onset", "blood")


@dataclass(frozen=True)
class EpisodeConfig:
    end_blood_fraction: float = 0.02
    end_patience: int = 90
    end_patch: int = 64
    buffer_frames: int = 90
    history_frames: int = 10
    # the frame the localizer sees: "decision" (where the onset was raised), "onset", or "blood" (the
    # onset frame where the presence check dated the onset by the blood it saw, else the decision)
    locate_at: str = "blood"
    consensus: int = 0  # frames from the onset to the decision that vote on the source (bleedorigin.source_consensus); 0: off

    def __post_init__(self) -> None:
        if self.locate_at not in LOCATE_AT:
            raise ConfigError(f"episode: locate_at must be one of {', '.join(LOCATE_AT)}, got {self.locate_at!r}")
        if self.consensus < 0:
            raise ConfigError(f"episode: consensus must be >= 0, got {self.consensus}")
        if self.consensus and self.locate_at != "decision":
            raise ConfigError("episode: consensus votes at the decision frame; it needs locate_at: decision")


@dataclass(frozen=True)
class RevisionConfig:
    """The source weighed again while an episode goes on (bleedorigin.source_revision)."""

    candidates: int = 1    # places tracked together from the onset (the located source among them); 1: never revised
    every: int = 15        # frames between re-evaluations of the evidence
    history: int = 30      # frames before the re-evaluated frame handed to the localizer
    ratio: float = 2.0     # times the current source's weight (mean probability) another candidate must exceed
    patience: int = 2      # consecutive re-evaluations it must win by `ratio`
    radius: float = 0.08   # share of the frame width: ranked places within this of a candidate are its evidence
    clear: float = 0.5     # confidence from which a source counts as clear (a "confirmed" record)

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.every < 1 or self.patience < 1 or self.history < 0:
            raise ConfigError("revision: candidates, every and patience must be >= 1, history >= 0")
        if self.ratio < 1 or self.radius <= 0:
            raise ConfigError("revision: ratio must be >= 1 and radius > 0")


@dataclass(frozen=True)
class PipelineConfig:
    onset: StageConfig
    source: StageConfig
    track: StageConfig
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    revision: RevisionConfig = field(default_factory=RevisionConfig)
    name: str = "custom"  # "shipped" for the package's own file

    def stage(self, stage: str) -> StageConfig:
        return getattr(self, stage)

    def with_models(self, **models: str | None) -> PipelineConfig:
        """The same configuration with other models for some stages (`onset=`, `source=`,
        `track=`); a stage whose model changes drops its options (they belong to the old one)."""
        unknown = set(models) - set(STAGES)
        if unknown:
            raise ConfigError(f"unknown stage(s) {sorted(unknown)}; expected {list(STAGES)}")
        changed = {s: StageConfig(str(m)) for s, m in models.items() if m and str(m) != self.stage(s).model}
        if not changed:
            return self
        return PipelineConfig(**{**{s: self.stage(s) for s in STAGES}, **changed}, episode=self.episode,
                              revision=self.revision, name=self.name if not changed else f"{self.name}+models")

    def with_episode(self, **changes: Any) -> PipelineConfig:
        """The same configuration with some EpisodeConfig fields changed."""
        return dataclasses.replace(self, episode=dataclasses.replace(self.episode, **changes), name=f"{self.name}+episode")

    def with_revision(self, **changes: Any) -> PipelineConfig:
        """The same configuration with some RevisionConfig fields changed."""
        return dataclasses.replace(self, revision=dataclasses.replace(self.revision, **changes),
                                   name=f"{self.name}+revision")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @property
    def hash(self) -> str:
        """12 hex digits identifying what the pipeline computes (the name is not part of it)."""
        body = {k: v for k, v in self.to_dict().items() if k != "name"}
        # an option added later, at its "off" value, computes what the pipeline computed before it existed
        body["episode"] = {k: v for k, v in body["episode"].items() if (k, v) not in HASH_NEUTRAL}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def shipped_config() -> PipelineConfig:
    """The package's configs/pipeline.yaml (read once)."""
    return load_pipeline_config()


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """`path` (YAML), or the shipped configs/pipeline.yaml when None."""
    file = Path(path) if path is not None else SHIPPED_CONFIG
    data = load_yaml(file)
    if "name" in data:
        raise ConfigError(f"{file}: 'name' is set by the loader, not the file")
    for stage in STAGES:
        if stage not in data:
            raise ConfigError(f"{file}: missing section {stage!r} (with at least 'model')")
    name = "shipped" if path is None else file.stem
    return from_dict(PipelineConfig, {**data, "name": name}, str(file))
