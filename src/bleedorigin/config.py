"""Configuration: frozen dataclasses, strict YAML loading and typed `--set key=value` overrides.

Rules: unknown keys fail with a ConfigError naming the closest known key (difflib); values are
parsed by the declared field type (never `eval`); every dataclass is frozen so a config seen
by one part of the program cannot be changed behind its back.

Training recipes (configs/*.yaml) have four top-level keys:

    stage: onset            # onset | source | track
    model: {...}            # the stage's model section (dataclass given by the stage task)
    data: {...}             # the stage's data section
    train: {...}            # TrainConfig (optimiser, schedule, logging, checkpoints)
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.utils.files import atomic_open

T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """Stage-independent optimisation settings used by training.trainer.Trainer."""

    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05      # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0          # max global grad norm; 0 disables
    seed: int = 0
    log_every: int = 10             # steps between JSONL log lines
    val_every: int = 200            # steps between validations (and best-checkpoint updates)
    save_every: int = 200           # steps between "last" checkpoints
    num_threads: int = 0            # torch intra-op threads; 0 keeps torch's default
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    progress: bool = True
    init_from: str = ""             # checkpoint folder whose weights start a fresh run (fine-tuning)
    amp: bool = False               # mixed precision: fp16 + loss scaling on CUDA, bf16 on the CPU


@dataclass(frozen=True)
class OnsetConfig:
    """Onset detector architecture and decision thresholds (paper section 4.1.1)."""

    window: int = 60                          # N, frames per sliding window
    internal_size: tuple[int, int] = (128, 96)  # (W, H) the model works at
    d_model: int = 128
    num_layers: int = 4
    num_heads: int = 8
    ff_dim: int = 256
    dropout: float = 0.1
    channels: tuple[int, int, int] = (16, 32, 48)  # conv widths of each MDG branch
    branch_dim: int = 96                      # per-branch embedding before gated fusion
    mdcfm_channels: tuple[int, int, int] = (8, 16, 24)
    memory_size: int = 2                      # clean-view keyframes kept by MDCFM
    memory_stride: int = 15                   # min frames between two stored keyframes
    use_mdcfm: bool = True                    # ablation: keyframe memory on/off
    use_mdg: bool = True                      # ablation: MDG (attention + 3 branches + gates)
    rgb_only: bool = False                    # ablation: RGB domain only (no HSV, no flow)
    conf_threshold: float = 0.5               # window confidence that raises an onset
    clean_color_threshold: float = 0.5        # alpha in Eq. 1
    clean_flow_threshold: float = 0.5         # gamma in Eq. 1

    def __post_init__(self) -> None:
        # a config.json from elsewhere must fail here, in one line, not deep inside torch
        sizes = {"window": self.window, "d_model": self.d_model, "num_layers": self.num_layers,
                 "num_heads": self.num_heads, "ff_dim": self.ff_dim, "branch_dim": self.branch_dim}
        sizes |= {f"internal_size[{i}]": v for i, v in enumerate(self.internal_size)}
        sizes |= {f"channels[{i}]": v for i, v in enumerate(self.channels)}
        sizes |= {f"mdcfm_channels[{i}]": v for i, v in enumerate(self.mdcfm_channels)}
        require_positive(sizes, "onset model")
        if self.d_model % self.num_heads:
            raise ConfigError(f"onset model: num_heads {self.num_heads} does not divide d_model {self.d_model}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"onset model: dropout must be in [0, 1), got {self.dropout}")


def require_positive(values: dict[str, int], where: str) -> None:
    """ConfigError naming the first of `values` (name -> size) that is not a positive number."""
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{where}: {name} must be positive, got {value}")


# ----------------------------------------------------------------------------- strict loading

def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path`; InputError when missing, ConfigError when malformed."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{where} malformed YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def save_yaml(path: str | Path, data: dict[str, Any]) -> None:
    """Write `data` as YAML atomically (temp file + rename)."""
    with atomic_open(path) as f:
        yaml.safe_dump(_plain(data), f, sort_keys=False)


def _plain(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return _plain(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain JSON/YAML-able dict (tuples become lists)."""
    return _plain(cfg)


def unknown_key(key: str, known: typing.Iterable[str], where: str = "") -> ConfigError:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    loc = f" in {where}" if where else ""
    return ConfigError(f"unknown key {key!r}{loc}{hint}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _first_member(args: tuple[Any, ...], convert: Callable[[Any], Any], fallback: str) -> Any:
    """Value converted by the first non-None member of a Union that accepts it."""
    errors = []
    for a in args:
        if a is type(None):
            continue
        try:
            return convert(a)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else fallback)


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check/convert an already-parsed (YAML) value against a type annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _first_member(args, lambda a: _coerce(value, a, name), f"{name}: bad value {value!r}")
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return from_dict(tp, value, name)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{name}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, name) for v, a in zip(value, args))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, name) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from `data`, strictly: unknown keys and wrong types fail."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise unknown_key(str(key), names, where or cls.__name__)
        full = f"{where}.{key}" if where else key
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


# ----------------------------------------------------------------------------- --set overrides

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(raw: str, tp: Any, name: str) -> Any:
    """Parse the text of `--set name=raw` by the field's type (no eval)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if raw.strip().lower() in ("none", "null", "") and type(None) in args:
            return None
        return _first_member(args, lambda a: parse_value(raw, a, name), f"{name}: bad value {raw!r}")
    if tp is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{name}: expected true/false, got {raw!r}")
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if tp is str:
        return raw
    if origin in (tuple, list):
        text = raw.strip()
        if text.startswith("["):
            try:
                items = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(f"{name}: malformed list {raw!r}") from None
            if not isinstance(items, list):
                raise ConfigError(f"{name}: expected a list, got {raw!r}")
            return _coerce(items, tp, name)
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(parts) != len(args):
                raise ConfigError(f"{name}: expected {len(args)} comma-separated values, got {raw!r}")
            return tuple(parse_value(p, a, name) for p, a in zip(parts, args))
        inner = args[0] if args else str
        out = [parse_value(p, inner, name) for p in parts]
        return tuple(out) if origin is tuple else out
    # untyped (Any / unknown section): YAML scalar parsing, still no eval
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    return key, raw


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str],
                    schema: dict[str, type | None]) -> dict[str, Any]:
    """Apply `section.field=value` overrides to a nested dict, typed by `schema`.

    `schema` maps each top-level section to its dataclass (None: untyped section, values are
    parsed as YAML scalars). Returns a new dict; `data` is not modified.
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, raw = split_override(item)
        section, _, name = key.partition(".")
        if section not in schema:
            raise unknown_key(key, _all_keys(schema), "overrides")
        cls = schema[section]
        if not name:
            if cls is not None:
                raise ConfigError(f"--set {key}: give a field, e.g. {section}.<field>=...")
            out[section] = parse_value(raw, Any, key)
            continue
        if cls is None:
            out.setdefault(section, {})[name] = parse_value(raw, Any, key)
            continue
        hints = _hints(cls)
        if name not in hints:
            raise unknown_key(key, _all_keys(schema), "overrides")
        out.setdefault(section, {})[name] = parse_value(raw, hints[name], key)
    return out


def _all_keys(schema: dict[str, type | None]) -> list[str]:
    keys = []
    for section, cls in schema.items():
        keys.append(section)
        if cls is not None:
            keys += [f"{section}.{f.name}" for f in fields(cls)]  # type: ignore[arg-type]
    return keys


def replace(cfg: T, **changes: Any) -> T:
    """A copy of frozen dataclass `cfg` with some fields changed (checked like YAML)."""
    merged = {**to_dict(cfg), **changes}
    return from_dict(type(cfg), merged, type(cfg).__name__)


# ----------------------------------------------------------------------------- training recipe

RECIPE_KEYS = ("stage", "model", "data", "train")


@dataclass(frozen=True)
class Recipe:
    """A loaded training recipe: stage name, raw model/data sections, typed TrainConfig."""

    stage: str
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "model": _plain(self.model), "data": _plain(self.data),
                "train": to_dict(self.train)}


def load_recipe(path: str | Path | None, stage: str, overrides: typing.Iterable[str] = (),
                model_cls: type | None = None, data_cls: type | None = None) -> Recipe:
    """Load a recipe YAML (or defaults when `path` is None), apply `--set` overrides, validate.

    `model_cls` / `data_cls` are the stage's dataclasses (when it has them): their sections are
    then checked strictly and filled with defaults.
    """
    raw = load_yaml(path) if path is not None else {}
    where = str(path) if path is not None else "defaults"
    for key in raw:
        if key not in RECIPE_KEYS:
            raise unknown_key(str(key), RECIPE_KEYS, where)
    found = raw.get("stage", stage)
    if found != stage:
        raise ConfigError(f"{where}: recipe is for stage {found!r}, not {stage!r}")
    raw = apply_overrides({k: raw.get(k) or {} for k in ("model", "data", "train")}, overrides,
                          {"model": model_cls, "data": data_cls, "train": TrainConfig})
    model = to_dict(from_dict(model_cls, raw["model"], "model")) if model_cls else dict(raw["model"])
    data = to_dict(from_dict(data_cls, raw["data"], "data")) if data_cls else dict(raw["data"])
    train = from_dict(TrainConfig, raw["train"], "train")
    return Recipe(stage=stage, model=model, data=data, train=train)
