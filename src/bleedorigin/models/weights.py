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


def find_weights(name_or_path: str | Path, folder: str) -> Path:
    """A checkpoint folder: `name_or_path` itself when it is a folder; for "small" (or `folder`)
    the shipped one: $BLEEDORIGIN_WEIGHTS/<folder>, the repository's weights/<folder>, or the
    package's assets/weights/<folder>."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if str(name_or_path) not in ("small", folder):
        raise InputError(f"{name_or_path}: no such checkpoint folder (or use 'small')")
    candidates = []
    if os.environ.get("BLEEDORIGIN_WEIGHTS"):
        candidates.append(Path(os.environ["BLEEDORIGIN_WEIGHTS"]) / folder)
    candidates += [PACKAGE_DIR.parents[1] / "weights" / folder, PACKAGE_DIR / "assets" / "weights" / folder]
    for c in candidates:
        if (c / "config.json").is_file() and (c / "model.safetensors").is_file():
            return c
    raise InputError(f"weights {folder!r} not found (looked in {', '.join(map(str, candidates))})")
