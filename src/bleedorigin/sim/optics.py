"""What the endoscope adds in view coordinates: octagonal field stop, transparent cap rim,
light fall-off, and per-clip image degradation (blur, low-resolution look, sensor noise)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Optics:
    fov: np.ndarray        # (H, W) bool, inside the octagonal field stop
    gain: np.ndarray       # (H, W, 3) uint8, multiplicative light fall-off, 0 outside the stop
    rim: np.ndarray        # (h, w, 3) uint8 at render size, additive cap-rim glow
    down: float            # render scale: scenes are drawn at (W, H) * down, then upsampled
    render_size: tuple[int, int]
    blur: float            # Gaussian sigma, render-size px
    sharpen: float         # unsharp-mask amount (endoscope processors enhance edges)
    noise: list[np.ndarray]  # uint8 noise frames centred on 128 at render size, cycled


def make_optics(rng: np.random.Generator, view: tuple[int, int]) -> Optics:
    w, h = view
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    cx, cy = (w - 1) / 2 + rng.normal(0, w * 0.01), (h - 1) / 2 + rng.normal(0, h * 0.01)
    # real clips: an octagon with ~22 % of each side cut at the corners
    cut = rng.uniform(0.16, 0.26)
    d = np.minimum(np.minimum(xx, w - 1 - xx) / w, np.minimum(yy, h - 1 - yy) / h)
    corner = (np.minimum(xx, w - 1 - xx) / w + np.minimum(yy, h - 1 - yy) / h)
    fov = (corner >= cut) & (d >= 0)
    r = np.sqrt(((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2)
    fall = rng.uniform(0.35, 0.6)
    exposure = rng.uniform(0.9, 1.4)  # per-clip scope exposure
    light = np.clip(1.08 - fall * r ** 2, 0.15, 1.0) * exposure
    # scope light is off-axis: a gentle brightness gradient
    ang = rng.uniform(0, 2 * np.pi)
    light *= 1.0 + 0.12 * ((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / w
    soft_fov = cv2.GaussianBlur(fov.astype(np.float32), (0, 0), 1.5)
    light *= soft_fov
    gain = np.clip(light[..., None] * np.array([1.0, 0.97, 0.97]) * 200, 0, 255).astype(np.uint8)
    # transparent cap: a faint bright ring near the border with a darker band inside it
    ring_r = rng.uniform(0.88, 1.02)
    ring = np.exp(-((r - ring_r) / 0.025) ** 2) * rng.uniform(10, 40)
    ring *= 0.5 + 0.5 * np.cos(np.arctan2(yy - cy, xx - cx) - rng.uniform(0, 2 * np.pi)) ** 2
    rim = np.clip(ring[..., None] * np.array([1.0, 0.95, 0.95]) * soft_fov[..., None], 0, 255).astype(np.uint8)
    # the real clips are small and upscaled: render small (fast, and the same softness)
    down = float(rng.uniform(0.3, 0.7))
    rs = (max(16, int(round(w * down))), max(12, int(round(h * down))))
    rim = cv2.resize(rim, rs, interpolation=cv2.INTER_AREA)
    sigma = float(rng.uniform(1.5, 5.0))
    noise = [np.clip(128 + rng.normal(0, sigma, (rs[1], rs[0], 3)), 0, 255).astype(np.uint8) for _ in range(4)]
    return Optics(fov=fov, gain=gain, rim=rim, down=down, render_size=rs,
                  blur=float(rng.uniform(0.0, 0.5)), sharpen=float(rng.uniform(0.6, 2.2)), noise=noise)


def apply_optics(small: np.ndarray, o: Optics, t: int, extra_blur: float = 0.0,
                 brightness: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Render-size frame -> full frame: blur, sensor noise, cap rim, upsample, light fall-off."""
    sigma = o.blur + extra_blur * o.down
    if sigma > 0.3:
        small = cv2.GaussianBlur(small, (0, 0), sigma)
    if o.sharpen > 0:
        soft = cv2.GaussianBlur(small, (0, 0), 1.5)
        small = cv2.addWeighted(small, 1.0 + o.sharpen, soft, -o.sharpen, 0.0)
    small = cv2.addWeighted(small, 1.0, o.noise[t % len(o.noise)], 1.0, -128.0)
    small = cv2.add(small, o.rim)
    h, w = o.fov.shape
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(big, o.gain, dst=out, scale=brightness / 200.0)  # 0 outside the field stop
