"""BleedSim v2 appearance: what real ESD frames show and v1 frames lack, applied to rendered
frames. Each feature is switchable; all are off by default (`Appearance()`), so v1 clips are
unchanged unless asked for.

- cap_ring: the transparent distal cap seen from inside, a grey, desaturated band inside the
  field stop with a brighter inner edge;
- vignetting: wide-angle fall-off towards the rim;
- tissue_tone: mucosa pinker and less saturated (v1 tissue is orange-red);
- blood_colour: crimson blood with dark maroon pools where it is thick;
- blood_glare: wet specular highlights on blood;
- degrade: the real samples' low resolution and compression (112 px high, JPEG-like blocks).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

FEATURES = ("cap_ring", "vignetting", "tissue_tone", "blood_colour", "blood_glare", "degrade")


@dataclass(frozen=True)
class Appearance:
    cap_ring: bool = False
    vignetting: bool = False
    tissue_tone: bool = False
    blood_colour: bool = False
    blood_glare: bool = False
    degrade: bool = False

    @classmethod
    def all(cls) -> Appearance:
        return cls(**{f: True for f in FEATURES})

    @classmethod
    def parse(cls, text: str) -> Appearance:
        """"all", "none" or a comma list of FEATURES."""
        text = text.strip()
        if text in ("all", "v2"):
            return cls.all()
        if text in ("", "none", "v1"):
            return cls()
        names = [t.strip() for t in text.split(",") if t.strip()]
        bad = [n for n in names if n not in FEATURES]
        if bad:
            raise ValueError(f"unknown appearance feature(s) {bad}; expected some of {', '.join(FEATURES)}")
        return cls(**{n: True for n in names})

    def without(self, name: str) -> Appearance:
        return replace(self, **{name: False})

    @property
    def enabled(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class _Look:
    """Per-clip random choices (one draw per clip, constant over its frames)."""
    ring_inner: float
    ring_alpha: float
    vignette: float
    tissue_mix: float
    blood_rgb: np.ndarray
    pool_dark: float
    jpeg_quality: int


def _look(rng: np.random.Generator) -> _Look:
    return _Look(ring_inner=float(rng.uniform(0.72, 0.86)), ring_alpha=float(rng.uniform(0.45, 0.75)),
                 vignette=float(rng.uniform(0.3, 0.6)), tissue_mix=float(rng.uniform(0.35, 0.6)),
                 blood_rgb=np.array([rng.uniform(150, 210), rng.uniform(8, 30), rng.uniform(20, 45)], np.float32),
                 pool_dark=float(rng.uniform(0.35, 0.6)), jpeg_quality=int(rng.integers(35, 70)))


def _radius(view: np.ndarray) -> np.ndarray:
    """Normalised radius (0 centre, 1 at the field stop's extent) over the lit view."""
    h, w = view.shape
    ys, xs = np.nonzero(view)
    if len(xs) == 0:
        ys, xs = np.array([0, h - 1]), np.array([0, w - 1])
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    rx, ry = max(1.0, (xs.max() - xs.min()) / 2), max(1.0, (ys.max() - ys.min()) / 2)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    return np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)


def apply_appearance(frames: np.ndarray, blood: np.ndarray, app: Appearance,
                     rng: np.random.Generator) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 with the enabled features; `blood` (T, H, W) bool is the
    clip's blood truth mask. Returns a new array; truth (points, masks) is unchanged."""
    if not app.enabled:
        return frames
    look = _look(rng)
    view = frames.max(axis=(0, 3)) > 8  # the field stop: black in every frame
    r = _radius(view)
    out = np.empty_like(frames)
    glare_rng = np.random.default_rng(rng.integers(2**31))
    for t in range(len(frames)):
        out[t] = _frame(frames[t], blood[t], view, r, app, look, glare_rng)
    return out


def _frame(img: np.ndarray, blood: np.ndarray, view: np.ndarray, r: np.ndarray, app: Appearance,
           look: _Look, rng: np.random.Generator) -> np.ndarray:
    f = img.astype(np.float32)
    soft_blood = cv2.GaussianBlur(blood.astype(np.float32), (0, 0), 0.006 * img.shape[0] + 1)[..., None]
    if app.tissue_tone:
        # pink, less saturated mucosa: pull towards its own grey, then tint pink (blood kept)
        grey = f.mean(axis=2, keepdims=True)
        pink = grey * np.array([1.25, 0.85, 0.88], np.float32)
        f = f + look.tissue_mix * (1 - soft_blood) * (pink - f)
    if app.blood_colour:
        # crimson film; thick (inner) blood darkens to maroon pools
        depth = cv2.GaussianBlur(cv2.distanceTransform(blood.astype(np.uint8), cv2.DIST_L2, 3), (0, 0), 2.0)
        thick = np.clip(depth / max(6.0, 0.12 * img.shape[0]), 0, 1)[..., None] ** 2
        shade = f[..., :1] / 200.0  # the light falling on the blood (its red channel in v1)
        col = look.blood_rgb * np.clip(shade, 0.5, 1.2) * (1 - look.pool_dark * thick)
        f = f + 0.8 * soft_blood * (col - f)
    if app.blood_glare and blood.any():
        ys, xs = np.nonzero(blood)
        k = min(len(xs), max(1, int(len(xs) * 0.0004)))
        pick = rng.choice(len(xs), k, replace=False)
        spots = np.zeros(blood.shape, np.float32)
        spots[ys[pick], xs[pick]] = 1.0
        size = max(2, int(0.012 * img.shape[0]))
        spots = cv2.GaussianBlur(cv2.dilate(spots, np.ones((size, 2 * size), np.uint8)), (0, 0), 1.0)
        f = f + np.clip(spots * 3, 0, 1)[..., None] * (250 - f)
    if app.cap_ring:
        band = np.clip((r - look.ring_inner) / 0.05, 0, 1)[..., None]
        grey = f.mean(axis=2, keepdims=True) * 0.9 + 25
        f = f + look.ring_alpha * band * (grey - f)
        edge = np.exp(-((r - look.ring_inner) / 0.012) ** 2)[..., None]
        f = f + 0.35 * edge * (235 - f)
    if app.vignetting:
        f = f * np.clip(1 - look.vignette * np.clip(r, 0, 1.2) ** 2.5, 0.15, 1)[..., None]
    f = np.clip(f, 0, 255).astype(np.uint8)
    f[~view] = 0
    if app.degrade:
        h, w = f.shape[:2]
        small = cv2.resize(f, (max(16, round(w * 112 / h)), 112), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, look.jpeg_quality])
        if ok:
            small = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        f = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        f[~view] = 0
    return f
