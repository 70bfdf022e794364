"""Camera motion and tissue deformation as one per-frame backward map (view pixel -> texture).

The rendered frame is `cv2.remap(texture, map)`, and ground-truth points are mapped by inverting
that *same* map (Newton on its bilinear interpolant), so a mark painted in the texture lands on
its truth in the frame, whatever the homography, jitter and elastic field.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GRID_STEP = 16  # px between nodes of the low-res map; the full map is its bilinear upsample


@dataclass
class MotionParams:
    drift: float = 40.0        # px, amplitude of smooth translation
    rotation: float = 0.08     # rad, amplitude of smooth roll
    zoom: float = 0.08         # relative amplitude of zoom
    perspective: float = 4e-5  # amplitude of the projective terms
    jitter: float = 0.0        # px, high-frequency shake (camera_jitter scenario)
    elastic: float = 4.0       # px, amplitude of tissue deformation
    speed: float = 1.0         # time scale of all smooth motions


def _smooth_series(rng: np.random.Generator, t: np.ndarray, amp: float, speed: float) -> np.ndarray:
    """Sum of three sinusoids of random low frequency/phase: smooth, bounded by ~amp."""
    out = np.zeros_like(t, dtype=np.float64)
    for k in range(3):
        f = rng.uniform(0.002, 0.012) * speed * (k + 1)
        out += rng.uniform(0.3, 1.0) / (k + 1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return amp * out / 1.6


def _jitter_series(rng: np.random.Generator, n: int, amp: float) -> np.ndarray:
    """Shake: white noise lightly smoothed, in bursts (the scope is bumped, then steadied)."""
    if amp <= 0:
        return np.zeros(n)
    x = rng.normal(0, 1, n + 4)
    x = np.convolve(x, [0.25, 0.5, 0.25], mode="same")[2:n + 2]
    env = np.clip(_smooth_series(rng, np.arange(n, dtype=np.float64), 1.0, 4.0) + 0.6, 0.15, 1.2)
    return amp * x * env


def camera_path(rng: np.random.Generator, n: int, view: tuple[int, int], tex: tuple[int, int],
                m: MotionParams) -> np.ndarray:
    """(n, 3, 3) homographies texture -> view: the view centre wanders over the texture centre."""
    w, h = view
    t = np.arange(n, dtype=np.float64)
    cx = tex[0] / 2 + _smooth_series(rng, t, m.drift, m.speed) + _jitter_series(rng, n, m.jitter)
    cy = tex[1] / 2 + _smooth_series(rng, t, m.drift * 0.75, m.speed) + _jitter_series(rng, n, m.jitter)
    ang = rng.uniform(-0.4, 0.4) + _smooth_series(rng, t, m.rotation, m.speed) \
        + _jitter_series(rng, n, m.jitter * 0.003)
    zoom = np.exp(_smooth_series(rng, t, m.zoom, m.speed))
    px = _smooth_series(rng, t, m.perspective, m.speed)
    py = _smooth_series(rng, t, m.perspective, m.speed)
    out = np.empty((n, 3, 3))
    for i in range(n):
        c, s = np.cos(ang[i]) * zoom[i], np.sin(ang[i]) * zoom[i]
        to_origin = np.array([[1, 0, -cx[i]], [0, 1, -cy[i]], [0, 0, 1.0]])
        rs = np.array([[c, -s, 0], [s, c, 0], [px[i], py[i], 1.0]])
        to_view = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
        out[i] = to_view @ rs @ to_origin
    return out


class ElasticField:
    """Smooth tissue deformation: a few control nodes oscillating slowly (breathing, pulling)."""

    def __init__(self, rng: np.random.Generator, grid: tuple[int, int], amp: float, speed: float):
        self.grid = grid  # (gw, gh) of the map grid
        self.amp = amp
        self.nodes = (4, 3)
        k = self.nodes[0] * self.nodes[1] * 2
        self.freq = rng.uniform(0.005, 0.03, (2, k)) * speed
        self.phase = rng.uniform(0, 2 * np.pi, (2, k))
        self.weight = rng.uniform(0.3, 1.0, (2, k))

    def at(self, t: int) -> np.ndarray:
        """(gh, gw, 2) displacement in texture pixels at frame t."""
        if self.amp <= 0:
            return np.zeros((self.grid[1], self.grid[0], 2), np.float32)
        v = (self.weight * np.sin(2 * np.pi * self.freq * t + self.phase)).sum(0) / 1.3
        small = (self.amp * v).reshape(self.nodes[1], self.nodes[0], 2).astype(np.float32)
        return cv2.resize(small, self.grid, interpolation=cv2.INTER_CUBIC)


class ViewWarp:
    """Builds the backward map of each frame and maps texture points into the frame."""

    def __init__(self, view: tuple[int, int]):
        w, h = view
        self.view = view
        self.gw, self.gh = -(-w // GRID_STEP) + 1, -(-h // GRID_STEP) + 1
        # node positions follow cv2.resize's half-pixel convention so the upsample is exact
        gx = (np.arange(self.gw) + 0.5) * w / self.gw - 0.5
        gy = (np.arange(self.gh) + 0.5) * h / self.gh - 0.5
        xx, yy = np.meshgrid(gx, gy)
        self.nodes = np.stack([xx, yy, np.ones_like(xx)], -1)  # (gh, gw, 3)

    def frame_map(self, h_tex_to_view: np.ndarray, disp: np.ndarray) -> np.ndarray:
        """(gh, gw, 2) float32 texture coordinates at the map nodes. The frame's map at any
        resolution is `cv2.resize(nodes, size, INTER_LINEAR)`: resize samples one and the same
        bilinear function at that size's pixel centres, which is what `sample` evaluates."""
        hinv = np.linalg.inv(h_tex_to_view)
        p = self.nodes @ hinv.T
        return (p[..., :2] / p[..., 2:3]).astype(np.float32) + disp

    def displaced(self, low: np.ndarray, hinv: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """The map `low` after the tissue seen at node v moved to v + shift(v) in the view:
        node v now shows what `low` showed at v - shift(v). `shift` (gh, gw, 2) in view px."""
        src = (self.nodes[..., :2] - shift).reshape(-1, 2)
        return self.sample(low, hinv, src).reshape(low.shape).astype(np.float32)

    def sample(self, low: np.ndarray, hinv: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Texture coordinates of view points (the map's bilinear function, cv2.resize
        convention); outside the frame it is extended by the homography."""
        w, h = self.view
        cx = np.clip(xy[:, 0], 0.0, w - 1.0)
        cy = np.clip(xy[:, 1], 0.0, h - 1.0)
        gx = np.clip((cx + 0.5) * self.gw / w - 0.5, 0, self.gw - 1.0001)
        gy = np.clip((cy + 0.5) * self.gh / h - 0.5, 0, self.gh - 1.0001)
        x0, y0 = gx.astype(int), gy.astype(int)
        fx, fy = (gx - x0)[:, None], (gy - y0)[:, None]
        out = (low[y0, x0] * (1 - fx) * (1 - fy) + low[y0, x0 + 1] * fx * (1 - fy)
               + low[y0 + 1, x0] * (1 - fx) * fy + low[y0 + 1, x0 + 1] * fx * fy).astype(np.float64)
        outside = (cx != xy[:, 0]) | (cy != xy[:, 1])
        if outside.any():
            out[outside] += _apply_h(hinv, xy[outside]) - _apply_h(hinv, np.stack([cx, cy], 1)[outside])
        return out

    def to_view(self, low: np.ndarray, h_tex_to_view: np.ndarray, pts_tex: np.ndarray,
                iters: int = 10) -> np.ndarray:
        """View positions v with map(v) == pts_tex (Newton, Jacobian by finite differences)."""
        hinv = np.linalg.inv(h_tex_to_view)
        v = _apply_h(h_tex_to_view, pts_tex)
        k = len(v)
        step = np.array([[0.25, 0.0], [0.0, 0.25]])
        for _ in range(iters):
            s = self.sample(low, hinv, np.concatenate([v, v + step[0], v + step[1]]))
            m = s[:k]
            r = pts_tex - m
            if np.abs(r).max(initial=0) < 1e-4:
                break
            jx, jy = (s[k:2 * k] - m) * 4.0, (s[2 * k:] - m) * 4.0  # d(tex)/d(view x), d/d(view y)
            det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
            det = np.where(np.abs(det) < 1e-6, 1e-6, det)
            dx = (jy[:, 1] * r[:, 0] - jy[:, 0] * r[:, 1]) / det
            dy = (-jx[:, 1] * r[:, 0] + jx[:, 0] * r[:, 1]) / det
            v = v + np.stack([dx, dy], 1)
        return v


def _apply_h(hm: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ hm.T
    return p[:, :2] / p[:, 2:3]
