"""Cues for the bleeding source from how bleeding looks and moves (docs/source.md, "Cues").

Each cue is one function of the frame at the working resolution (and, for the history cues,
earlier frames of the same size, oldest first) returning a map (h, w) float32 >= 0 whose
largest value is where the cue places the source, or None when it has nothing to say (no blood,
no usable history). None of them uses a colour constant of its own: blood is the Red-Mask
(`vision.color.red_mask`, the paper's), everything else is geometry and motion.

- `streak_map`: where elongated red structures (streaks, fans) point to: every pixel on a
  thin red ridge votes along its streak's axis, and the votes are read where they cross;
- `outflow_map`: where the blood's own motion comes from: over consecutive history pairs, each
  moving blood pixel votes backwards along its flow (camera motion removed);
- `refill_map`: where blood is when little blood is in view: aligned history frames weighted by
  how little red they hold (after a flush, or as a bleed starts, only the source is red);
- `stump_map`: small dark spots (vessel stumps) in or at the edge of blood: a scale-normalised
  dark-blob response (Hessian) of the grey image, near the Red-Mask;
- `persistent_stump_map`: the stump map of the current frame and of earlier ones aligned to it
  (camera motion removed), combined so that only a spot present on the same tissue point in
  every frame keeps its score (a stump stays; specks, glare and blood edges move or vanish).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.models.source.evidence import align_to, camera_motion, warp_aligned
from bleedorigin.vision.color import red_mask
from bleedorigin.vision.flow import dis_flow, to_gray


@dataclass(frozen=True)
class CueConfig:
    streak_sigma: float = 2.0      # px, Hessian scale of the Red-Mask: half a streak's width
    streak_reach: float = 0.35     # share of the working width a streak's axis votes along
    streak_points: int = 600       # most coherent edge pixels that vote
    outflow_pairs: int = 8         # latest consecutive history pairs whose blood flow votes
    outflow_reach: float = 0.25    # share of the working width a moving pixel votes back along
    outflow_min: float = 0.3       # px per frame of own motion below which a pixel does not vote
    refill_samples: int = 12       # aligned history frames (evenly spaced) of the refill cue
    stump_sigma: float = 2.0       # px, scale of a vessel stump at the working resolution
    near_blood: float = 4.0        # px, how far from blood a stump may be (Red-Mask blurred this much)
    stump_history: int = 0         # history frames (evenly spaced) whose aligned stump maps are combined; 0: none
    stump_floor: float = 0.05      # share of a frame's peak a spot absent from that frame still keeps
    stump_grow: int = 4            # px, the aligned history maps grown by this much (the alignment's residual)
    vote_sigma: float = 2.0        # px, smoothing of every vote accumulator


def _votes(h: int, w: int, xs: np.ndarray, ys: np.ndarray, wt: np.ndarray, sigma: float) -> np.ndarray:
    """Accumulate weighted votes at float positions, dropping those outside, smoothed."""
    xi, yi = np.rint(xs).astype(int), np.rint(ys).astype(int)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    acc = np.zeros(h * w, np.float64)
    np.add.at(acc, yi[ok] * w + xi[ok], wt[ok])
    return cv2.GaussianBlur(acc.reshape(h, w).astype(np.float32), (0, 0), sigma)


def _rays(x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray, wt: np.ndarray, reach: float,
          both: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every 1 px along rays from (x, y) in direction (dx, dy) (unit), up to `reach` px,
    backwards as well when `both`; weights spread evenly over each ray's points."""
    steps = np.arange(1, max(2, int(reach)) + 1, dtype=np.float32)
    if both:
        steps = np.concatenate([steps, -steps])
    px = x[:, None] + dx[:, None] * steps[None]
    py = y[:, None] + dy[:, None] * steps[None]
    pw = np.repeat((wt / len(steps))[:, None], len(steps), 1)
    return px.ravel(), py.ravel(), pw.ravel()


def hessian(img: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale-normalised Hessian eigenvalues (l1 >= l2) of `img` smoothed at `sigma`, and the unit
    eigenvector (ex, ey) of l2 (across a bright ridge, whose l2 is strongly negative)."""
    g = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigma)
    dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3) * sigma ** 2
    dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3) * sigma ** 2
    dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3) * sigma ** 2
    half = 0.5 * (dxx + dyy)
    root = np.sqrt((0.5 * (dxx - dyy)) ** 2 + dxy ** 2)
    l1, l2 = half + root, half - root
    theta = 0.5 * np.arctan2(2 * dxy, dxx - dyy) + np.pi / 2  # direction of l2
    return l1, l2, np.cos(theta), np.sin(theta)


def inner(fov: np.ndarray, px: int) -> np.ndarray:
    """The field of view shrunk by `px` (its edge, the field stop, is a strong edge of its own)."""
    return cv2.erode(fov.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)) > 0


def streak_map(rgb: np.ndarray, fov: np.ndarray, cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """Where streaks and fans of blood converge: the Hessian of the Red-Mask gives every pixel
    on a thin red ridge (a streak: strongly curved across, flat along) its axis; the strongest
    ridge pixels vote along their axis both ways, and the place where many axes cross scores
    highest. The axes of one straight streak lie on one line and add up along it; the axes of a
    fan, or of streaks running off one point, cross at that point. Kept where blood is near (a
    source is in or at blood)."""
    h, w = fov.shape
    red = red_mask(rgb) * fov
    if red.max() < 0.1:
        return None
    l1, l2, ex, ey = hessian(red, cfg.streak_sigma)
    ridge = np.clip(-l2 - np.abs(l1), 0, None) * inner(fov, 6)
    flat = ridge.ravel()
    k = min(cfg.streak_points, int((flat > 1e-4).sum()))
    if k < 5:
        return None
    idx = np.argpartition(flat, -k)[-k:]
    ys, xs = np.divmod(idx, w)
    ax, ay = -ey.ravel()[idx], ex.ravel()[idx]  # along the ridge: perpendicular to l2's direction
    px, py, pw = _rays(xs.astype(np.float32), ys.astype(np.float32), ax, ay, flat[idx], cfg.streak_reach * w,
                       both=True)
    acc = _votes(h, w, px, py, pw, cfg.vote_sigma)
    near = cv2.GaussianBlur(red, (0, 0), cfg.near_blood)
    out = acc * np.clip(near / max(float(near.max()), 1e-6), 0, 1) * fov
    return out.astype(np.float32) if out.max() > 0 else None


def outflow_map(rgb: np.ndarray, history: list[np.ndarray], fov: np.ndarray,
                cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """Where the blood's own flow comes from: over the latest `outflow_pairs` consecutive frame
    pairs, DIS flow minus the camera's motion (a similarity fitted on non-blood pixels); every
    blood pixel moving faster than `outflow_min` votes along the ray opposite to its motion,
    weighted by its speed and redness. Blood flows away from its source, so the rays of a
    spreading pool or of streaming blood cross upstream, at the source."""
    frames = [f for f in history[-cfg.outflow_pairs:] if f.shape == rgb.shape] + [rgb]
    if len(frames) < 2:
        return None
    h, w = fov.shape
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    flow = dis_flow("ultrafast")
    gray = [to_gray(f) for f in frames]
    xs_all, ys_all, ws_all = [], [], []
    for k in range(len(frames) - 1):
        f = flow.calc(gray[k], gray[k + 1], None)
        red = red_mask(frames[k]) * fov
        m = camera_motion(f, fov & (red < 0.2))
        if m is None:
            continue
        own = f - (grid @ m[:, :2].T + m[:, 2] - grid)
        own = cv2.GaussianBlur(own, (0, 0), 1.5)
        blood = red > 0.3
        if blood.sum() < 10:
            continue
        own = own - np.median(own[blood], axis=0)  # a pool that slides as a whole does not flow out
        speed = np.linalg.norm(own, axis=2)
        moving = (speed > cfg.outflow_min) & blood
        ys, xs = np.nonzero(moving[::2, ::2])
        ys, xs = ys * 2, xs * 2
        if len(xs) == 0:
            continue
        v = own[ys, xs] / speed[ys, xs, None]
        px, py, pw = _rays(xs.astype(np.float32), ys.astype(np.float32), -v[:, 0], -v[:, 1],
                           speed[ys, xs] * red[ys, xs], cfg.outflow_reach * w, both=False)
        xs_all.append(px), ys_all.append(py), ws_all.append(pw)
    if not xs_all:
        return None
    acc = _votes(h, w, np.concatenate(xs_all), np.concatenate(ys_all), np.concatenate(ws_all), cfg.vote_sigma)
    out = acc * fov
    return out.astype(np.float32) if out.max() > 0 else None


def refill_map(rgb: np.ndarray, history: list[np.ndarray], fov: np.ndarray,
               cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """Where blood is while little blood is in view: up to `refill_samples` history frames
    (evenly spaced) and the current one, aligned to the current frame by a similarity fitted to
    the DIS flow of non-blood pixels; each frame's Red-Mask weighted by 1 - its red share / the
    largest red share among them. After a flush, or as a bleed begins, the source is the
    first place red again; the frame with the most blood counts nothing."""
    if not history:
        return None
    h, w = fov.shape
    idx = np.unique(np.linspace(0, len(history) - 1, min(cfg.refill_samples, len(history))).round().astype(int))
    red_now = red_mask(rgb) * fov
    gray = to_gray(rgb)
    static = fov & (red_now < 0.2)
    flow = dis_flow("ultrafast")
    reds = [red_now]
    for k in idx:
        frame = history[k]
        if frame.shape != rgb.shape:
            continue
        m = align_to(frame, gray, flow, static)
        if m is None:
            continue
        reds.append(warp_aligned(red_mask(frame), m, (w, h)) * fov)
    if len(reds) < 3:
        return None
    share = np.array([float(r.mean()) for r in reds])
    if share.max() <= 1e-4:
        return None
    wt = 1 - share / share.max()
    if wt.sum() <= 1e-6:
        return None
    acc = sum(float(a) * r for a, r in zip(wt, reds)) / float(wt.sum())
    acc = cv2.GaussianBlur(acc.astype(np.float32), (0, 0), cfg.vote_sigma) * fov
    return acc.astype(np.float32) if acc.max() > 0 else None


def near_blood(rgb: np.ndarray, fov: np.ndarray, cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """How near blood each pixel is, 0 to 1: the Red-Mask blurred over `near_blood` px, divided by
    its peak (None when there is no blood)."""
    near = cv2.GaussianBlur(red_mask(rgb) * fov, (0, 0), cfg.near_blood)
    if near.max() < 0.05:
        return None
    return np.clip(near / float(near.max()), 0, 1)


def stump_map(rgb: np.ndarray, fov: np.ndarray, cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """Small dark spots in or at the edge of blood (a vessel stump is a dark dot a few px wide):
    the smaller scale-normalised Hessian eigenvalue of the grey image at `stump_sigma`, positive
    only at a spot darker than its surround in every direction (an edge or a dark line has one
    eigenvalue near 0), relative to the local brightness (a dim part of the view does not win),
    times how near blood is (`near_blood`)."""
    near = near_blood(rgb, fov, cfg)
    return None if near is None else _stump_near(rgb, near, fov, cfg)


def _stump_near(rgb: np.ndarray, near: np.ndarray, fov: np.ndarray, cfg: CueConfig) -> np.ndarray | None:
    """`stump_map` given the frame's near-blood map (the persistent cue needs that map too)."""
    gray = to_gray(rgb).astype(np.float32) / 255
    l1, l2, _, _ = hessian(gray, cfg.stump_sigma)
    local = cv2.GaussianBlur(gray, (0, 0), 4 * cfg.stump_sigma) + 0.05
    spot = np.clip(l2, 0, None) / local
    out = spot * near * inner(fov, 2)
    out = cv2.GaussianBlur(out.astype(np.float32), (0, 0), 1.0)
    return out if out.max() > 0 else None


def persistent_stump_map(rgb: np.ndarray, history: list[np.ndarray], fov: np.ndarray,
                         cfg: CueConfig = CueConfig()) -> np.ndarray | None:
    """A vessel stump stays on the same tissue point while specks, glare and blood edges move or
    vanish: the stump maps of up to `stump_history` history frames (evenly spaced) and of the
    current frame, each aligned to the current frame (`align_to`, the similarity of the refill
    and growth maps), divided by its own peak and grown by `stump_grow` px (the alignment's
    residual), combined by their geometric mean with a floor, each history frame weighted per
    pixel by how near blood it was there (a frame from before blood reached a place says nothing
    about it): exp(sum_k w_k log(map_k + floor) / sum_k w_k) - floor, the current frame's w = 1.
    A spot missing from a frame that had blood there loses most of its score; without usable
    history it is the current frame's map (divided by its peak). None when the current frame
    has no stump."""
    now = stump_map(rgb, fov, cfg)
    if now is None:
        return None
    f = cfg.stump_floor
    total = np.log(now / float(now.max()) + f)
    weight = np.ones_like(total)
    if history and cfg.stump_history > 0:
        h, w = fov.shape
        idx = np.unique(np.linspace(0, len(history) - 1, min(cfg.stump_history, len(history))).round().astype(int))
        gray, flow = to_gray(rgb), dis_flow("ultrafast")
        static = fov & (red_mask(rgb) < 0.2)
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.stump_grow + 1,) * 2)
        for k in idx:
            frame = history[k]
            near = None if frame.shape != rgb.shape else near_blood(frame, fov, cfg)
            m = None if near is None else _stump_near(frame, near, fov, cfg)
            a = None if m is None else align_to(frame, gray, flow, static)
            if a is None:  # no stump in that frame (no blood) or no alignment: it does not vote
                continue
            near = cv2.dilate(warp_aligned(near, a, (w, h)), grow)
            total += near * np.log(cv2.dilate(warp_aligned(m / float(m.max()), a, (w, h)), grow) + f)
            weight += near
    out = np.clip(np.exp(total / weight) - f, 0, None).astype(np.float32) * fov
    return out if out.max() > 0 else None
