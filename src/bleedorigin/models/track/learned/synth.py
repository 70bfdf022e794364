"""Training clips for the tracker with exact point tracks (our stand-in for Kubric).

Two sources:
- `moving_texture_clip`: a random texture (procedural noise/shapes or a BleedSim tissue) seen
  through a smooth random homography plus an animated elastic warp, with occluders shaped like
  blood pools, instruments and glare. Tracks are analytic; points under occluders or outside
  the view are invisible.
- `sim_track_clip`: a BleedSim tracking clip (bleedorigin.sim.generate_clip), cropped.
Then `photometric` applies the heavy appearance augmentation that lets a CPU-trained model
survive real endoscopes (blur, down/up-sampling like the 112 px ESD clips, colour, noise).
"""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.sim.tissue import SITES, render_tissue


def _noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    w, h = size
    g = rng.standard_normal((max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def random_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: tissue from BleedSim half of the time, else multi-scale coloured noise
    with random shapes and lines (textures unlike any one domain, so features stay generic)."""
    w, h = size
    if rng.random() < 0.5:
        return render_tissue(rng, SITES[int(rng.integers(len(SITES)))], size).texture.copy()
    f = sum(_noise(rng, size, c) * a for c, a in ((64, 1.0), (16, 0.6), (4, 0.35), (2, 0.2)))
    f = (f - f.mean()) / (f.std() + 1e-6)
    base = rng.uniform(60, 200, 3)
    tint = rng.uniform(-50, 50, 3)
    img = base + f[..., None] * tint + _noise(rng, size, 32)[..., None] * rng.uniform(-25, 25, 3)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(10, 60))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            ax = (int(rng.integers(2, 30)), int(rng.integers(2, 30)))
            cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            e = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, c, e, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 1.2)))


def _smooth_path(rng: np.random.Generator, n: int, amp: float) -> np.ndarray:
    """A smooth random 1-D trajectory (random velocity + low-frequency wander)."""
    v = rng.normal(0, amp)
    acc = np.cumsum(rng.normal(0, amp * 0.15, n))
    return np.cumsum(v + acc) - (v + acc[0])


def moving_texture_clip(rng: np.random.Generator, size: tuple[int, int], n: int, k: int,
                        speed: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frames (T, H, W, 3) uint8, tracks (T, K, 2) float32, visible (T, K) bool."""
    w, h = size
    tw, th = int(w * 2.2), int(h * 2.2)
    tex = random_texture(rng, (tw, th))
    s0 = rng.uniform(0.8, 1.3)
    ang0 = rng.uniform(-np.pi, np.pi)
    spd = speed * rng.uniform(0.2, 1.5)
    tx, ty = _smooth_path(rng, n, spd), _smooth_path(rng, n, spd)
    rot = _smooth_path(rng, n, 0.02 * rng.random())
    scl = np.exp(_smooth_path(rng, n, 0.015 * rng.random()))
    persp = rng.normal(0, 2e-4, 2)
    homs = []
    for t in range(n):
        a, s = ang0 + rot[t], s0 * scl[t]
        c, si = np.cos(a) * s, np.sin(a) * s
        # texture centre -> view centre, rotated/scaled, then translated along the path
        m = np.array([[c, -si, 0], [si, c, 0], [persp[0] * t / n, persp[1] * t / n, 1.0]])
        pre = np.array([[1, 0, -tw / 2], [0, 1, -th / 2], [0, 0, 1.0]])
        post = np.array([[1, 0, w / 2 + tx[t]], [0, 1, h / 2 + ty[t]], [0, 0, 1.0]])
        homs.append(post @ m @ pre)
    # elastic: view-space displacement D_t, smooth in space, drifting in time
    amp = rng.uniform(0, 5.0)
    cells = int(rng.integers(60, 160))
    d0 = [_noise(rng, (w, h), cells) * amp for _ in range(2)]
    d1 = [_noise(rng, (w, h), cells) * amp for _ in range(2)]
    pts_view0 = rng.uniform((4, 4), (w - 5, h - 5), (k, 2))
    uv = cv2.perspectiveTransform(pts_view0[None].astype(np.float64), np.linalg.inv(homs[0]))[0]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    frames = np.empty((n, h, w, 3), np.uint8)
    tracks = np.empty((n, k, 2), np.float32)
    for t in range(n):
        a = t / max(1, n - 1)
        dx, dy = (1 - a) * d0[0] + a * d1[0], (1 - a) * d0[1] + a * d1[1]
        # invert v = H(u) + D(H(u)) by two fixed-point steps on the view grid
        wx, wy = gx - dx, gy - dy
        for _ in range(1):
            wx = gx - cv2.remap(dx, wx, wy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            wy = gy - cv2.remap(dy, wx, wy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hi = np.linalg.inv(homs[t])
        den = hi[2, 0] * wx + hi[2, 1] * wy + hi[2, 2]
        mx = (hi[0, 0] * wx + hi[0, 1] * wy + hi[0, 2]) / den
        my = (hi[1, 0] * wx + hi[1, 1] * wy + hi[1, 2]) / den
        frames[t] = cv2.remap(tex, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
        p = cv2.perspectiveTransform(uv[None], homs[t])[0]
        xi, yi = np.clip(p[:, 0], 0, w - 1).astype(np.float32), np.clip(p[:, 1], 0, h - 1).astype(np.float32)
        ddx = cv2.remap(dx, xi[None], yi[None], cv2.INTER_LINEAR)[0]
        ddy = cv2.remap(dy, xi[None], yi[None], cv2.INTER_LINEAR)[0]
        tracks[t] = np.stack([p[:, 0] + ddx, p[:, 1] + ddy], -1)
    visible = inside(tracks, size)
    occ = add_occluders(rng, frames, tracks)
    return frames, tracks, visible & ~occ


def inside(tracks: np.ndarray, size: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    w, h = size
    x, y = tracks[..., 0], tracks[..., 1]
    return np.isfinite(x) & np.isfinite(y) & (x >= margin) & (y >= margin) & (x <= w - 1 - margin) & (y <= h - 1 - margin)


def add_occluders(rng: np.random.Generator, frames: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Draw 0-3 moving occluders (blood pool, instrument bar, glare) in place; (T, K) occluded."""
    n, h, w = frames.shape[:3]
    occ = np.zeros(tracks.shape[:2], bool)
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        kind = rng.choice(["blood", "instrument", "glare"])
        t0 = int(rng.integers(1, max(2, n - 1)))
        t1 = int(min(n, t0 + rng.integers(2, n)))
        c0 = rng.uniform((0, 0), (w, h))
        vel = rng.normal(0, 3, 2)
        colour = {"blood": rng.uniform((90, 0, 0), (190, 30, 35)), "glare": rng.uniform(235, 255, 3),
                  "instrument": np.full(3, rng.uniform(60, 200)) + rng.normal(0, 8, 3)}[kind]
        ang = float(rng.uniform(0, 180))
        ax = (rng.uniform(8, 40), rng.uniform(8, 40)) if kind != "instrument" else (rng.uniform(60, 200), rng.uniform(8, 20))
        grow = rng.uniform(1.0, 1.08) if kind == "blood" else 1.0
        for t in range(t0, t1):
            m = np.zeros((h, w), np.uint8)
            c = c0 + vel * (t - t0)
            g = grow ** (t - t0)
            cv2.ellipse(m, (int(c[0]), int(c[1])), (int(ax[0] * g), int(ax[1] * g)), ang, 0, 360, 255, -1)
            sel = m > 0
            if not sel.any():
                continue
            alpha = 0.95 if kind != "glare" else 0.9
            frames[t][sel] = (alpha * colour + (1 - alpha) * frames[t][sel]).astype(np.uint8)
            xi = np.clip(tracks[t, :, 0].round(), 0, w - 1).astype(int)
            yi = np.clip(tracks[t, :, 1].round(), 0, h - 1).astype(int)
            occ[t] |= sel[yi, xi]
    return occ


def photometric(rng: np.random.Generator, frames: np.ndarray) -> np.ndarray:
    """Clip-consistent appearance changes with slow drift; returns a new uint8 array."""
    n = len(frames)
    x = frames.astype(np.float32)
    gain = rng.uniform(0.6, 1.4, 3) * rng.uniform(0.7, 1.3)
    drift = np.linspace(0, 1, n)[:, None] * rng.normal(0, 0.1, 3)
    bias = rng.uniform(-30, 30)
    x = x * (gain + drift)[:, None, None, :] + bias
    if rng.random() < 0.5:
        x = 255 * (np.clip(x, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
    out = np.clip(x, 0, 255).astype(np.uint8)
    h, w = frames.shape[1:3]
    r = rng.random()
    if r < 0.35:  # low-resolution source upsampled (the ESD clips are 112 px)
        f = rng.uniform(1.5, 4.5)
        small = (max(8, int(w / f)), max(8, int(h / f)))
        out = np.stack([cv2.resize(cv2.resize(o, small, interpolation=cv2.INTER_AREA), (w, h),
                                   interpolation=cv2.INTER_CUBIC) for o in out])
    elif r < 0.65:
        s = rng.uniform(0.5, 2.0)
        out = np.stack([cv2.GaussianBlur(o, (0, 0), s) for o in out])
    if rng.random() < 0.2:  # motion blur on a few frames
        for t in rng.choice(n, size=max(1, n // 4), replace=False):
            kk = int(rng.integers(3, 9))
            ker = np.zeros((kk, kk), np.float32)
            ker[kk // 2] = 1.0 / kk
            rot = cv2.getRotationMatrix2D((kk / 2 - 0.5, kk / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
            ker = cv2.warpAffine(ker, rot, (kk, kk))
            out[t] = cv2.filter2D(out[t], -1, ker / max(ker.sum(), 1e-6))
    if rng.random() < 0.5:
        noise = rng.normal(0, rng.uniform(1, 8), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        q = int(rng.integers(30, 90))
        out = np.stack([cv2.imdecode(cv2.imencode(".jpg", o, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED)
                        for o in out])
    return out
