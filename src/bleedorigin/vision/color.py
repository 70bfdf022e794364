"""Colour cues for blood: HSV conversion and the Red-Mask (a soft per-pixel blood likelihood).

Blood in ESD video is saturated, dark-to-mid red: the red channel clearly dominates green and
blue. Pink/orange mucosa, white fibrous submucosa, blue-stained tissue and white glare all have
a weak red dominance, and the black field stop outside the cap has no light at all.
"""
from __future__ import annotations

import cv2
import numpy as np

BLOOD_THRESHOLD = 0.5  # red_mask value above which a pixel counts as blood
AREA_SIZE = (128, 96)  # blood-area ratios over time do not need full resolution


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


def blood_area(frame: np.ndarray) -> float:
    """Red-area ratio of a frame measured on an AREA_SIZE copy (cheap enough for every frame)."""
    return red_area_ratio(area_copy(frame))


def area_copy(frame: np.ndarray) -> np.ndarray:
    """The frame at AREA_SIZE, where blood areas and covers are measured."""
    return cv2.resize(frame, AREA_SIZE, interpolation=cv2.INTER_AREA)


def quiet_level(history) -> float:
    """Highest blood area still counted as "no bleeding yet", given areas of earlier frames:
    their median plus three robust standard deviations (at least 5e-4)."""
    h = np.asarray(history, np.float64)
    ref = float(np.median(h))
    return ref + max(3 * 1.4826 * float(np.median(np.abs(h - ref))), 5e-4)


def field_of_view(rgb: np.ndarray, dark: int = 20, margin: float = 0.02) -> np.ndarray:
    """Bool (H, W) mask of the lit image area: endoscope frames are framed by a black field stop
    (octagon or circle) where no bleeding source can be. Pixels brighter than `dark` (max over
    channels), smoothed, holes filled, then shrunk by `margin` of the image width. An all-dark
    frame gives an all-True mask (nothing to exclude by)."""
    # cv2.max: numpy's max over the interleaved channel axis costs ~25x more
    brightest = cv2.max(cv2.max(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    lit = cv2.GaussianBlur(brightest, (0, 0), 2.0) > dark
    lit = lit.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lit, connectivity=4)
    if count <= 1:
        return np.ones(rgb.shape[:2], bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    # fill holes (dark blood, shadows inside the view) by filling the outside from the border
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(region)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    r = max(1, int(round(margin * rgb.shape[1])))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    shrunk = cv2.erode(filled, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return shrunk.astype(bool) if shrunk.any() else filled.astype(bool)


# -- calibrated blood mask (real ESD frames; white-balance invariant) ----------------------------
# Constants read off real ESD blood (the shared clips) and real/simulated bleeding-free tissue.
# Blood absorbs green and blue strongly: both ratios G/R and B/R are far below those of the
# surrounding tissue, and, unlike orange mucosa or an orange cast, blue is not below green.
BLOOD_REL = 0.55        # blood G/R and B/R at most this share of the frame's tissue reference
BLOOD_REF_PCT = 75      # tissue reference: this percentile of log G/R and log B/R in the view
BLOOD_MAX_GR = 0.34     # and G/R at most this after white balance (pink/orange tissue is above)
BLOOD_MIN_BG = 0.85     # and B/G at least this after white balance (orange is below)
BLOOD_MIN_R = 40        # red level (0-255) below which a pixel is too dark to judge
BLOOD_MIN_REL_R = 0.4   # and red at least this share of the view's tissue red (75th percentile): lit
                        # fresh blood reflects red about as strongly as tissue; a dim dark-red organ
                        # (liver) or a red shadow is far below (dark pools: `dark_blood_mask`)


def highlight_white(rgb: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Per-channel gains (3,) that make the frame's unclipped highlights grey: wet tissue and
    blood reflect the light source, so the brightest unclipped 1 % of the view shows its
    colour (white-patch colour constancy). Gains of 1 when there is nothing to go by."""
    x = rgb.reshape(-1, 3)
    ok = view.reshape(-1) & (x.max(axis=1) < 250)
    if ok.sum() < 20:
        return np.ones(3, np.float32)
    lit = x[ok].astype(np.float32)
    lum = lit.sum(axis=1)
    light = lit[lum >= np.percentile(lum, 99)].mean(axis=0) + 1
    return (light.max() / light).astype(np.float32)


def blood_mask(rgb: np.ndarray, view: np.ndarray | None = None, gains: np.ndarray | None = None) -> np.ndarray:
    """Bool (H, W) mask of blood pixels, calibrated on real ESD frames (not used by the
    networks; their input stays `red_mask`).

    Blood is judged relative to the frame itself, so a white-balance shift (channel gains)
    cancels: a pixel is blood when its G/R and B/R are both below BLOOD_REL times the view's
    tissue reference, and, after the highlight white balance, G/R <= BLOOD_MAX_GR and
    B/G >= BLOOD_MIN_BG; its red must reach BLOOD_MIN_REL_R of the view's tissue red. A 3x3
    opening then drops thin structures (vessels, edges). `gains`: the frame's `highlight_white`,
    when already computed.
    """
    view = field_of_view(rgb) if view is None else view
    x = rgb.astype(np.float32) + 2
    lit = view & (x[..., 0] > BLOOD_MIN_R)
    if lit.sum() < 20:
        return np.zeros(rgb.shape[:2], bool)
    lg, lb = np.log(x[..., 1] / x[..., 0]), np.log(x[..., 2] / x[..., 0])
    ref_g, ref_b = np.percentile(lg[lit], BLOOD_REF_PCT), np.percentile(lb[lit], BLOOD_REF_PCT)
    y = x * (highlight_white(rgb, view) if gains is None else gains)
    rel = np.log(BLOOD_REL)
    bright = x[..., 0] >= BLOOD_MIN_REL_R * np.percentile(x[..., 0][view], 75)
    mask = (lit & bright & (lg < ref_g + rel) & (lb < ref_b + rel)
            & (y[..., 1] <= BLOOD_MAX_GR * y[..., 0]) & (y[..., 2] >= BLOOD_MIN_BG * y[..., 1]))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return opened.astype(bool)


# -- dark blood (near-black maroon pools) -------------------------------------------------------
# A thick pool of blood absorbs nearly all green and blue light and much of the red: what the
# camera sees is a dark surface whose wet top reflects the (white) light source, so the pixel is
# dark, red-tinted and LESS saturated than the lit tissue around it. A shadow in a red cavity is
# the opposite: lit by light bounced off red tissue, it is darker and MORE saturated than the tissue.
# Constants read off the shared real clips (ESD camera_010 / instrument_004 pools against the
# VL-SurgPT shadows and instruments): docs/onset.md.
DARK_MAX_R = 0.5        # dark: red level at most this share of the view's tissue red (75th percentile)
DARK_MIN_R = 0.2        # but above this share (unlit gaps, the field stop's edge)
DARK_DESAT = 0.15       # log G/R at least this above the view's median (less saturated than tissue)
DARK_MAX_GR = 0.95      # after the highlight white balance still red-tinted (grey metal and char are not)
DARK_MIN_BG = 0.9       # and blue not below green (brown, orange and charred tissue are below)
DARK_EDGE = 0.03        # away from the rim of the view (vignetting, cap ring): share of the image width
DARK_MIN_AREA = 0.01    # a pool, not a speck: connected region of at least this share of the view
DARK_BASIN = 1.15       # a pool is darker than the lit tissue around it: ring red / pool red at least this
DARK_RING = 0.03        # width of that ring around a region: share of the image width


def dark_blood_mask(rgb: np.ndarray, view: np.ndarray | None = None,
                    gains: np.ndarray | None = None) -> np.ndarray:
    """Bool (H, W) mask of dark (near-black maroon) blood pools, the blood `blood_mask` misses.

    A pixel qualifies when, inside the lit view and at least DARK_EDGE of the width from its rim:
    its red is between DARK_MIN_R and DARK_MAX_R times the view's tissue red; its G/R is at least
    exp(DARK_DESAT) times the view's median G/R (desaturated, unlike red shadows and dark-red
    organs); and after the highlight white balance G/R <= DARK_MAX_GR and B/G >= DARK_MIN_BG
    (red-tinted, not grey, brown or orange). Ratios to the frame's own statistics make the test
    white-balance invariant. Colours are read on a 3x3 average (dark pixels are noisy); a 3x3
    opening drops thin structures. A connected region is kept when it covers at least
    DARK_MIN_AREA of the view and is a basin: the median red of a ring around it (DARK_RING of
    the width, inside the view) is at least DARK_BASIN times its own, as for a pool lying on lit
    tissue (a dark instrument over a darker organ is not). `view` defaults to `field_of_view(rgb)`.
    """
    view = field_of_view(rgb) if view is None else view
    if view.sum() < 20:
        return np.zeros(rgb.shape[:2], bool)
    # the colour of a dark pixel is mostly sensor and codec noise: judge it on a 3x3 average
    x = cv2.blur(rgb.astype(np.float32), (3, 3)) + 2
    r = x[..., 0]
    ref_r = np.percentile(r[view], 75)
    lg = np.log(x[..., 1] / r)
    y = x * (highlight_white(rgb, view) if gains is None else gains)
    width = rgb.shape[1]
    rim = cv2.distanceTransform(view.astype(np.uint8), cv2.DIST_L2, 3) >= DARK_EDGE * width
    mask = (rim & (r <= DARK_MAX_R * ref_r) & (r >= DARK_MIN_R * ref_r)
            & (lg >= np.median(lg[view]) + DARK_DESAT)
            & (y[..., 1] <= DARK_MAX_GR * y[..., 0]) & (y[..., 2] >= DARK_MIN_BG * y[..., 1]))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    ring_px = max(1, int(round(DARK_RING * width)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_px + 1, 2 * ring_px + 1))
    out = np.zeros(rgb.shape[:2], bool)
    for k in range(1, count):
        if stats[k, cv2.CC_STAT_AREA] < DARK_MIN_AREA * view.sum():
            continue
        region = labels == k
        ring = cv2.dilate(region.astype(np.uint8), disk).astype(bool) & ~region & view
        if ring.any() and np.median(r[ring]) >= DARK_BASIN * np.median(r[region]):
            out |= region
    return out


def blood_cover(small: np.ndarray, dark: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(blood, lit view) bool masks of a frame already at AREA_SIZE: `blood_mask`, or with
    `dark` also `dark_blood_mask`."""
    view = field_of_view(small)
    gains = highlight_white(small, view)  # shared by both masks
    blood = blood_mask(small, view, gains)
    if dark:
        blood |= dark_blood_mask(small, view, gains)
    return blood, view


def blood_presence(frame: np.ndarray, dark: bool = True) -> float:
    """Share of the lit view covered by `blood_cover`, on an AREA_SIZE copy of the frame."""
    return view_share(*blood_cover(area_copy(frame), dark))


def view_share(mask: np.ndarray, view: np.ndarray) -> float:
    """Share of the lit view that `mask` covers (0 for an empty view)."""
    return float((mask & view).sum() / max(1, view.sum()))
