"""The contract between the one Trainer and each stage's training code.

A `StageTask` owns everything stage specific (model, data, loss, validation); the Trainer
owns optimisation, logging, checkpoints and distribution. Stage tasks are found lazily by
name in `TASKS` ("module:Class"), so importing the trainer never imports every stage.

Contract (keep it stable, other stages code against it):
- `StageTask(config: dict | None = None)`: `config` is `{"model": {...}, "data": {...}}`, the
  recipe's `model:` / `data:` sections (YAML, `--set model.x=..` overrides applied; filled with
  defaults and checked strictly when the task declares dataclasses, see below). Missing
  sections are empty dicts.
- optional class attributes `model_config_cls` / `data_config_cls`: frozen dataclasses of
  the two sections; with them unknown keys fail and `--set` values are parsed by field type.
- `stage`: "onset" | "source" | "track".
- `build_model() -> nn.Module`: a fresh model (random init, or pretrained backbone).
- `sample_batch(rng: np.random.Generator, split: str) -> Any`: one training batch
  (`split` is "train"; the task may cache data). Tensors on CPU; the Trainer moves them
  with `to_device(batch, device)` (dicts/lists/tuples of tensors are walked).
- `loss(model, batch) -> (loss tensor, logs: dict[str, float])`. `model` is always the bare
  module from build_model() (the Trainer wraps the loss call, not the model, for DDP), so
  any method of it may be called. Return detached floats in `logs`.
- `validate(model) -> dict[str, float]` with a "score" key (higher is better); called
  under `torch.no_grad()` with the model in eval mode, on rank 0 only. Use fixed seeds so
  successive validations are comparable.
- `predictor_config() -> dict`: JSON-serialisable; merged into the checkpoint's
  config.json so the stage predictor can rebuild the model from the folder.
- `data_description() -> str`: one line for the model card ("BleedSim detect, seeds ...").
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from bleedorigin.errors import ConfigError

TASKS: dict[str, str] = {
    "onset": "bleedorigin.models.onset.train:OnsetTask",
    "source": "bleedorigin.models.source.train:SourceTask",
    "track": "bleedorigin.models.track.learned.train:TrackTask",
}


class StageTask(ABC):
    """What the Trainer needs from a stage. Subclasses set `stage`."""

    stage: str = ""
    model_config_cls: type | None = None
    data_config_cls: type | None = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        self.config: dict[str, Any] = {"model": dict(config.get("model") or {}),
                                       "data": dict(config.get("data") or {})}

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh model for this stage."""

    @abstractmethod
    def sample_batch(self, rng: np.random.Generator, split: str = "train") -> Any:
        """One batch (CPU tensors, or dict/list/tuple of them)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss and a few floats to log."""

    @abstractmethod
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics; must contain "score" (higher is better)."""

    @abstractmethod
    def predictor_config(self) -> dict[str, Any]:
        """What the stage predictor needs to rebuild the model (saved into config.json)."""

    def data_description(self) -> str:
        """One line naming the training data, for the model card."""
        return "unspecified"


def task_class(stage: str) -> type[StageTask]:
    """The StageTask subclass registered for `stage` (imported lazily)."""
    if stage not in TASKS:
        import difflib
        close = difflib.get_close_matches(stage, TASKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown stage {stage!r}{hint}; expected one of {sorted(TASKS)}")
    module_name, cls_name = TASKS[stage].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"stage {stage!r} has no training code yet ({e.name} missing)") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ConfigError(f"stage {stage!r}: {TASKS[stage]} not found")
    return cls


def load_task(stage: str, config: dict[str, Any] | None = None) -> StageTask:
    """Instantiate the task registered for `stage`."""
    return task_class(stage)(config)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside nested dicts/lists/tuples to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
