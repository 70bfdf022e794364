"""Clip-level augmentation: one random transform applied identically to every frame.

The simulator draws tissue, light and blood from fixed families; real endoscopes differ in
white balance, exposure, orientation and sensor noise. Transforms are shared across the clip
so temporal cues (frame differences, flow) stay intact, and the hue shift is kept small
because the colour of blood is itself the signal.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ClipAugment:
    flip_h: bool = False
    flip_v: bool = False
    gain: float = 1.0                  # exposure
    contrast: float = 1.0              # around the clip's mean grey
    channel_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance
    hue_shift: int = 0                 # OpenCV hue units (180 = full turn)
    noise_std: float = 0.0             # sensor noise, grey levels
    seed: int = 0

    @classmethod
    def random(cls, rng: np.random.Generator, strength: float = 1.0) -> "ClipAugment":
        s = float(strength)
        return cls(flip_h=bool(rng.random() < 0.5), flip_v=bool(rng.random() < 0.5),
                   gain=float(np.exp(rng.normal(0, 0.15 * s))),
                   contrast=float(np.exp(rng.normal(0, 0.12 * s))),
                   channel_gain=tuple(float(g) for g in np.exp(rng.normal(0, 0.06 * s, 3))),
                   hue_shift=int(round(rng.normal(0, 2.0 * s))),
                   noise_std=float(abs(rng.normal(0, 3.0 * s))),
                   seed=int(rng.integers(1 << 31)))

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> augmented copy of the same shape."""
        x = frames
        if self.flip_h:
            x = x[:, :, ::-1]
        if self.flip_v:
            x = x[:, ::-1]
        if self.hue_shift:
            x = np.stack([_shift_hue(f, self.hue_shift) for f in x])
        x = x.astype(np.float32)
        mean = float(x.mean())
        x = (x - mean) * self.contrast + mean
        x = x * (self.gain * np.asarray(self.channel_gain, np.float32))
        if self.noise_std > 0:
            x = x + np.random.default_rng(self.seed).normal(0, self.noise_std, x.shape).astype(np.float32)
        return np.clip(x, 0, 255).astype(np.uint8)

    def point(self, xy: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
        """Where pixel `xy` of a (W, H) frame lands after the flips."""
        w, h = size
        x, y = xy
        return (w - 1 - x if self.flip_h else x, h - 1 - y if self.flip_v else y)


def _shift_hue(rgb: np.ndarray, shift: int) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
