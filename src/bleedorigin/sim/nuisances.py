"""Scenario nuisances in view coordinates: instruments, moving glare, water-flushing jets.

Each one draws itself into a frame and answers "which of these points do I hide?", so the
visibility truth comes from the very geometry that was drawn.
"""
from __future__ import annotations

import cv2
import numpy as np

Q = 4  # glare and water are drawn at 1/Q resolution then upsampled (soft anyway, and fast)


def _episodes(rng: np.random.Generator, n: int, count: int, dur: tuple[int, int]) -> list[tuple[int, int]]:
    """`count` non-overlapping (start, length) windows spread over n frames."""
    out = []
    slots = np.linspace(0, n, count + 1)
    for i in range(count):
        length = int(rng.integers(*dur))
        lo, hi = int(slots[i]), max(int(slots[i]) + 1, int(slots[i + 1]) - length)
        out.append((int(rng.integers(lo, hi)), length))
    return out


def _envelope(t: int, eps: list[tuple[int, int]], ramp: float) -> float:
    """0..1, smooth in and out of each episode."""
    best = 0.0
    for s, n in eps:
        if s <= t < s + n:
            k = min(t - s, s + n - 1 - t) / ramp
            best = max(best, float(np.clip(k, 0, 1)) ** 2 * (3 - 2 * min(1.0, float(np.clip(k, 0, 1)))))
    return best


class Instrument:
    """Sheath with coloured bands and a metallic knife tip, entering from the border."""

    def __init__(self, rng: np.random.Generator, view: tuple[int, int], n: int, always: bool = False):
        w, h = view
        self.view = view
        phi = rng.uniform(0, 2 * np.pi)
        self.entry = np.array([w / 2 + 0.62 * w * np.cos(phi), h / 2 + 0.62 * h * np.sin(phi)])
        self.ang0 = phi + np.pi + rng.uniform(-0.5, 0.5)
        self.width = float(rng.uniform(0.10, 0.17) * w)
        self.depth = float(rng.uniform(0.35, 0.6) * w)
        self.eps = [(0, n)] if always else _episodes(rng, n, int(rng.integers(1, 3)), (30, 120))
        self.ramp = float(rng.uniform(6, 15))
        self.band = float(rng.uniform(0.18, 0.3) * self.width * 2)
        cols = [(235, 238, 240), (45, 120, 200)] if rng.random() < 0.7 else [(225, 225, 225), (150, 150, 155)]
        self.cols = np.array(cols, np.float64) * rng.uniform(0.85, 1.0)
        self.knife = float(rng.uniform(0.15, 0.35) * self.width * 2)
        self.wob = rng.uniform(0.01, 0.04, 2)
        self.ph = rng.uniform(0, 2 * np.pi, 2)
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def polygons(self, t: int) -> list[np.ndarray]:
        """Outline quads of the sheath bands then the knife (float (4, 2) each); [] when out."""
        if self._cache is not None and self._cache[0] == t:
            return self._cache[1]
        env = self.reach(t)
        polys: list[np.ndarray] = []
        if env > 0.02:
            ang = self.ang0 + 0.15 * np.sin(self.wob[0] * t * 6 + self.ph[0])
            d = np.array([np.cos(ang), np.sin(ang)])
            nrm = np.array([-d[1], d[0]])
            length = self.depth * env * (1 + 0.05 * np.sin(self.wob[1] * t * 6 + self.ph[1]))
            # perspective: the sheath is wider near the scope (at the border)
            def quad(a: float, b: float, wa: float, wb: float) -> np.ndarray:
                pa, pb = self.entry + d * a, self.entry + d * b
                return np.array([pa + nrm * wa, pb + nrm * wb, pb - nrm * wb, pa - nrm * wa])
            half = lambda s: self.width * (0.75 - 0.25 * s / max(self.depth, 1))  # noqa: E731
            s, i = 0.0, 0
            while s < length:  # long white/grey bands, short coloured ones
                e = min(length, s + self.band * (1.0 if i % 2 == 0 else 0.35))
                i += 1
                polys.append(quad(s, e, half(s), half(e)))
                s = e
            polys.append(quad(length, length + self.knife * env, half(length) * 0.22, half(length) * 0.18))
        self._cache = (t, polys)
        return polys

    def reach(self, t: int) -> float:
        """0 (out of view) .. 1 (fully extended) at frame t."""
        return _envelope(t, self.eps, self.ramp)

    def tip(self, t: int) -> np.ndarray | None:
        """View position of the knife's tip (the middle of its far edge), None when out."""
        polys = self.polygons(t)
        return 0.5 * (polys[-1][1] + polys[-1][2]) if polys else None

    def draw(self, img: np.ndarray, t: int, scale: float = 1.0) -> None:
        """Draw into `img`, a frame rendered at `scale` times the view size."""
        polys = [(q + 0.5) * scale - 0.5 for q in self.polygons(t)]
        if not polys:
            return
        fill = lambda q, col: cv2.fillConvexPoly(  # noqa: E731
            img, np.round(q * 16).astype(np.int32), tuple(float(c) for c in col), cv2.LINE_AA, 4)
        for i, q in enumerate(polys[:-1]):
            fill(q, self.cols[i % 2])
        knife = polys[-1]
        fill(knife, (150, 152, 158))
        # cylinder shading, continuous along the whole sheath: a glint line and a shadowed edge
        for q in ([polys[0][0], polys[-2][1], polys[-2][2], polys[0][3]], list(knife)):
            q0, q1, q2, q3 = (np.asarray(v) for v in q)
            fill(np.array([q0 * 0.66 + q3 * 0.34, q1 * 0.66 + q2 * 0.34, q1 * 0.56 + q2 * 0.44,
                           q0 * 0.56 + q3 * 0.44]), (250, 250, 250))
            fill(np.array([q3 * 0.88 + q0 * 0.12, q2 * 0.88 + q1 * 0.12, q2, q3]), (70, 72, 80))

    def hides(self, t: int, pts: np.ndarray) -> np.ndarray:
        hidden = np.zeros(len(pts), bool)
        for q in self.polygons(t):
            c = q.astype(np.float32).reshape(-1, 1, 2)
            for i, p in enumerate(pts):
                if not hidden[i] and cv2.pointPolygonTest(c, (float(p[0]), float(p[1])), False) >= 0:
                    hidden[i] = True
        return hidden


class Glare:
    """Large moving specular reflections with a rainbow fringe (light_reflection scenario)."""

    def __init__(self, rng: np.random.Generator, view: tuple[int, int], n: int):
        w, h = view
        self.small = (w // Q, h // Q)
        k = int(rng.integers(1, 4))
        self.c0 = rng.uniform((0.2 * w, 0.2 * h), (0.8 * w, 0.8 * h), (k, 2))
        self.amp = rng.uniform(10, 60, (k, 2))
        self.freq = rng.uniform(0.01, 0.05, (k, 2))
        self.ph = rng.uniform(0, 2 * np.pi, (k, 2))
        self.axes = rng.uniform(0.03, 0.1, (k, 2)) * w
        self.rot = rng.uniform(0, 180, k)
        self.eps = _episodes(rng, n, int(rng.integers(1, 3)), (max(10, n // 3), max(11, n)))
        self._cache: tuple[int, np.ndarray] | None = None

    def intensity(self, t: int) -> np.ndarray:
        """(h/Q, w/Q) float32 in 0..1."""
        if self._cache is not None and self._cache[0] == t:
            return self._cache[1]
        canvas = np.zeros(self.small[::-1], np.float32)
        env = _envelope(t, self.eps, 8.0)
        if env > 0.01:
            c = self.c0 + self.amp * np.sin(2 * np.pi * self.freq * t + self.ph)
            for ci, ax, r in zip(c, self.axes, self.rot):
                cv2.ellipse(canvas, (int(ci[0] / Q), int(ci[1] / Q)),
                            (max(1, int(ax[0] / Q)), max(1, int(ax[1] / Q))), float(r), 0, 360, env, -1)
            canvas = cv2.GaussianBlur(canvas, (0, 0), 1.5)
        self._cache = (t, canvas)
        return canvas

    def draw(self, img: np.ndarray, t: int) -> np.ndarray:
        g = self.intensity(t)
        if not g.any():
            return img
        h, w = img.shape[:2]
        # chromatic fringe: red and blue halos shifted apart
        layer = np.stack([np.roll(g, 1, 1), g, np.roll(g, -1, 1)], -1)
        layer = cv2.resize(np.clip(layer * 330, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        return cv2.add(img, layer)

    def hides(self, t: int, pts: np.ndarray) -> np.ndarray:
        return _sample(self.intensity(t), pts) > 0.5


class WaterJet:
    """Flushing: a bright translucent jet from the border towards the bleeding area, washing blood,
    with global blur and brightness change while it runs."""

    def __init__(self, rng: np.random.Generator, view: tuple[int, int], n: int):
        w, h = view
        self.view = view
        self.small = (w // Q, h // Q)
        phi = rng.uniform(0, 2 * np.pi)
        self.nozzle = np.array([w / 2 + 0.55 * w * np.cos(phi), h / 2 + 0.55 * h * np.sin(phi)])
        self.eps = _episodes(rng, n, int(rng.integers(1, 4)), (12, 45))
        self.width = float(rng.uniform(0.04, 0.09) * w)
        self.blur = float(rng.uniform(1.5, 4.0))
        self.bright = float(rng.uniform(1.05, 1.3))
        self.strength = float(rng.uniform(0.3, 0.6))  # share of the blood removed per frame under the jet
        self.turb = rng.random((self.small[1] // 4 + 2, self.small[0] // 4 + 2), dtype=np.float32)
        self.rng = np.random.default_rng(int(rng.integers(1 << 31)))
        self._cache: tuple[int, np.ndarray] | None = None
        self.target = np.array([w / 2, h / 2])

    def level(self, t: int) -> float:
        return _envelope(t, self.eps, 4.0)

    def alpha(self, t: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == t:
            return self._cache[1]
        canvas = np.zeros(self.small[::-1], np.float32)
        env = self.level(t)
        if env > 0.01:
            a, b = self.nozzle / Q, self.target / Q
            n = 8
            for i in range(n):  # widening cone
                p0 = a + (b - a) * i / n
                p1 = a + (b - a) * (i + 1) / n
                cv2.line(canvas, tuple(int(v) for v in p0), tuple(int(v) for v in p1), env,
                         max(1, int(self.width / Q * (0.5 + 1.2 * i / n))))
            cv2.circle(canvas, tuple(int(v) for v in b), int(self.width / Q * 1.8), env * 0.8, -1)
            turb = cv2.resize(np.roll(self.turb, t, 1), self.small, interpolation=cv2.INTER_CUBIC)
            canvas = cv2.GaussianBlur(canvas * (0.55 + 0.6 * turb), (0, 0), 2.0)
        self._cache = (t, canvas)
        return canvas

    def draw(self, img: np.ndarray, t: int) -> np.ndarray:
        a = self.alpha(t)
        if not a.any():
            return img
        h, w = img.shape[:2]
        a_full = cv2.resize(np.clip(a * 0.75, 0, 0.85), (w, h), interpolation=cv2.INTER_LINEAR)
        white = np.empty_like(img)
        white[:] = (215, 228, 240)
        return cv2.blendLinear(img, white, 1.0 - a_full, a_full)

    def hides(self, t: int, pts: np.ndarray) -> np.ndarray:
        return _sample(self.alpha(t), pts) > 0.45


def _sample(small: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = small.shape
    x = np.clip(((pts[:, 0] + 0.5) / Q - 0.5).round().astype(int), 0, w - 1)
    y = np.clip(((pts[:, 1] + 0.5) / Q - 0.5).round().astype(int), 0, h - 1)
    return small[y, x]
