"""Turn a model name (registry) or a checkpoint folder (config.json + weights) into a predictor."""
from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Any

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.models import registry
from bleedorigin.pipeline_config import STAGES, shipped_config
from bleedorigin.io.checkpoint import load_config

# Trained predictors by stage, as "module:Class"; each has from_pretrained(path, device=...).
PREDICTORS = {
    "onset": "bleedorigin.models.onset.predictor:OnsetDetector",
    "source": "bleedorigin.models.source.predictor:SourceLocator",
    "track": "bleedorigin.models.track.learned.predictor:PointTracker",
}

# Reference rows kept in every report and benchmark.
BASELINES = {"onset": ["onset_hsv"], "source": ["source_redmask", "source_centre", "source_channel"],
             "track": ["track_lk", "track_dis", "track_scene", "track_still"]}

# Defaults used when the user names no model: the shipped configs/pipeline.yaml's.
DEFAULT_MODELS = {stage: shipped_config().stage(stage).model for stage in STAGES}


def _predictor_class(stage: str) -> Any:
    module, cls = PREDICTORS[stage].split(":")
    return getattr(importlib.import_module(module), cls)


def load_stage(stage: str, name_or_path: str | None = None, device: str = "auto",
               options: dict[str, Any] | None = None) -> Any:
    """A ready predictor for `stage` ("onset" | "source" | "track"); `options` are keyword
    options of the named preset (configs/pipeline.yaml), an error when it does not take them."""
    if stage not in PREDICTORS:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {sorted(PREDICTORS)}")
    if name_or_path is None and options is None:  # the shipped stage, with its shipped options
        name_or_path, options = DEFAULT_MODELS[stage], shipped_config().stage(stage).options
    name = name_or_path or DEFAULT_MODELS[stage]
    path = Path(name)
    # A registered name always means the preset, never a folder of that name in the working directory.
    if name not in registry.list_models() and path.is_dir():
        load_config(path, stage)  # a clear error before the predictor reads the weights
        # absolute, so the predictor cannot take the folder's name for a shipped one ("small")
        return _predictor_class(stage).from_pretrained(str(path.resolve()), device=device)
    if not name.startswith(stage + "_") or "/" in name or os.sep in name:
        raise InputError(f"{name}: no such checkpoint folder, nor a {stage} model name "
                         f"(names start with {stage}_)")
    if name not in registry.list_models():
        registry.create(name)  # raises ConfigError with a suggestion
    if options:
        _check_options(name, options)
    try:
        return registry.create(name, **_accepted(name, {"device": device}), **(options or {}))
    except TypeError as e:  # a dataclass config behind the factory refused an option
        raise ConfigError(f"model {name!r}: {e}") from None


def _accepted(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    # Baselines take no device; trained models do. Pass only what the factory accepts.
    params = inspect.signature(registry._REGISTRY[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _check_options(name: str, options: dict[str, Any]) -> None:
    params = inspect.signature(registry._REGISTRY[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the factory passes them on to a strict config
    unknown = sorted(set(options) - set(params) - {"device"})
    if unknown:
        raise ConfigError(f"model {name!r} takes no option(s) {unknown}; it takes {sorted(params)}")


def model_warnings(models: dict[str, str]) -> list[str]:
    """What a user must know about the loaded models (by their ids), for result.json."""
    return [f"{stage}: {mid} has untrained weights (random outputs); see `bleedorigin weights`"
            for stage, mid in models.items() if "untrained" in mid]


def model_id(model: Any) -> str:
    """A short identification string for result.json's `models` field."""
    return str(getattr(model, "model_id", getattr(model, "name", type(model).__name__)))
