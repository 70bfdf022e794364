"""Evidence for the bleeding source that does not depend on how BleedSim looks.

Each map is (h, w) float32 at the working resolution of the frame it is given:
- `support_map`: where a source can be at all (1) or cannot (0): outside the lit field of view,
  on specular glare, and (softly) on grey, unsaturated surfaces (the cap's rim, instruments,
  water jets, smoke);
- `rim_prior`: a geometric prior that falls to zero at the edge of the field of view (the source
  is rarely at the rim, where the cap and vignetting sit);
- `centre_prior`: a broad Gaussian around the centre of the field of view (endoscopists keep
  the working area in the middle of the view), or around a place below it (the working
  channel's side, `shift`); its log and its centre;
- `growth_map`: where blood keeps appearing over earlier frames once camera motion is removed:
  the pixels that turned red earliest among those that were not red in the oldest frame;
- `flow_map`: the upstream end of the flow of blood: the positive divergence of the dense flow
  of the red region over the latest frames, after removing the camera's motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.vision.color import field_of_view, red_mask, rgb_to_hsv
from bleedorigin.vision.flow import dis_flow, fit_similarity, to_gray


@dataclass(frozen=True)
class EvidenceConfig:
    rim_fraction: float = 0.25       # prior ramps from 0 at the field-stop edge to 1 this far in (share of the inscribed radius)
    glare_value: float = 0.85        # HSV value above which an unsaturated pixel is glare
    glare_saturation: float = 0.3
    glare_grow: int = 2              # px at the working resolution; glare halos are not sources either
    grey_saturation: float = 0.25    # below this saturation a surface counts as grey
    grey_floor: float = 0.3          # support left on a fully grey surface (wet tissue can be pale)
    history_samples: int = 8         # earlier frames aligned and compared (evenly spaced over the history)
    growth_sigma: float = 3.0        # px, smoothing of the growth map
    flow_pairs: int = 6              # latest consecutive frame pairs whose blood flow is measured
    flow_sigma: float = 3.0          # px, smoothing of the flow before its divergence and of the map


def support_map(rgb: np.ndarray, cfg: EvidenceConfig = EvidenceConfig(),
                fov: np.ndarray | None = None) -> np.ndarray:
    """1 where a bleeding source may be, 0 where it cannot, in between on grey surfaces."""
    fov = field_of_view(rgb) if fov is None else fov
    hsv = rgb_to_hsv(rgb)
    sat, val = hsv[..., 1], hsv[..., 2]
    glare = ((val > cfg.glare_value) & (sat < cfg.glare_saturation)).astype(np.uint8)
    if cfg.glare_grow > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.glare_grow + 1,) * 2)
        glare = cv2.dilate(glare, k)
    # saturation smoothed so only grey *surfaces* count, not single pale pixels
    sat = cv2.GaussianBlur(sat, (0, 0), 2.0)
    grey = np.clip(sat / cfg.grey_saturation, 0, 1)
    support = cfg.grey_floor + (1 - cfg.grey_floor) * grey
    return (support * fov * (1 - glare)).astype(np.float32)


def rim_prior(fov: np.ndarray, rim_fraction: float) -> np.ndarray:
    """0 at the field-of-view edge rising linearly to 1 at `rim_fraction` of its inscribed radius."""
    inside = np.pad(fov.astype(np.uint8), 1)  # the image border is an edge too
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)[1:-1, 1:-1]
    radius = float(dist.max())
    if radius <= 0 or rim_fraction <= 0:
        return fov.astype(np.float32)
    return np.clip(dist / (rim_fraction * radius), 0, 1).astype(np.float32)


def centre_prior(fov: np.ndarray, sigma: float, shift: float = 0.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Log of a Gaussian (h, w) around the centroid of the field of view moved down by `shift`
    times the view's equivalent radius (sqrt(area / pi)), its standard deviation `sigma` times
    that radius, and its centre (x, y)."""
    h, w = fov.shape
    ys, xs = np.nonzero(fov)
    if len(xs) == 0:
        ys, xs = np.mgrid[:h, :w].reshape(2, -1)
    radius = float(np.sqrt(len(xs) / np.pi))
    cx, cy = float(xs.mean()), float(ys.mean()) + shift * radius
    if sigma <= 0:
        return np.zeros((h, w), np.float32), (cx, cy)
    s = sigma * radius
    yy, xx = np.mgrid[:h, :w]
    return (-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)).astype(np.float32), (cx, cy)


def camera_motion(flow: np.ndarray, static: np.ndarray) -> np.ndarray | None:
    """2x3 similarity that best explains the flow field (per pixel, frame A -> frame B) on the
    pixels in `static` (not blood: blood flows, the tissue carries the camera's motion), fitted
    with RANSAC. None when too few pixels agree."""
    ys, xs = np.nonzero(static[::4, ::4])
    if len(xs) < 12:
        return None
    xs, ys = xs * 4, ys * 4
    return fit_similarity(np.stack([xs, ys], 1), flow[ys, xs], 2.0, min_inliers=8)


def align_to(moving: np.ndarray, target_gray: np.ndarray, flow: cv2.DISOpticalFlow,
             static: np.ndarray) -> np.ndarray | None:
    """2x3 similarity taking `moving` to the current frame (None when too few pixels agree)."""
    f = flow.calc(target_gray, to_gray(moving), None)  # current -> earlier, per current pixel
    m = camera_motion(f, static)
    return None if m is None else cv2.invertAffineTransform(m)


def warp_aligned(img: np.ndarray, m: np.ndarray, size: tuple[int, int], outside: float = 0.0) -> np.ndarray:
    """`img` of an earlier frame moved onto the current one by `align_to`'s transform `m`
    (bilinear; `outside` where the earlier frame did not see)."""
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)


def growth_map(rgb: np.ndarray, history: list[np.ndarray], cfg: EvidenceConfig = EvidenceConfig(),
               fov: np.ndarray | None = None) -> np.ndarray | None:
    """Where blood kept appearing: how much redder than in the oldest aligned earlier frame a
    pixel is now, times how much redder it already was on average over the sampled frames in
    between (the place blood appeared first and kept coming scores highest). None without usable history. Frames in `history` must have
    `rgb`'s size (oldest first)."""
    if not history:
        return None
    h, w = rgb.shape[:2]
    idx = np.unique(np.linspace(0, len(history) - 1, min(cfg.history_samples, len(history))).round().astype(int))
    gray = to_gray(rgb)
    red_now = red_mask(rgb)
    fov = field_of_view(rgb) if fov is None else fov
    static = fov & (red_now < 0.2)
    flow = dis_flow("ultrafast")
    warped = []
    for k in idx:
        frame = history[k]
        if frame.shape != rgb.shape:
            return None
        m = align_to(frame, gray, flow, static)
        if m is None:
            continue
        warped.append(warp_aligned(red_mask(frame), m, (w, h), outside=1.0))
    if len(warped) < 2:
        return None
    oldest = warped[0]
    fresh = np.clip(red_now - oldest, 0, 1)  # redder now than in the oldest frame
    early = np.mean([np.clip(r - oldest, 0, 1) for r in warped[1:]], axis=0)  # and already in between
    g = cv2.GaussianBlur((fresh * early).astype(np.float32), (0, 0), cfg.growth_sigma)
    return (g * fov).astype(np.float32)


def flow_map(rgb: np.ndarray, history: list[np.ndarray], cfg: EvidenceConfig = EvidenceConfig(),
             fov: np.ndarray | None = None) -> np.ndarray | None:
    """Where blood flows out from: over the latest `flow_pairs` consecutive frame pairs, the DIS
    flow minus the camera's motion (a similarity fitted on non-blood pixels), smoothed, its
    divergence weighted by the Red-Mask of the earlier frame (blood that spreads out from a
    place), positive part, averaged and smoothed. Pairs are a frame apart, so each pair's map is
    taken in place without re-alignment. None without usable history."""
    frames = [f for f in history[-cfg.flow_pairs:] if f.shape == rgb.shape] + [rgb]
    if len(frames) < 2:
        return None
    fov = field_of_view(rgb) if fov is None else fov
    h, w = rgb.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    flow = dis_flow("ultrafast")
    total, used = np.zeros((h, w), np.float32), 0
    gray = [to_gray(f) for f in frames]
    for k in range(len(frames) - 1):
        f = flow.calc(gray[k], gray[k + 1], None)
        red = red_mask(frames[k])
        m = camera_motion(f, fov & (red < 0.2))
        if m is None:
            continue
        own = f - (grid @ m[:, :2].T + m[:, 2] - grid)  # the camera's motion removed
        own = cv2.GaussianBlur(own, (0, 0), cfg.flow_sigma)
        div = np.gradient(own[..., 0], axis=1) + np.gradient(own[..., 1], axis=0)
        total += np.clip(div, 0, None) * red
        used += 1
    if used == 0:
        return None
    g = cv2.GaussianBlur(total / used, (0, 0), cfg.flow_sigma)
    return (g * fov).astype(np.float32)
