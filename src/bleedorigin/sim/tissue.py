"""Static tissue texture of one clip: submucosa, mucosa, indigo-carmine dye, vessels, cautery.

Rendered once per clip in *texture coordinates* (larger than the view so the camera can move);
every frame is a single warp of it. A height field (tissue relief + gravity) drives the blood flow.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from bleedorigin.errors import InputError

SITES = ("gastric_antrum", "gastric_body", "duodenum", "ascending_colon", "esophagus",
         "sigmoid_colon", "cardia", "lesser_curvature")


@dataclass(frozen=True)
class SitePreset:
    """Colour/texture knobs of an anatomical site (RGB 0-255, fractions 0-1)."""
    mucosa: tuple[int, int, int]       # pink-red mucosa
    submucosa: tuple[int, int, int]    # whitish fibrous submucosa
    dye: tuple[int, int, int]          # indigo-carmine stained submucosa
    submucosa_frac: float              # area share of exposed submucosa
    dye_frac: float                    # area share of blue-stained regions
    vessel_count: int
    fibre_scale: float                 # fibre streak length (px)
    cautery_frac: float                # dark coagulated areas
    shadow: float                      # strength of folds / lumen shadows


SITE_PRESETS: dict[str, SitePreset] = {
    "gastric_antrum": SitePreset((214, 120, 106), (232, 190, 186), (70, 150, 165), 0.45, 0.15, 14, 40, 0.04, 0.55),
    "gastric_body": SitePreset((205, 104, 90), (228, 190, 188), (60, 140, 170), 0.40, 0.20, 18, 50, 0.03, 0.65),
    "duodenum": SitePreset((220, 140, 118), (236, 210, 190), (80, 160, 160), 0.35, 0.10, 10, 25, 0.02, 0.50),
    "ascending_colon": SitePreset((222, 150, 136), (238, 214, 206), (65, 155, 180), 0.40, 0.30, 22, 35, 0.02, 0.45),
    "esophagus": SitePreset((216, 146, 132), (240, 220, 214), (75, 160, 175), 0.50, 0.20, 12, 60, 0.03, 0.40),
    "sigmoid_colon": SitePreset((200, 112, 98), (226, 196, 188), (55, 135, 165), 0.40, 0.25, 20, 30, 0.03, 0.60),
    "cardia": SitePreset((196, 96, 82), (224, 184, 180), (62, 138, 155), 0.45, 0.15, 16, 45, 0.05, 0.70),
    "lesser_curvature": SitePreset((208, 110, 96), (230, 194, 190), (68, 148, 165), 0.42, 0.18, 15, 45, 0.04, 0.60),
}


@dataclass
class Tissue:
    texture: np.ndarray  # (Ht, Wt, 3) uint8 RGB, texture coordinates
    height: np.ndarray   # (Ht, Wt) float32 relief; blood runs downhill and pools in dips
    site: str


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise in [0, 1] of `cells` features across the width, cubic-upsampled (fast)."""
    w, h = size
    cw = max(2, cells)
    ch = max(2, int(round(cells * h / w)))
    small = rng.random((ch, cw), dtype=np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def fractal_noise(rng: np.random.Generator, size: tuple[int, int], base: int, octaves: int = 4) -> np.ndarray:
    out = np.zeros((size[1], size[0]), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * smooth_noise(rng, size, base * 2 ** o)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = np.percentile(out, (1, 99))
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _fibres(rng: np.random.Generator, size: tuple[int, int], length: float) -> np.ndarray:
    """Anisotropic streak noise (fibrous submucosa): noise stretched along a random direction."""
    w, h = size
    d = int(np.hypot(w, h)) + 4
    small = rng.random((max(2, d // 3), max(2, int(d / length))), dtype=np.float32)
    streak = cv2.resize(small, (d, d), interpolation=cv2.INTER_LINEAR)
    rot = cv2.getRotationMatrix2D((d / 2, d / 2), float(rng.uniform(0, 180)), 1.0)
    rot[:, 2] -= ((d - w) / 2, (d - h) / 2)
    return cv2.warpAffine(streak, rot, (w, h), borderMode=cv2.BORDER_REFLECT)


def _blend(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    img += (colour - img) * alpha[..., None]


def _vessels(rng: np.random.Generator, size: tuple[int, int], count: int) -> np.ndarray:
    """Random smooth polylines (momentum random walk), 0..1 intensity."""
    w, h = size
    canvas = np.zeros((h, w), np.float32)
    for _ in range(count):
        p = rng.uniform((0, 0), (w, h))
        ang = rng.uniform(0, 2 * np.pi)
        pts = [p.copy()]
        for _ in range(int(rng.integers(15, 60))):
            ang += rng.normal(0, 0.25)
            p = p + 6.0 * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p.copy())
        thick = int(rng.choice([1, 1, 2, 2, 3, 4]))
        cv2.polylines(canvas, [np.round(np.array(pts)).astype(np.int32)], False,
                      float(rng.uniform(0.4, 1.0)), thick, cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), 0.8)


def _speculars(rng: np.random.Generator, size: tuple[int, int], count: int) -> np.ndarray:
    """Small wet-surface highlights baked into the texture (they move with the tissue)."""
    w, h = size
    canvas = np.zeros((h, w), np.float32)
    for _ in range(count):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        ax = (int(rng.integers(1, 7)), int(rng.integers(1, 3)))
        cv2.ellipse(canvas, c, ax, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.4, 1.0)), -1,
                    cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), 1.0)


CRIMSON_MUCOSA = (200, 60, 55)  # `crimson_bed`: mucosa nearly as red as thin blood (G/R 0.23-0.3)
CRIMSON_MAX_SAT = 1.1           # its per-clip saturation capped here (above, the bed is the colour of blood)
CRIMSON_SUBMUCOSA_FRAC = 0.5    # beside this much white submucosa


def render_tissue(rng: np.random.Generator, site: str, size: tuple[int, int], crimson: bool = False) -> Tissue:
    """Texture of (W, H) = `size` for `site`; colours jittered per clip so no two look alike.
    `crimson`: the site's mucosa made crimson beside a large share of white submucosa."""
    if site not in SITE_PRESETS:
        raise InputError(f"unknown site {site!r}; expected one of {', '.join(SITES)}")
    p = SITE_PRESETS[site]
    if crimson:
        p = replace(p, mucosa=CRIMSON_MUCOSA, submucosa_frac=CRIMSON_SUBMUCOSA_FRAC)
    w, h = size
    jitter = lambda c: np.clip(np.array(c, np.float32) + rng.normal(0, 10, 3), 0, 255)  # noqa: E731
    mucosa, submucosa, dye = jitter(p.mucosa), jitter(p.submucosa), jitter(p.dye)
    # per-clip saturation: some scopes/sites render the mucosa deep red, others pale pink
    sat = rng.uniform(0.8, 1.4)
    if crimson:
        sat = min(sat, CRIMSON_MAX_SAT)
    mucosa = np.clip(mucosa.max() - (mucosa.max() - mucosa) * sat, 0, 255)

    relief = fractal_noise(rng, size, 3, 4)
    img = np.empty((h, w, 3), np.float32)
    img[:] = mucosa
    # mucosal micro-texture: fine mottling
    mottle = fractal_noise(rng, size, 24, 3) - 0.5
    img *= (1.0 + 0.35 * mottle)[..., None]

    # exposed submucosa: threshold of a mid-frequency field, soft edges, fibre streaks
    field = fractal_noise(rng, size, 4, 3)
    thr = np.quantile(field, 1.0 - p.submucosa_frac)
    sub = np.clip((field - thr) * 12.0, 0.0, 1.0)
    fib = _fibres(rng, size, p.fibre_scale)
    sub_col = submucosa[None, None, :] * (0.8 + 0.3 * fib[..., None])
    img += (sub_col - img) * sub[..., None]
    # mucosa edge: a darker, redder rim where mucosa meets the dissection plane
    edge = np.clip(sub * (1 - sub) * 4.0, 0, 1)
    _blend(img, mucosa * 0.7, 0.5 * edge)

    # indigo-carmine dye inside the submucosa
    dfield = fractal_noise(rng, size, 5, 3)
    dthr = np.quantile(dfield, 1.0 - p.dye_frac)
    dmask = np.clip((dfield - dthr) * 10.0, 0, 1) * np.clip(sub * 1.5, 0, 1)
    dye_col = dye[None, None, :] * (0.75 + 0.45 * fib[..., None])
    img += (dye_col - img) * dmask[..., None]

    # coagulated (cautery) areas: dark brown with speckles
    cfield = fractal_noise(rng, size, 7, 3)
    cthr = np.quantile(cfield, 1.0 - p.cautery_frac)
    cmask = np.clip((cfield - cthr) * 6.0, 0, 1) * 0.85
    speck = (rng.random((h, w), dtype=np.float32) > 0.9).astype(np.float32)
    speck = cv2.GaussianBlur(speck, (0, 0), 0.7) * 2.5
    caut = np.array([105, 62, 50], np.float32) * (0.55 + 0.9 * speck)[..., None]
    img += (caut - img) * cmask[..., None]

    # vessels: dark red, more visible through thin mucosa
    ves = _vessels(rng, size, p.vessel_count * max(1, (w * h) // (512 * 384)))
    _blend(img, np.array([120, 30, 40], np.float32), 0.8 * ves)

    # folds and lumen shadows: low-frequency shading
    shade = 1.0 - p.shadow * (1.0 - fractal_noise(rng, size, 2, 2)) ** 1.5
    img *= shade[..., None]
    img[..., 1:] *= (0.85 + 0.3 * shade[..., None])  # shadows are redder (light through tissue)
    # wet highlights cluster on raised, shiny areas
    spec = _speculars(rng, size, int(w * h / 600)) * np.clip((fractal_noise(rng, size, 4, 2) - 0.55) * 5, 0, 1)
    img += (255.0 - img) * np.clip(spec * 1.3, 0, 1)[..., None]

    texture = np.clip(img, 0, 255).astype(np.uint8)
    return Tissue(texture=texture, height=relief.astype(np.float32), site=site)


def raise_white_mound(tissue: Tissue, center: np.ndarray, radius: float, submucosa: np.ndarray) -> None:
    """A mound of white submucosa around `center` (texture px), in place: the texture blended to
    the submucosa colour (its fibre texture kept as shading) and the relief lifted, so blood
    from a source on top runs down its sides."""
    h, w = tissue.height.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    d2 = ((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / radius ** 2
    bump = np.exp(-d2).astype(np.float32)
    img = tissue.texture.astype(np.float32)
    shade = img.mean(axis=2, keepdims=True) / max(1.0, float(img.mean()))
    white = np.clip(submucosa[None, None, :] * (0.75 + 0.25 * shade), 0, 255)
    alpha = np.clip(1.6 * bump, 0, 1)[..., None]
    tissue.texture[:] = np.clip(img + (white - img) * alpha, 0, 255).astype(np.uint8)
    tissue.height += 0.6 * bump
