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


@dataclass(frozen=True)
class StageConfig:
    model: str                                              # registry name or checkpoint folder
    options: dict[str, Any] = field(default_factory=dict)   # keyword options of that model's preset


@dataclass(frozen=True)
class EpisodeConfig:
    end_blood_fraction: float = 0.02
    end_patience: int = 90
    end_patch: int = 64
    buffer_frames: int = 90
    history_frames: int = 10


@dataclass(frozen=True)
class PipelineConfig:
    onset: StageConfig
    source: StageConfig
    track: StageConfig
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
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
                              name=self.name if not changed else f"{self.name}+models")

    def with_episode(self, **changes: Any) -> PipelineConfig:
        """The same configuration with some EpisodeConfig fields changed."""
        return dataclasses.replace(self, episode=dataclasses.replace(self.episode, **changes), name=f"{self.name}+episode")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @property
    def hash(self) -> str:
        """12 hex digits identifying what the pipeline computes (the name is not part of it)."""
        body = {k: v for k, v in self.to_dict().items() if k != "name"}
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
