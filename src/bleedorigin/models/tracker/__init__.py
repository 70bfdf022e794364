"""BleedOrigin-Track: online Track-On-style point tracker (paper section 4.2).

Registry names: `track_small` (shipped weights), its variants below and `track_test` (tiny random
network).
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


# Variants of the shipped weights, for side-by-side evaluation (`bleedorigin evaluate --models`).
def _variant(name: str, **settings: Any) -> None:
    @register_model(name)
    def factory(device: str = "auto", weights: str | None = None, **overrides: Any) -> PointTracker:
        tracker = PointTracker.from_pretrained(weights or "small", device=device, **{**settings, **overrides})
        tracker.model_id = f"{name}:{tracker.model_id.split(':', 1)[1]}"  # e.g. track_small_scene:track_small@<checksum>
        return tracker


_variant("track_small_flow", motion_hint=True)  # motion prior centred on the point carried by DIS flow
_variant("track_small_norefresh", refresh_every=0, adaptive_drop=0.0)
_variant("track_small_refresh30", refresh_every=30)
_variant("track_small_refresh90", refresh_every=90)
_variant("track_small_periodic", adaptive_drop=0.0)                  # refresh every 60, no adaptive trigger
_variant("track_small_adaptive", refresh_every=0)                    # adaptive trigger only
_variant("track_small_flow16", motion_hint=True, motion_sigma=16.0)  # + a narrower prior (16 px)
# + the flow-carried point replaces answers below confidence 0.5 (threshold chosen on BleedSim validation)
_variant("track_small_guided", motion_hint=True, motion_sigma=16.0, flow_fallback=0.5)
# as guided, with the hint read from the scene's dominant motion (instruments and jets are outliers)
_variant("track_small_scene", motion_hint=True, motion_sigma=16.0, flow_fallback=0.5, hint_mode="scene")
