"""Clip kinds (length, onset) and the paper's six scenarios as simulator parameters."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.sim.blood import BloodParams
from bleedorigin.sim.camera import MotionParams

SCENARIOS = ("clear_view", "obscured_view", "camera_jitter", "light_reflection",
             "water_flushing", "instrument_interference")
NEGATIVE_SCENARIOS = ("none", "camera_jitter", "light_reflection", "water_flushing",
                      "instrument_interference")
# Hard cases for the onset stage, rendered only when asked for (`--scenario`), never drawn at
# random (the scenario mix of existing folders stays as it is): a thin stream from a point that
# grows slowly, blood running off a white mound, and a crimson mucosa beside much white
# submucosa (red tissue that is not blood; also a bleeding-free scenario).
HARD_CASES = ("point_bleed", "white_mound", "crimson_bed")
NEGATIVE_HARD_CASES = ("crimson_bed",)
KINDS = ("detect", "track_short", "track_long", "full", "negative")
DETECT_FRAMES, DETECT_ONSET = 150, 120
CLIPS_PER_PATIENT = 3  # consecutive seeds share a patient (and its site), like real case series


@dataclass
class ClipSpec:
    kind: str
    num_frames: int
    onset: int | None   # first frame with blood (None: bleeding-free)
    preroll: int        # blood steps simulated before frame 0 (onset before the clip start)


@dataclass
class ScenarioParams:
    name: str
    motion: MotionParams = field(default_factory=MotionParams)
    blood: BloodParams = field(default_factory=BloodParams)
    instrument: bool = False
    instrument_always: bool = False
    glare: bool = False
    water: bool = False


def clip_spec(kind: str, rng: np.random.Generator, num_frames: int | None) -> ClipSpec:
    if kind not in KINDS:
        raise InputError(f"unknown clip kind {kind!r}; expected one of {', '.join(KINDS)}")
    if num_frames is not None and num_frames < 2:
        raise InputError(f"num_frames must be at least 2, got {num_frames}")
    if kind == "detect":
        n = num_frames or DETECT_FRAMES
        onset = DETECT_ONSET if n > DETECT_ONSET + 1 else max(1, n * 4 // 5)
        return ClipSpec(kind, n, onset, 0)
    if kind == "track_short":
        return ClipSpec(kind, num_frames or 31, 0, int(rng.integers(20, 90)))
    if kind == "track_long":
        n = num_frames or 30 * int(rng.integers(3, 11)) + 1  # 91..301, 30k+1 like the benchmark
        return ClipSpec(kind, n, 0, int(rng.integers(20, 90)))
    if kind == "full":
        n = num_frames or int(rng.integers(300, 901))
        lo, hi = min(15, n - 1), max(min(15, n - 1) + 1, n - 30)
        return ClipSpec(kind, n, int(rng.integers(lo, hi)), 0)
    return ClipSpec(kind, num_frames or DETECT_FRAMES, None, 0)


def scenario_params(name: str, rng: np.random.Generator) -> ScenarioParams:
    """Per-clip randomised parameters; every clip also gets mild baseline motion."""
    if name not in SCENARIOS + NEGATIVE_SCENARIOS + HARD_CASES:
        raise InputError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS + HARD_CASES)} "
                         "or 'none'")
    u = rng.uniform
    motion = MotionParams(drift=u(20, 60), rotation=u(0.03, 0.12), zoom=u(0.03, 0.12),
                          perspective=u(0, 6e-5), jitter=0.0, elastic=u(2, 6), speed=u(0.8, 2.4))
    blood = BloodParams(rate=u(40, 150), pulsatile=bool(rng.random() < 0.35), period=u(18, 30),
                        slope=u(0.6, 1.2), relief=u(1.0, 2.5), pressure=u(0.01, 0.03))
    s = ScenarioParams(name, motion, blood)
    if name == "obscured_view":
        blood.rate = u(200, 400)
        blood.slope = u(0.05, 0.3)
        blood.relief = u(2.5, 4.0)
        blood.pressure = u(0.1, 0.25)
    elif name == "camera_jitter":
        motion.jitter = u(3.0, 9.0)
        motion.drift *= 1.5
    elif name == "light_reflection":
        s.glare = True
    elif name == "water_flushing":
        s.water = True
    elif name == "instrument_interference":
        s.instrument = True
        s.instrument_always = bool(rng.random() < 0.4)
    elif name == "point_bleed":  # a thin, slow stream: the first 1 % of the view takes seconds
        blood.rate = u(4, 12)
        blood.pulsatile = False
        blood.slope = u(1.2, 2.0)
        blood.relief = u(0.5, 1.0)
        blood.pressure = u(0.005, 0.015)
    elif name == "white_mound":  # the source on top of white submucosa lifted into a mound
        blood.rate = u(10, 40)
        blood.relief = u(1.5, 3.0)
    return s


def vary_blood_look(blood: BloodParams, rng: np.random.Generator) -> None:
    """Training-time domain randomisation of the blood's look: from the default bright film to
    the dark, maroon pools of real ESD video (thick blood darkens at lower density)."""
    blood.dark_scale = float(np.exp(rng.uniform(np.log(0.4), np.log(4.0))))
    blood.thin_rgb = (rng.uniform(160, 215), rng.uniform(18, 40), rng.uniform(16, 34))
    blood.thick_rgb = (rng.uniform(40, 100), rng.uniform(4, 16), rng.uniform(4, 14))


def patient_id(seed: int) -> str:
    return f"simp{seed // CLIPS_PER_PATIENT:07d}"


def patient_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed // CLIPS_PER_PATIENT, 991])
