"""Run-time configurations of the shipped tracker weights, by registry name.

Each entry is the `PointTracker` settings (and `TrackerConfig` run-time overrides) that turn the
weights into that variant. `bleedorigin finetune track --model NAME` starts from the variant's
weights and stores these settings in the new checkpoint (config.json "runtime"), so the
fine-tuned folder runs the same way."""
from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "track_small": {},
    "track_small_flow": {"motion_hint": True},  # motion prior centred on the point carried by DIS flow
    "track_small_norefresh": {"refresh_every": 0, "adaptive_drop": 0.0},
    "track_small_refresh30": {"refresh_every": 30},
    "track_small_refresh90": {"refresh_every": 90},
    "track_small_periodic": {"adaptive_drop": 0.0},  # refresh every 60, no adaptive trigger
    "track_small_adaptive": {"refresh_every": 0},    # adaptive trigger only
    "track_small_flow16": {"motion_hint": True, "motion_sigma": 16.0},  # + a narrower prior (16 px)
    # + the flow-carried point replaces answers below confidence 0.5 (threshold chosen on BleedSim validation)
    "track_small_guided": {"motion_hint": True, "motion_sigma": 16.0, "flow_fallback": 0.5},
    # as guided, the hint read from the scene's dominant motion (instruments and jets are outliers)
    "track_small_scene": {"motion_hint": True, "motion_sigma": 16.0, "flow_fallback": 0.5, "hint_mode": "scene"},
    # as scene, and where blood covers more than half the window around the point, the point follows
    # the scene (under blood the network follows the spreading pool)
    "track_small_blood": {"motion_hint": True, "motion_sigma": 16.0, "flow_fallback": 0.5, "hint_mode": "scene",
                          "blood_fallback": 0.5},
}
