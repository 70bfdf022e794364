"""BleedSim v2 appearance: what real ESD frames show and v1 frames lack, applied to rendered
frames. Each feature is switchable; all are off by default (`Appearance()`), so v1 clips are
unchanged unless asked for.

- cap_ring: the transparent distal cap seen from inside, a grey, desaturated band inside the
  field stop with a brighter inner edge;
- vignetting: wide-angle fall-off towards the rim;
- tissue_tone: mucosa pinker and less saturated (v1 tissue is orange-red);
- blood_colour: crimson blood with dark maroon pools where it is thick;
- blood_glare: wet specular highlights on blood;
- degrade: the real samples' low resolution and compression (112 px high, JPEG-like blocks);
- dissection_bed: exposed white-yellow (or stained pale-blue) fibrous submucosa with charred
  dark-brown/black coagulation spots;
- dark_pools: thick blood dark maroon to near-black, mottled by clots;
- bubbles: a cluster of small bright-rimmed spheres on the blood;
- smoke: a low-contrast grey veil drifting across the view;
- texture_from (a folder of real clips, not a switch): the tissue of a bleeding-free real frame
  under the blood, listed as "real_texture".
The last five are drawn by sim/appearance_layers.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

import bleedorigin.sim.appearance_layers as layers
from bleedorigin.vision.degrade import Degrade

FEATURES = ("cap_ring", "vignetting", "tissue_tone", "blood_colour", "blood_glare", "degrade",
            "dissection_bed", "dark_pools", "bubbles", "smoke")
# the features of BleedSim v2 (`Appearance.all()`), chosen by the rule in docs/realism.md
IN_ALL = ("dark_pools", "bubbles")


@dataclass(frozen=True)
class Appearance:
    cap_ring: bool = False
    vignetting: bool = False
    tissue_tone: bool = False
    blood_colour: bool = False
    blood_glare: bool = False
    degrade: bool = False
    dissection_bed: bool = False
    dark_pools: bool = False
    bubbles: bool = False
    smoke: bool = False
    texture_from: str | None = None  # folder of real clips whose bleeding-free frames give the tissue

    @classmethod
    def all(cls) -> Appearance:
        """BleedSim v2: the features chosen by the realism test (docs/realism.md)."""
        return cls(**{f: True for f in IN_ALL})

    @classmethod
    def every(cls) -> Appearance:
        """Every feature on, chosen or not."""
        return cls(**{f: True for f in FEATURES})

    @classmethod
    def parse(cls, text: str) -> Appearance:
        """"all" (BleedSim v2), "every", "none" or a comma list of FEATURES."""
        text = text.strip()
        if text in ("all", "v2"):
            return cls.all()
        if text == "every":
            return cls.every()
        if text in ("", "none", "v1"):
            return cls()
        names = [t.strip() for t in text.split(",") if t.strip()]
        bad = [n for n in names if n not in FEATURES]
        if bad:
            raise ValueError(f"unknown appearance feature(s) {bad}; expected some of {', '.join(FEATURES)}")
        return cls(**{n: True for n in names})

    def without(self, name: str) -> Appearance:
        return replace(self, **{name: False})

    def with_texture(self, folder: str | None) -> Appearance:
        return replace(self, texture_from=folder)

    @property
    def enabled(self) -> list[str]:
        return [f for f in FEATURES if getattr(self, f)] + (["real_texture"] if self.texture_from else [])


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


@dataclass(frozen=True)
class _Layers:
    """Per-clip scene layers (sim/appearance_layers.py) and the scene's motion they follow."""
    shift: np.ndarray                  # (T, 2) scene translation since frame 0
    bed: np.ndarray | None             # canvas RGBA
    bubbles: np.ndarray | None         # canvas RGBA
    pool: tuple[np.ndarray, float] | None
    clots: np.ndarray | None           # canvas mottling of dark pools in [0, 1]
    smoke: layers.Smoke | None
    texture: np.ndarray | None         # canvas RGBA


def _layers(frames: np.ndarray, blood: np.ndarray, app: Appearance, rng: np.random.Generator) -> _Layers:
    t_n, h, w = frames.shape[:3]
    need_motion = app.dissection_bed or app.bubbles or app.dark_pools or app.texture_from
    shift = layers.scene_shift(frames) if need_motion else np.zeros((t_n, 2), np.float32)
    bed = layers.dissection_bed(rng, h, w) if app.dissection_bed else None
    bub = None
    if app.bubbles:
        # on the blood of a frame showing the most of it (else anywhere near the middle)
        t = int(blood.sum(axis=(1, 2)).argmax())
        ys, xs = np.nonzero(blood[t])
        if len(xs):
            i = rng.integers(len(xs))
            at = np.array([xs[i], ys[i]], np.float32)
        else:
            at = rng.uniform((0.3 * w, 0.3 * h), (0.7 * w, 0.7 * h)).astype(np.float32)
        bub = layers.bubbles(rng, h, w, layers.to_canvas(at, shift[t], h, w))
    pool = clots = None
    if app.dark_pools:
        pool = layers.dark_pool(rng)
        clots = layers.noise(rng, layers.canvas_shape(h, w), 0.08 * h)
    smoke = layers.Smoke.random(rng, h, w) if app.smoke else None
    texture = layers.real_texture(rng, h, w, layers.texture_frames(app.texture_from)) if app.texture_from else None
    return _Layers(shift, bed, bub, pool, clots, smoke, texture)


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


def _reddish(img: np.ndarray) -> np.ndarray:
    """(H, W, 1) soft weight of tissue-coloured pixels: red well above green and blue."""
    f = img.astype(np.float32)
    w = np.clip((f[..., 0] - f[..., 1:].max(axis=2) - 15) / 30, 0, 1)
    return cv2.GaussianBlur(w, (0, 0), 1.0)[..., None]


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
    # the layers draw from a generator of their own, seeded last: switching one on or off leaves
    # the random choices of the features above (look, glare) unchanged
    lay = _layers(frames, blood, app, np.random.default_rng(rng.integers(2**31)))
    for t in range(len(frames)):
        out[t] = _frame(frames[t], blood[t], view, r, app, look, glare_rng, lay, t)
    return out


def _frame(img: np.ndarray, blood: np.ndarray, view: np.ndarray, r: np.ndarray, app: Appearance,
           look: _Look, rng: np.random.Generator, lay: _Layers, t: int) -> np.ndarray:
    f = img.astype(np.float32)
    h, w = img.shape[:2]
    soft_blood = cv2.GaussianBlur(blood.astype(np.float32), (0, 0), 0.006 * img.shape[0] + 1)[..., None]
    if lay.bed is not None or lay.texture is not None:
        # tissue layers go under the blood and never over instruments, water or glare, which
        # (unlike the red tissue) are grey, white or blue: truth says they hide points
        under = (1 - soft_blood) * _reddish(img)
    if app.tissue_tone:
        # pink, less saturated mucosa: pull towards its own grey, then tint pink (blood kept)
        grey = f.mean(axis=2, keepdims=True)
        pink = grey * np.array([1.25, 0.85, 0.88], np.float32)
        f = f + look.tissue_mix * (1 - soft_blood) * (pink - f)
    if lay.texture is not None:  # real tissue
        f = layers.over(f, layers.layer_at(lay.texture, lay.shift[t], h, w), under)
    if lay.bed is not None:  # exposed submucosa
        f = layers.over(f, layers.layer_at(lay.bed, lay.shift[t], h, w), under)
    if app.blood_colour or lay.pool is not None:  # how far inside the blood: thick blood is darker
        depth = cv2.GaussianBlur(cv2.distanceTransform(blood.astype(np.uint8), cv2.DIST_L2, 3), (0, 0), 2.0)
    if app.blood_colour:
        # crimson film; thick (inner) blood darkens to maroon pools
        thick = np.clip(depth / max(6.0, 0.12 * img.shape[0]), 0, 1)[..., None] ** 2
        shade = f[..., :1] / 200.0  # the light falling on the blood (its red channel in v1)
        col = look.blood_rgb * np.clip(shade, 0.5, 1.2) * (1 - look.pool_dark * thick)
        f = f + 0.8 * soft_blood * (col - f)
    if lay.pool is not None and blood.any():
        # thick blood goes dark maroon to near-black; clots mottle it
        rgb, scale = lay.pool
        thick = np.clip(depth / max(3.0, scale * h), 0, 1)[..., None]
        clot = layers.layer_at(lay.clots, lay.shift[t], h, w)[..., None]
        dark = rgb * (0.6 + 0.8 * clot) * np.clip(f[..., :1] / 150.0, 0.6, 1.3)
        f = f + 0.9 * soft_blood * thick * (dark - f)
    if app.blood_glare and blood.any():
        ys, xs = np.nonzero(blood)
        k = min(len(xs), max(1, int(len(xs) * 0.0004)))
        pick = rng.choice(len(xs), k, replace=False)
        spots = np.zeros(blood.shape, np.float32)
        spots[ys[pick], xs[pick]] = 1.0
        size = max(2, int(0.012 * img.shape[0]))
        spots = cv2.GaussianBlur(cv2.dilate(spots, np.ones((size, 2 * size), np.uint8)), (0, 0), 1.0)
        f = f + np.clip(spots * 3, 0, 1)[..., None] * (250 - f)
    if lay.bubbles is not None:
        f = layers.over(f, layers.layer_at(lay.bubbles, lay.shift[t], h, w))
    if lay.smoke is not None:
        f = f + lay.smoke.alpha(t, h, w)[..., None] * (lay.smoke.colour - f)
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
    if app.degrade:  # the real samples' 112 rows and JPEG, at this frame's aspect
        f = Degrade(height=112, width_ratio=w / h, jpeg_quality=look.jpeg_quality).frame(f)
        f[~view] = 0
    return f
