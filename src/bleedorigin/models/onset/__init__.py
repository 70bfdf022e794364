"""Onset detector (paper section 4.1.1): MDCFM + MDG + sliding-window transformer.

Registers `onset_small` (shipped weights, with the bleeding-present check at stream start and
each transition confirmed by new red), `onset_small_transition` (the network and its onset
refinement alone, as in the paper: onsets only from a bleeding-free start, unconfirmed),
`onset_small_unconfirmed` (the check, but transitions raised without new red),
`onset_small_bright` (the check counting bright blood only, not near-black pools),
`onset_small_static` (the check counting any blood at stream start, static red too),
`onset_small_raw` (without the check and the onset refinement) and `onset_test` (tiny, random,
seeded) models.
"""
from __future__ import annotations

import torch

from bleedorigin.config import OnsetConfig, from_dict, to_dict
from bleedorigin.models.onset.model import OnsetNet, decode_onset
from bleedorigin.models.onset.predictor import OnsetDetector
from bleedorigin.models.registry import register_model

# Mirrors configs/onset_test.yaml `model:` (a test checks they agree).
ONSET_TEST = OnsetConfig(window=16, internal_size=(64, 48), d_model=32, num_layers=1, num_heads=4,
                         ff_dim=64, dropout=0.0, channels=(8, 8, 16), branch_dim=16,
                         mdcfm_channels=(4, 8, 8), memory_size=2, memory_stride=4)


@register_model("onset_small")
def onset_small(device: str = "auto", weights: str = "small", **options: object) -> OnsetDetector:
    """The shipped weights; `options`: OnsetDetector.from_pretrained's (configs/pipeline.yaml)."""
    return OnsetDetector.from_pretrained(weights, device=device, **options)  # type: ignore[arg-type]


@register_model("onset_small_raw")
def onset_small_raw(device: str = "auto", weights: str = "small") -> OnsetDetector:
    """The shipped network's own onset, without the red-area refinement (for ablations)."""
    return OnsetDetector.from_pretrained(weights, device=device, refine_radius=0, presence=False, confirm=0.0)


@register_model("onset_small_transition")
def onset_small_transition(device: str = "auto", weights: str = "small") -> OnsetDetector:
    """The shipped network and refinement without the bleeding-present check or the confirmation
    (for ablations)."""
    return OnsetDetector.from_pretrained(weights, device=device, presence=False, confirm=0.0)


@register_model("onset_small_unconfirmed")
def onset_small_unconfirmed(device: str = "auto", weights: str = "small") -> OnsetDetector:
    """Transitions raised as the network decides, without waiting for new red (for ablations)."""
    return OnsetDetector.from_pretrained(weights, device=device, confirm=0.0)


@register_model("onset_small_bright")
def onset_small_bright(device: str = "auto", weights: str = "small") -> OnsetDetector:
    """The bleeding-present check without the dark-pool cue (for ablations and scenes with dark
    instrument shafts, which that cue can take for pools)."""
    return OnsetDetector.from_pretrained(weights, device=device, dark=False)


@register_model("onset_small_static")
def onset_small_static(device: str = "auto", weights: str = "small") -> OnsetDetector:
    """The bleeding-present check counting any blood over the threshold at stream start, whether
    it spreads or not (a static colour test; for ablations)."""
    return OnsetDetector.from_pretrained(weights, device=device, live=False)


@register_model("onset_test")
def onset_test(device: str = "auto", seed: int = 0, **overrides: object) -> OnsetDetector:
    cfg = from_dict(OnsetConfig, {**to_dict(ONSET_TEST), **overrides}, "onset_test")
    torch.manual_seed(seed)
    return OnsetDetector(OnsetNet(cfg), device, model_id="onset_test")


__all__ = ["ONSET_TEST", "OnsetConfig", "OnsetDetector", "OnsetNet", "decode_onset"]
