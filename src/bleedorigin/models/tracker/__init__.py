"""BleedOrigin-Track: online Track-On-style point tracker (paper section 4.2).

Registry names: `track_small` (shipped weights) and `track_test` (tiny random network).
"""
from __future__ import annotations

from typing import Any

from bleedorigin.models.registry import register_model
from bleedorigin.models.tracker.model import TrackerConfig, TrackOnSmall
from bleedorigin.models.tracker.predictor import PointTracker

__all__ = ["PointTracker", "TrackOnSmall", "TrackerConfig"]


@register_model("track_small")
def track_small(device: str = "auto", weights: str | None = None, **overrides: Any) -> PointTracker:
    return PointTracker.from_pretrained(weights or "small", device=device, **overrides)


@register_model("track_test")
def track_test(device: str = "cpu", seed: int = 0, **overrides: Any) -> PointTracker:
    return PointTracker.tiny(device=device, seed=seed, **overrides)
