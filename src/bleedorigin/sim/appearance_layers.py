"""ESD scene layers of BleedSim v2 appearance (sim/appearance.py): dissection-bed tissue,
dark blood pools, bubbles, smoke and real tissue texture, drawn over rendered frames.

Layers that belong to the tissue (the dissection bed, bubbles sitting on blood) are drawn once
per clip on a canvas larger than the view and follow the scene's global motion, estimated from
the frames by phase correlation, so they move with the tissue instead of sticking to the lens.
Every random choice is made per clip; frames differ only by that motion and slow drifts, so the
layers never flicker (the onset model reads temporal change).

real_texture lays the tissue of a real frame (bleeding-free frames of clips the user supplies)
under the blood; clips used as its source are then no evidence of generalisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.io.video import load_clip_frames

PAD = 0.25  # canvas margin around the view, as a fraction of its size


def scene_shift(frames: np.ndarray) -> np.ndarray:
    """(T, 2) cumulative global translation of the scene (x, y in pixels) relative to frame 0,
    from phase correlation of consecutive frames at about 128 px wide."""
    h, w = frames.shape[1:3]
    s = min(1.0, 128.0 / w)
    size = (max(16, round(w * s)), max(16, round(h * s)))
    win = cv2.createHanningWindow(size, cv2.CV_32F)
    out = np.zeros((len(frames), 2), np.float32)
    prev = None
    for t, f in enumerate(frames):
        g = cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if prev is not None:
            (dx, dy), _ = cv2.phaseCorrelate(prev, g, win)
            out[t] = out[t - 1] + np.array([dx, dy], np.float32) / s
        prev = g
    return out


def noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth noise in [0, 1] with features about `scale` pixels across."""
    h, w = shape
    k = max(1.0, scale)
    small = rng.random((max(2, int(h / k) + 2), max(2, int(w / k) + 2))).astype(np.float32)
    n = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    n -= n.min()
    return n / max(float(n.max()), 1e-6)


def canvas_shape(h: int, w: int) -> tuple[int, int]:
    return int(round(h * (1 + 2 * PAD))), int(round(w * (1 + 2 * PAD)))


def dissection_bed(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H', W', 4) float32 canvas RGBA: an exposed submucosa patch (white-yellow, or pale blue
    where the injection was stained) with fibrous strands, and charred dark-brown/black
    coagulation spots near its border."""
    ch, cw = canvas_shape(h, w)
    area = rng.uniform(0.08, 0.22) * h * w
    cx, cy = PAD * w + rng.uniform(0.25, 0.75) * w, PAD * h + rng.uniform(0.25, 0.75) * h
    ang = rng.uniform(0, np.pi)
    ax = np.sqrt(area / np.pi) * np.array([rng.uniform(1.0, 1.8), 1.0])
    ax[1] = area / (np.pi * ax[0])
    yy, xx = np.mgrid[:ch, :cw].astype(np.float32)
    u = ((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / ax[0]
    v = (-(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)) / ax[1]
    edge_noise = noise(rng, (ch, cw), 0.06 * h) - 0.5
    inside = np.clip((1.0 - np.sqrt(u ** 2 + v ** 2) + 0.5 * edge_noise) / 0.15, 0, 1)
    # fibres: noise stretched along one direction (strands of connective tissue)
    fib_small = rng.random((max(4, ch // 3), max(2, cw // 40))).astype(np.float32)
    fib = cv2.resize(fib_small, (cw, ch), interpolation=cv2.INTER_CUBIC)
    rot = cv2.getRotationMatrix2D((cw / 2, ch / 2), float(np.degrees(ang)) + rng.uniform(-30, 30), 1.0)
    fib = np.clip(cv2.warpAffine(fib, rot, (cw, ch), borderMode=cv2.BORDER_REFLECT), 0, 1)[..., None]
    base = np.array([235, 222, 190], np.float32) if rng.random() < 0.7 else np.array([150, 190, 215], np.float32)
    strand = np.array([245, 240, 225], np.float32)
    pinkish = np.array([215, 150, 140], np.float32)
    rgb = base * (0.8 + 0.2 * fib) + (strand - base) * fib ** 3 + (pinkish - base) * 0.5 * noise(rng, (ch, cw), 0.04 * h)[..., None]
    alpha = inside * rng.uniform(0.65, 0.9)
    # charred spots: small irregular clusters of dark specks near the patch border
    border = np.argwhere((inside > 0.2) & (inside < 0.8))
    specks = noise(rng, (ch, cw), 0.008 * h + 1)
    for _ in range(int(rng.integers(1, 5)) if len(border) else 0):
        y, x = border[rng.integers(len(border))]
        r = rng.uniform(0.02, 0.05) * h
        near = np.exp(-(((xx - x) ** 2 + (yy - y) ** 2) / (2 * r * r)))
        spot = np.clip((near * specks - 0.25) / 0.2, 0, 1)
        char = np.array([rng.uniform(25, 80), rng.uniform(12, 40), rng.uniform(5, 20)], np.float32)
        rgb = rgb + spot[..., None] * (char - rgb)
        alpha = np.maximum(alpha, 0.9 * spot)
    return np.dstack([rgb, alpha]).astype(np.float32)


def bubbles(rng: np.random.Generator, h: int, w: int, centre: np.ndarray) -> np.ndarray:
    """(H', W', 4) float32 canvas RGBA: a cluster of small spheres around `centre` (canvas
    pixels), each a faint body with a bright rim and a specular dot up and to the left."""
    ch, cw = canvas_shape(h, w)
    rgb = np.zeros((ch, cw, 3), np.float32)
    alpha = np.zeros((ch, cw), np.float32)
    n = int(rng.integers(8, 30))
    spread = rng.uniform(0.04, 0.1) * h
    for _ in range(n):
        c = centre + rng.normal(0, spread, 2)
        r = max(1.5, rng.lognormal(np.log(0.012 * h), 0.5))
        x0, x1 = int(max(0, c[0] - r - 2)), int(min(cw, c[0] + r + 3))
        y0, y1 = int(max(0, c[1] - r - 2)), int(min(ch, c[1] + r + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = np.sqrt((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / r
        rim = np.exp(-((d - 0.9) / 0.12) ** 2)
        spec = np.exp(-(((xx - c[0] + 0.35 * r) ** 2 + (yy - c[1] + 0.35 * r) ** 2) / (0.05 * r * r + 0.3)))
        body = (d < 1).astype(np.float32) * 0.15
        a = np.clip(np.maximum.reduce([0.7 * rim, spec, body]), 0, 1)
        sub = alpha[y0:y1, x0:x1]
        rgb[y0:y1, x0:x1] = np.where((a > sub)[..., None], 245.0, rgb[y0:y1, x0:x1])
        alpha[y0:y1, x0:x1] = np.maximum(sub, a)
    return np.dstack([rgb, alpha])


@dataclass(frozen=True)
class Smoke:
    """A low-contrast grey veil (electrocautery smoke) drifting across the view."""
    field: np.ndarray     # (H', W') float32 density in [0, 1] on a canvas twice the view
    strength: float       # peak opacity
    colour: np.ndarray    # (3,) grey
    velocity: np.ndarray  # (2,) px per frame

    @classmethod
    def random(cls, rng: np.random.Generator, h: int, w: int) -> Smoke:
        d = noise(rng, (2 * h, 2 * w), 0.35 * h) * noise(rng, (2 * h, 2 * w), 0.12 * h)
        d /= max(float(d.max()), 1e-6)
        speed = rng.uniform(0.2, 1.0) * h / 192
        ang = rng.uniform(0, 2 * np.pi)
        return cls(field=d.astype(np.float32), strength=float(rng.uniform(0.25, 0.5)),
                   colour=np.full(3, rng.uniform(170, 215), np.float32),
                   velocity=speed * np.array([np.cos(ang), np.sin(ang)], np.float32))

    def alpha(self, t: int, h: int, w: int) -> np.ndarray:
        fh, fw = self.field.shape
        x0 = int(round(w / 2 + self.velocity[0] * t)) % (fw - w)
        y0 = int(round(h / 2 + self.velocity[1] * t)) % (fh - h)
        return self.strength * self.field[y0:y0 + h, x0:x0 + w]


def dark_pool(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Per-clip colour of thick blood, from dark maroon to near-black, and the fraction of the
    pool's depth scale over which it darkens (small: the whole pool goes dark)."""
    rgb = np.array([rng.uniform(45, 110), rng.uniform(3, 14), rng.uniform(8, 24)], np.float32)
    return rgb, float(rng.uniform(0.03, 0.08))


def over(f: np.ndarray, rgba: np.ndarray, weight: np.ndarray | float = 1.0) -> np.ndarray:
    """`rgba` composited over the float RGB image `f`, its alpha scaled by `weight` (a number
    or an (H, W, 1) array)."""
    return f + rgba[..., 3:] * weight * (rgba[..., :3] - f)


def layer_at(layer: np.ndarray, shift: np.ndarray, h: int, w: int) -> np.ndarray:
    """The part of a canvas layer (drawn with a PAD margin) seen in a frame whose scene moved
    by `shift` since frame 0: canvas point c shows at c - PAD * (w, h) + shift."""
    m = np.float32([[1, 0, PAD * w - shift[0]], [0, 1, PAD * h - shift[1]]])
    return cv2.warpAffine(layer, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)


def to_canvas(xy: np.ndarray, shift: np.ndarray, h: int, w: int) -> np.ndarray:
    """View point of a frame whose scene moved by `shift` -> canvas point (inverse of layer_at)."""
    return np.asarray(xy, np.float32) + np.float32([PAD * w, PAD * h]) - shift


TEXTURE_HEIGHT = 344  # real texture frames are kept at this height
TEXTURE_EVERY = 10    # and every this many frames (neighbours look alike)
TEXTURE_MARGIN = 30   # frames dropped before a clip's bleeding_from_frame
TEXTURE_BLUR = 2.5    # Gaussian sigma (px at TEXTURE_HEIGHT) over the source's codec blocks


@lru_cache(maxsize=2)
def texture_frames(folder: str) -> tuple[np.ndarray, ...]:
    """Bleeding-free frames of the real clips under `folder` (a folder of clip folders, or one
    clip folder), every TEXTURE_EVERY-th one, TEXTURE_HEIGHT px high: for a clip whose
    meta.json gives `bleeding_from_frame`, the frames up to TEXTURE_MARGIN before it; a clip
    marked `"bleeding": true` without it is skipped; any other clip is taken as bleeding-free."""
    from bleedorigin.errors import InputError
    from bleedorigin.utils.jsonio import read_json

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"texture source: not a folder: {root}")
    dirs = [root] if (root / "video.mp4").is_file() or (root / "frames.npz").is_file() else \
        sorted(d for d in root.iterdir() if (d / "video.mp4").is_file() or (d / "frames.npz").is_file())
    out = []
    for d in dirs:
        meta = read_json(d / "meta.json") if (d / "meta.json").is_file() else {}
        end = meta.get("bleeding_from_frame")
        if end is None and meta.get("bleeding"):
            continue
        frames = load_clip_frames(d)
        stop = len(frames) if end is None else max(0, int(end) - TEXTURE_MARGIN)
        for f in frames[:stop:TEXTURE_EVERY]:
            h, w = f.shape[:2]
            out.append(cv2.resize(f, (round(w * TEXTURE_HEIGHT / h), TEXTURE_HEIGHT), interpolation=cv2.INTER_AREA))
    if not out:
        raise InputError(f"texture source {root}: no bleeding-free frames")
    return tuple(out)


def real_texture(rng: np.random.Generator, h: int, w: int, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    """(H', W', 4) float32 canvas RGBA: the middle of one real frame (inside its cap ring and
    field stop), cropped to the canvas's aspect, randomly flipped, scaled to the canvas."""
    ch, cw = canvas_shape(h, w)
    src = sources[int(rng.integers(len(sources)))]
    sh, sw = src.shape[:2]
    ch0 = int(sh * rng.uniform(0.5, 0.6))
    cw0 = min(int(sw * 0.6), round(ch0 * cw / ch))
    ch0 = round(cw0 * ch / cw)
    y0 = int(rng.integers(int(0.2 * sh), max(int(0.2 * sh) + 1, int(0.8 * sh) - ch0)))
    x0 = int(rng.integers(int(0.2 * sw), max(int(0.2 * sw) + 1, int(0.8 * sw) - cw0)))
    # smoothed: low bit-rate sources show codec blocks that the real ESD samples do not
    crop = cv2.GaussianBlur(src[y0:y0 + ch0, x0:x0 + cw0], (0, 0), TEXTURE_BLUR)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    rgb = cv2.resize(np.ascontiguousarray(crop), (cw, ch), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.dstack([rgb, np.full((ch, cw), rng.uniform(0.7, 0.95), np.float32)])
