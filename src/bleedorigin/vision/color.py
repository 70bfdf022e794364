"""Colour cues for blood: HSV conversion and the Red-Mask (a soft per-pixel blood likelihood).

Blood in ESD video is saturated, dark-to-mid red: the red channel clearly dominates green and
blue. Pink/orange mucosa, white fibrous submucosa, blue-stained tissue and white glare all have
a weak red dominance, and the black field stop outside the cap has no light at all.
"""
from __future__ import annotations

import cv2
import numpy as np

BLOOD_THRESHOLD = 0.5  # red_mask value above which a pixel counts as blood


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> HSV float32 with H in [0, 360), S and V in [0, 1]."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    return hsv * np.array([360 / 256, 1 / 255, 1 / 255], np.float32)


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """Blood likelihood (H, W) float32 in [0, 1] of an RGB uint8 frame.

    Red dominance (R - max(G, B)) relative to R, soft-thresholded between 0.45 and 0.9, times a
    lightness ramp that ignores the unlit border.
    """
    f = rgb.astype(np.float32) * (1 / 255)
    r = f[..., 0]
    dominance = (r - np.maximum(f[..., 1], f[..., 2])) / (r + 0.02)
    lit = np.clip((r - 0.06) / 0.1, 0, 1)
    return (np.clip((dominance - 0.45) / 0.45, 0, 1) * lit).astype(np.float32)


def red_area_ratio(rgb: np.ndarray, threshold: float = BLOOD_THRESHOLD) -> float:
    """Share of the frame's pixels whose Red-Mask exceeds `threshold`."""
    return float((red_mask(rgb) > threshold).mean())
