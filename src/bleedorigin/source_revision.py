"""The source is not decided once: while an episode goes on the pipeline keeps weighing where the
bleeding comes from and moves the tracked point when another place clearly wins.

At the onset the localizer's best few places (`weigh_frame`) become candidates, tracked
together with the chosen one, so each candidate's path over the frames already seen is known
when the source moves to it. Every `every` frames the localizer runs again on the latest frame
with the frames before it as history (blood that re-appears after a flush, a stump that stays on
its tissue point: the localizer's history evidence, when it weighs them), and each candidate gets
as evidence the probability that the source lies within the localizer's confidence radius of
where the candidate is now: the mass of softmax(score / `cand_temperature`) there, the
probability `locate_candidates` gives its places (calibrated for the shipped localizer,
docs/source.md "Candidates"). A localizer without a score map gives its ranked places only: a
candidate then gets the probability of the best ranked place within `radius`, else 0. A
candidate's weight is the mean of its probabilities so far. The source moves to another
candidate when that candidate's weight exceeds `ratio` times the current source's on `patience`
evaluations in a row (hysteresis: one noisy evaluation does not move it, two close places do not
flip-flop). Probabilities mean the same whatever the localizer's score units, so the rule does too.

A place can start to bleed after the onset (a vessel opened later, a source hidden under blood
at the onset): when an evaluation's best place is farther than `radius` from every candidate, it
replaces the candidate of lowest weight other than the source (its weight counts from then on);
the caller carries the newcomer with the source (the offset between them held, for its earlier
path too) and tracks it itself only once the source moves to it.

Confidence of the current source: its weight, the probability that the source is there; clear
(render.SOURCE_UNSURE) from 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bleedorigin.models.source.fusion import posterior
from bleedorigin.pipeline_config import RevisionConfig
from bleedorigin.types import Point

Place = tuple[float, float, float]  # x, y, probability that the source is within the confidence radius
TOLERANCE = 2  # score-map pixels around a candidate searched for its evidence (tracking jitter)


@dataclass
class Evidence:
    """One run of the localizer: its point, its ranked places (the point first), and, when it
    exposes its posterior, the probability mass within its confidence radius of every pixel."""

    point: Point
    places: list[Place]
    mass: np.ndarray | None = None  # (h, w) at the localizer's working resolution
    scale: tuple[float, float] = (1.0, 1.0)  # frame pixels per score pixel (x, y)

    def at(self, positions: np.ndarray, radius: float) -> np.ndarray:
        """Probability for a candidate at each position (frame pixels): the best mass within
        TOLERANCE score pixels (tracking jitter), or without a mass map the best ranked place
        within `radius`, else 0."""
        pos = np.asarray(positions, np.float64).reshape(-1, 2)
        if self.mass is None:
            out = []
            for x, y in pos:
                near = [p for px, py, p in self.places if (px - x) ** 2 + (py - y) ** 2 <= radius ** 2]
                out.append(max(near) if near else 0.0)
            return np.array(out)
        h, w = self.mass.shape
        cols = np.clip(np.round((pos[:, 0] + 0.5) / self.scale[0] - 0.5).astype(int), 0, w - 1)
        rows = np.clip(np.round((pos[:, 1] + 0.5) / self.scale[1] - 0.5).astype(int), 0, h - 1)
        t = TOLERANCE
        return np.array([self.mass[max(0, r - t):r + t + 1, max(0, c - t):c + t + 1].max()
                         for r, c in zip(rows, cols)])


def radius_share(locator: Any) -> float:
    """The localizer's confidence radius as a share of the frame width (its candidates'
    probabilities are the mass within it); 0.08 for a localizer that does not state one."""
    return float(getattr(getattr(locator, "cfg", None), "conf_radius", 0.08))


def weigh_frame(locator: Any, frame: np.ndarray, history: list[np.ndarray] | None, k: int,
                exclude: np.ndarray | None = None) -> Evidence:
    """The localizer on `frame`: its point and up to `k` places, in pixels of `frame`, each with
    its probability: the point, then the other peaks of its posterior (when it exposes one) at
    least twice its confidence radius from each other and from the point, most probable first."""
    kw = {} if exclude is None else {"exclude": exclude}
    p = locator.locate(frame, history=history, **kw)
    maps = getattr(locator, "last_maps", None)
    if maps is None:
        return Evidence(p, [(p.x, p.y, float(p.confidence))])
    post = maps.posterior.astype(np.float64)
    h, w = post.shape
    cfg = getattr(locator, "cfg", None)
    sx, sy = frame.shape[1] / w, frame.shape[0] / h
    px, py = (p.x + 0.5) / sx - 0.5, (p.y + 0.5) / sy - 0.5
    r = max(1, int(round(radius_share(locator) * w)))
    # the candidates' posterior, as locate_candidates weighs them: score = temperature * log posterior
    score = getattr(cfg, "temperature", 1.0) * np.log(post + 1e-300)
    prob = posterior(score, getattr(cfg, "cand_temperature", 1.0))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)).astype(np.float32)
    mass = cv2.filter2D(prob, -1, disk, borderType=cv2.BORDER_CONSTANT)
    ys, xs = np.nonzero(mass >= cv2.dilate(mass, disk.astype(np.uint8)) - 1e-9)
    ev = Evidence(p, [], mass, (sx, sy))
    places, taken = [(p.x, p.y, float(ev.at(np.array([[p.x, p.y]]), 0)[0]))], [(px, py)]
    for j in np.argsort(-mass[ys, xs], kind="stable"):
        if len(places) >= k:
            break
        x, y = float(xs[j]), float(ys[j])
        if all((x - a) ** 2 + (y - b) ** 2 > (2 * r) ** 2 for a, b in taken):
            taken.append((x, y))
            places.append(((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, float(mass[ys[j], xs[j]])))
    ev.places = places
    return ev


@dataclass
class Decision:
    """The outcome of one re-evaluation: the source candidate, its confidence, and what
    changed ("moved", "confirmed" or "" for nothing the user sees)."""

    current: int
    confidence: float
    why: str = ""
    admitted: tuple[int, tuple[float, float]] | None = None  # (candidate replaced, place) when a new place joined


class SourceReviser:
    """The decision rule of the module docstring, over candidates tracked by the caller."""

    def __init__(self, cfg: RevisionConfig, places: list[Place], width: int, confidence: float):
        """`places` from `weigh_frame` at the onset (the located source first), `width` of the
        frames the positions are given in, `confidence` the localizer's for its point."""
        self.cfg = cfg
        self.radius = cfg.radius * width
        self.evidence: list[list[float]] = [[s] for _, _, s in places]
        self.current = 0
        self.challenger: int | None = None
        self.wins = 0
        self.confidence = float(confidence)  # the localizer's, until the first weighing

    @property
    def weights(self) -> np.ndarray:
        return np.array([np.mean(e) for e in self.evidence])

    def weigh(self, positions: np.ndarray, evidence: Evidence) -> Decision:
        """Add one evaluation: `positions` (K, 2) where the candidates are now, `evidence` the
        localizer's on the same frame (same pixels)."""
        pos = np.asarray(positions, np.float64).reshape(-1, 2)
        admitted = self._admit(pos, evidence.places)
        if admitted is not None:
            pos = pos.copy()
            pos[admitted[0]] = admitted[1]
        for i, e in enumerate(evidence.at(pos, self.radius)):
            self.evidence[i].append(float(e))
        weights = self.weights
        others = np.delete(np.arange(len(weights)), self.current)
        why = ""
        if len(others):
            best = int(others[np.argmax(weights[others])])
            if weights[best] > self.cfg.ratio * weights[self.current]:
                self.wins = self.wins + 1 if best == self.challenger else 1
                self.challenger = best
            else:
                self.challenger, self.wins = None, 0
            if self.wins >= self.cfg.patience:
                self.current, self.challenger, self.wins, why = best, None, 0, "moved"
        was_clear = self.confidence >= self.cfg.clear
        if len(weights) > 1:  # one candidate: the localizer's own confidence stands
            self.confidence = float(weights[self.current])
        if not why and not was_clear and self.confidence >= self.cfg.clear:
            why = "confirmed"
        return Decision(self.current, self.confidence, why, admitted)

    def _admit(self, pos: np.ndarray, places: list[Place]) -> tuple[int, tuple[float, float]] | None:
        """The localizer's point, when no candidate is near it, takes the slot of the weakest candidate
        other than the source (a fresh evidence record)."""
        x, y, _ = places[0]
        if len(pos) < 2 or ((pos - (x, y)) ** 2).sum(1).min() <= self.radius ** 2:
            return None
        weights = self.weights
        weights[self.current] = np.inf
        slot = int(np.argmin(weights))
        self.evidence[slot] = []
        if self.challenger == slot:
            self.challenger, self.wins = None, 0
        return slot, (float(x), float(y))
