"""Checkpoint key layouts: record, compare, and rebuild deterministic stand-in weights.

A *layout* is the list of (key, shape) pairs of a released checkpoint, recorded from the reference
implementation (tools/make_parity_fixtures.py) and shipped in `assets/layouts/`. It lets
`bleedorigin weights --check` judge a downloaded file and lets the tests build a state dict with
exactly the released keys without the reference code or the real weights.

`seeded_state_dict` fills every tensor of a layout from a generator seeded by (seed, key name),
with NumPy's PCG64 so that any torch version on either side gets the same numbers.
"""
from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bleedorigin.errors import InputError

LAYOUT_DIR = Path(__file__).resolve().parents[1] / "assets" / "layouts"


def layout_of(state: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
    """{key: shape} of a state dict, keys sorted."""
    return {k: list(v.shape) for k, v in sorted(state.items())}


def load_layout(name: str) -> dict[str, Any]:
    """A shipped layout file: {"source": ..., "keys": {key: shape}, ...}."""
    return json.loads((LAYOUT_DIR / f"{name}.json").read_text())


def compare_layout(state: Mapping[str, Any], expected: Mapping[str, list[int]]) -> dict[str, list[str]]:
    """Missing, unexpected and wrongly shaped keys of `state` against `expected`."""
    have = {k: list(v.shape) for k, v in state.items()}
    return {"missing": sorted(set(expected) - set(have)),
            "unexpected": sorted(set(have) - set(expected)),
            "shape": sorted(k for k in set(have) & set(expected) if have[k] != list(expected[k]))}


def _fill(name: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    # Scales keep random networks numerically tame (unit-ish activations, no saturation).
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    if leaf == "running_var":
        return 0.5 + rng.random(shape)
    if leaf == "running_mean":
        return 0.1 * rng.standard_normal(shape)
    if "token" in leaf or "embed" in leaf:
        return 0.02 * rng.standard_normal(shape)
    if len(shape) <= 1:
        if leaf == "bias":
            return 0.02 * rng.standard_normal(shape)
        return 1.0 + 0.1 * rng.standard_normal(shape)  # norm weights, layer-scale gammas
    fan_in = int(np.prod(shape[1:]))
    return rng.standard_normal(shape) / np.sqrt(fan_in)


def seeded_state_dict(layout: Mapping[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random tensors for every key of `layout` (float32; int64 counters stay 0)."""
    out = {}
    for name, shape in layout.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        arr = _fill(name, list(shape), rng)
        t = torch.from_numpy(np.ascontiguousarray(arr)).reshape(list(shape))  # ascontiguousarray makes 0-d 1-d
        out[name] = t if t.dtype == torch.int64 else t.float()
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local .safetensors / .pt / .pth checkpoint, unwrapped from the usual training
    containers ("model", "state_dict", "module") and DistributedDataParallel's "module." prefix.
    Loaded with weights_only (no code runs); argparse.Namespace, which Track-On stores beside
    its weights, is allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj: Any = load_file(str(path))
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: one line, no traceback
        raise InputError(f"{path}: unreadable weights ({type(e).__name__}: {e})") from None
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj
