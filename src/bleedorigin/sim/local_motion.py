"""Local tissue motion: tissue that moves on its own and under the instruments, not only with the camera.

The camera path and its slow elastic field (camera.py) move the whole view almost rigidly, so a
tracker that follows the scene's dominant motion would be right everywhere. Real tissue also
deforms locally. This module makes a smooth, time-varying view-space shift field s(v, t): the
frame at view pixel v shows the tissue the camera alone would show at v - s(v) (the tissue near
v moved by s). It is the sum of

- pulls: Gaussian bumps (sigma 45-120 px at 512 wide) whose shift (10-35 px) rises and falls as
  sin^2 over 15-60 frames, several at a time (breathing, peristalsis, traction off-screen);
- grasps: while an instrument is fully extended its tip holds the tissue it touched, which
  follows the tip (shift = tip now - tip at contact, a Gaussian around the tip), then relaxes
  exponentially once the instrument withdraws.

The field is applied to the frame's backward map (`ViewWarp.displaced`) before the texture, the
blood layer (blood lies on the tissue) and the truth points go through that map, so labels,
the bleeding source and the blood all move exactly as the pixels do. Its spatial gradient is
capped so the map never folds (its inverse, used for truth, stays unique).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bleedorigin.sim.nuisances import Instrument

MAX_GRADIENT = 0.6   # cap on |d shift / d v| (Frobenius): the warp stays one-to-one
# Pull ranges at 512 px width (scaled with the view): the strongest of four preset ranges whose
# non-rigid residual motion stays below that of the real ESD clips (docs/bleedsim.md).
PULL_RATE = (0.06, 0.12)     # new pulls per frame
PULL_FRAMES = (15, 61)       # rise-and-fall duration
PULL_SHIFT = (10.0, 35.0)    # px, peak shift (at most 0.6 sigma)
PULL_SIGMA = (45.0, 120.0)   # px, reach
GRASP_REACH = 0.9    # instrument extension above which its tip touches the tissue


@dataclass(frozen=True)
class Pull:
    """One Gaussian pull at a fixed view position; strength sin^2 over [start, start + length),
    or constant 1 when length is 0."""
    centre: tuple[float, float]
    shift: tuple[float, float]
    sigma: float
    start: int = 0
    length: int = 0

    def strength(self, t: int) -> float:
        if self.length <= 0:
            return 1.0
        u = (t - self.start) / self.length
        return float(np.sin(np.pi * u) ** 2) if 0.0 <= u < 1.0 else 0.0


@dataclass(frozen=True)
class Grasp:
    """The tissue under an instrument's tip follows the tip while the instrument is extended."""
    sigma: float          # px, reach of the pull around the tip
    relax: float          # frames, time constant of the release
    max_shift: float      # px, the tissue slips beyond this (elastic limit)


class LocalMotion:
    """The shift field of one clip: its pulls and, with an instrument, its grasps."""

    def __init__(self, pulls: list[Pull], num_frames: int, instrument: Instrument | None = None,
                 grasp: Grasp | None = None):
        self.pulls = pulls
        self.grasp = grasp if instrument is not None else None
        # per frame the (centre, shift) of each grasp bump, from the instrument's schedule
        self._grasp_track = _grasp_track(instrument, grasp, num_frames) if self.grasp else [[]] * num_frames

    @classmethod
    def random(cls, rng: np.random.Generator, view: tuple[int, int], num_frames: int,
               instrument: Instrument | None = None) -> LocalMotion:
        w, h = view
        u = w / 512.0
        rate = rng.uniform(*PULL_RATE)
        count = max(1, int(rng.poisson(rate * (num_frames + 60))))
        pulls = []
        for _ in range(count):
            length = int(rng.integers(*PULL_FRAMES))
            sigma = rng.uniform(*PULL_SIGMA) * u
            amp = min(rng.uniform(*PULL_SHIFT) * u, 0.6 * sigma)
            ang = rng.uniform(0, 2 * np.pi)
            pulls.append(Pull(centre=(float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h)),
                              shift=(float(amp * np.cos(ang)), float(amp * np.sin(ang))), sigma=float(sigma),
                              start=int(rng.integers(-length // 2, num_frames)), length=length))
        grasp = Grasp(sigma=float(rng.uniform(0.08, 0.14) * w), relax=float(rng.uniform(8, 20)),
                      max_shift=float(rng.uniform(0.05, 0.08) * w))
        return cls(pulls, num_frames, instrument, grasp)

    def at(self, t: int, nodes: np.ndarray) -> np.ndarray:
        """(gh, gw, 2) float64 shift at view positions `nodes` (gh, gw, 2) in frame t."""
        out = np.zeros(nodes.shape, np.float64)
        bumps = [(p.centre, np.multiply(p.shift, p.strength(t)), p.sigma) for p in self.pulls]
        bumps += [(c, sh, self.grasp.sigma) for c, sh in self._grasp_track[t]]
        for centre, shift, sigma in bumps:
            if not np.any(shift):
                continue
            d2 = ((nodes - np.asarray(centre)) ** 2).sum(-1)
            out += np.exp(-0.5 * d2 / sigma ** 2)[..., None] * np.asarray(shift)
        return out * _fold_guard(out, nodes)


def _grasp_track(inst: Instrument, grasp: Grasp, n: int) -> list[list]:
    """Per frame the grasp bumps as (centre, shift): while extended the bump sits on the tip and
    shifts by the tip's motion since contact (so the touched tissue stays under it); after release
    it stays where it was and decays with time constant `relax`, also if a new contact begins."""
    out: list[list] = [[] for _ in range(n)]
    released: list[tuple[int, np.ndarray, np.ndarray]] = []  # (release frame, centre, shift)
    anchor = held = None
    for t in range(n):
        tip = inst.tip(t)
        if tip is not None and inst.reach(t) >= GRASP_REACH:
            anchor = tip if anchor is None else anchor
            shift = tip - anchor
            norm = float(np.linalg.norm(shift))
            if norm > grasp.max_shift:
                shift = shift * (grasp.max_shift / norm)
            held = (tip, shift)
            out[t].append(held)
        elif held is not None:
            released.append((t - 1, *held))
            anchor = held = None
        for t0, centre, shift in released:
            if t - t0 < 8 * grasp.relax:  # beyond that it has relaxed (< 0.04 %)
                out[t].append((centre, shift * np.exp(-(t - t0) / grasp.relax)))
    return out


def _fold_guard(shift: np.ndarray, nodes: np.ndarray) -> float:
    """Scale (<= 1) that keeps the largest shift gradient at MAX_GRADIENT: with |grad| < 1 the
    displaced map is one-to-one, so every tissue point has one place in the frame."""
    if shift.shape[0] < 2 or shift.shape[1] < 2:
        return 1.0
    dx = float(nodes[0, 1, 0] - nodes[0, 0, 0])
    dy = float(nodes[1, 0, 1] - nodes[0, 0, 1])
    gy, gx = np.gradient(shift, dy, dx, axis=(0, 1))
    norm = float(np.sqrt((gx ** 2 + gy ** 2).sum(-1)).max())
    return 1.0 if norm <= MAX_GRADIENT else MAX_GRADIENT / norm
