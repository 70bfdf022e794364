"""BleedOrigin-Track: online Track-On-style point tracker (paper section 4.2).

Registry names: `track_small` (shipped weights), its variants below and `track_test` (tiny random
network).
"""
from __future__ import annotations

from typing import Any

from bleedorigin.models.registry import register_model
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.models.track.learned.predictor import PointTracker
from bleedorigin.models.track.learned.variants import VARIANTS

__all__ = ["PointTracker", "TrackOnSmall", "TrackerConfig"]


@register_model("track_test")
def track_test(device: str = "cpu", seed: int = 0, **overrides: Any) -> PointTracker:
    return PointTracker.tiny(device=device, seed=seed, **overrides)


# The shipped weights under each run-time configuration (`variants.py`), for side-by-side
# evaluation (`bleedorigin evaluate --models`); the default tracker is `track_mft_own_agree_mean` (docs/tracking.md).
def _variant(name: str, settings: dict[str, Any]) -> None:
    @register_model(name)
    def factory(device: str = "auto", weights: str | None = None, **overrides: Any) -> PointTracker:
        # a configuration names itself in the model id: e.g. track_small_blood:track_small@<checksum>
        return PointTracker.from_pretrained(weights or "small", device=device, label=name if settings else "track",
                                            **{**settings, **overrides})


for _name, _settings in VARIANTS.items():
    _variant(_name, _settings)
