"""Checkpoint folders: config.json + model.safetensors + MODEL_CARD.md (+ trainer_state.pt).

Written to a temporary sibling folder and swapped in with renames, so a crash never leaves
a half-written checkpoint where a good one was.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file

from bleedorigin.errors import ConfigError, InputError, first_line
from bleedorigin.utils.jsonio import read_json

CONFIG, WEIGHTS, CARD, STATE = "config.json", "model.safetensors", "MODEL_CARD.md", "trainer_state.pt"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(folder: str | Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any],
                    card: str, trainer_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically; `config` gets a `checksum` of the weights."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # safetensors refuses shared/non-contiguous storage: store independent copies
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(tmp / WEIGHTS))
    config = {**config, "checksum": sha256_file(tmp / WEIGHTS)}
    (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    (tmp / CARD).write_text(card)
    if trainer_state is not None:
        torch.save(trainer_state, tmp / STATE)
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def load_config(folder: str | Path, stage: str | None = None) -> dict[str, Any]:
    """config.json of a checkpoint folder; ConfigError when it holds another `stage`'s model."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise InputError(f"{folder}: not a checkpoint folder (no {CONFIG})")
    config = read_json(path)
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object")
    if stage is not None and config.get("stage", stage) != stage:
        raise ConfigError(f"{folder} holds a {config.get('stage')!r} model, not a {stage!r} model")
    return config


def load_checkpoint(folder: str | Path, stage: str | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, state_dict) of a checkpoint folder; InputError when missing, damaged or not the
    weights its config.json records (sha256 "checksum"). The weights are read from memory
    after hashing, so the config's checksum names exactly the tensors returned."""
    folder = Path(folder)
    config = load_config(folder, stage)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise InputError(f"{folder}: no {WEIGHTS}")
    recorded = config.get("checksum")
    if not isinstance(recorded, str) or not recorded:
        raise InputError(f"{folder / CONFIG}: no checksum of {WEIGHTS} recorded; not a checkpoint this "
                         "toolkit wrote")
    data = weights.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise InputError(f"{weights}: sha256 {actual[:12]} does not match the checksum {recorded[:12]} "
                         f"in {CONFIG} (damaged or replaced weights)")
    try:
        state = load(data)
    except Exception as e:  # safetensors raises its own error types
        raise InputError(f"{weights}: unreadable weights ({first_line(e)})") from None
    return config, state


def build_model(folder: str | Path, build: Callable[[], torch.nn.Module],
                state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """`build()` loaded with `state`; a one-line InputError when config.json describes no
    buildable network (negative sizes, heads not dividing the width) or not these weights."""
    try:
        net = build()
    except (ValueError, RuntimeError, AssertionError, TypeError, ZeroDivisionError) as e:
        raise InputError(f"{Path(folder) / CONFIG}: cannot build the model ({first_line(e)})") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise InputError(f"{folder}: weights do not match {CONFIG} ({_mismatch(e)})") from None
    return net


def _mismatch(e: RuntimeError) -> str:
    # torch lists every key on its own line; the first size mismatch or missing key says enough
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = next((ln for ln in lines[1:] if "size mismatch" in ln or "Missing key" in ln
                   or "Unexpected key" in ln), lines[0] if lines else type(e).__name__)
    return detail if len(detail) < 200 else detail[:197] + "..."


def load_trainer_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / STATE
    if not path.is_file():
        raise InputError(f"{folder}: no {STATE} to resume from")
    return torch.load(path, map_location="cpu", weights_only=False)


def model_card(stage: str, command: str, data: str, metrics: dict[str, float], step: int,
               params: int, extra: str = "") -> str:
    """Markdown model card: what it is, how it was made, on what, how good."""
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                     for k, v in metrics.items())
    return (f"# BleedOrigin {stage} model\n\n"
            f"- stage: `{stage}`\n- parameters: {params:,}\n- training steps: {step}\n\n"
            f"## Command\n\n```\n{command}\n```\n\n## Data\n\n{data}\n\n"
            f"## Validation metrics (at this checkpoint)\n\n| metric | value |\n|---|---|\n{rows}\n"
            + (f"\n{extra}\n" if extra else ""))
