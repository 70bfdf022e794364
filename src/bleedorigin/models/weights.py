"""Where checkpoints come from and which device runs them (shared by every trained stage)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from bleedorigin.errors import ConfigError, InputError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../bleedorigin


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" picks CUDA when present, else the CPU; anything else must name a usable device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


SHIPPED_DIR = PACKAGE_DIR / "weights"  # package data: installed with the wheel
SHIPPED = ("onset_small", "source_small", "track_small")


def shipped_weights(folder: str) -> Path:
    """The shipped checkpoint folder `folder` (e.g. "onset_small"): $BLEEDORIGIN_WEIGHTS/<folder>
    when that variable is set, else the one inside the installed package."""
    root = Path(os.environ["BLEEDORIGIN_WEIGHTS"]) if os.environ.get("BLEEDORIGIN_WEIGHTS") else SHIPPED_DIR
    path = root / folder
    if not ((path / "config.json").is_file() and (path / "model.safetensors").is_file()):
        raise InputError(f"weights {folder!r} not found in {root}")
    return path


def find_weights(name_or_path: str | Path, folder: str) -> Path:
    """A checkpoint folder: for "small" or `folder` (a shipped name) the shipped one, never a
    folder of that name in the working directory; anything else must be an existing folder."""
    if folder and str(name_or_path) in ("small", folder):
        return shipped_weights(folder)
    p = Path(name_or_path)
    if p.is_dir():
        return p
    raise InputError(f"{name_or_path}: no such checkpoint folder (or use 'small')")


def checkpoint_folder(name_or_path: str | Path) -> Path:
    """A shipped checkpoint by name ("onset_small", ...) or a folder given as a path."""
    name = str(name_or_path)
    return find_weights(name, name if name in SHIPPED else "")
