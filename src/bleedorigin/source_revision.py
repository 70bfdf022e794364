"""The source is not decided once: while an episode goes on the pipeline keeps weighing where the
bleeding comes from and moves the tracked point when another place clearly wins.

At the onset the localizer's best few places (`ranked_places`) become candidates, tracked
together with the chosen one, so each candidate's path over the frames already seen is known
when the source moves to it. Every `every` frames the localizer runs again on the latest frame
with the frames before it as history (blood that re-appears after a flush, where blood flows
out from: the localizer's history evidence), and each candidate gets as evidence the score of the
best ranked place near where it is now (scores relative to the best place of that evaluation, in
the localizer's fused-score units; `floor` when no ranked place is near it). A candidate's weight
is the mean of its evidence so far. The source moves to another candidate when that candidate's
weight exceeds the current source's by more than `margin` on `patience` evaluations in a row
(hysteresis: one noisy evaluation does not move it, two close places do not flip-flop).

A place can start to bleed after the onset (a vessel opened later, a source hidden under blood
at the onset): when an evaluation's best place is farther than `radius` from every candidate, it
replaces the candidate of lowest weight other than the source (its weight counts from then on);
the caller restarts the tracker on the new set and carries the newcomer's earlier path with the
source's (the offset between them held).

Confidence of the current source: 1 - exp(-lead), lead = its weight minus the best other
candidate's (the localizer's own confidence rule, over time): 0 while another place is as
likely, clear (render.SOURCE_UNSURE) once it leads by about 0.7 fused-score units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bleedorigin.pipeline_config import RevisionConfig
from bleedorigin.types import Point

Place = tuple[float, float, float]  # x, y, score (0 for the best place, lower for the others)


def ranked_places(locator: Any, frame: np.ndarray, history: list[np.ndarray] | None, k: int,
                  exclude: np.ndarray | None = None) -> tuple[Point, list[Place]]:
    """The localizer's point and up to `k` places best first, in pixels of `frame`: the point
    first (score 0), then the other peaks of its posterior (when it exposes one) at least twice
    the confidence radius from each other, scored by the fused score relative to the point's."""
    kw = {} if exclude is None else {"exclude": exclude}
    p = locator.locate(frame, history=history, **kw)
    maps = getattr(locator, "last_maps", None)
    if k <= 1 or maps is None:
        return p, [(p.x, p.y, 0.0)]
    post = maps.posterior
    h, w = post.shape
    temperature = getattr(getattr(locator, "cfg", None), "temperature", 1.0)
    score = temperature * np.log(post.astype(np.float64) + 1e-300)
    sx, sy = frame.shape[1] / w, frame.shape[0] / h
    r = max(1, int(round(getattr(locator.cfg, "conf_radius", 0.08) * w)))
    at = score[int(np.clip(round((p.y + 0.5) / sy - 0.5), 0, h - 1)), int(np.clip(round((p.x + 0.5) / sx - 0.5), 0, w - 1))]
    places = [(p.x, p.y, 0.0)]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    local_max = score >= cv2.dilate(score.astype(np.float32), kernel).astype(np.float64) - 1e-9
    ys, xs = np.nonzero(local_max)
    taken = [((p.x + 0.5) / sx - 0.5, (p.y + 0.5) / sy - 0.5)]
    for j in np.argsort(-score[ys, xs], kind="stable"):
        if len(places) >= k:
            break
        x, y = float(xs[j]), float(ys[j])
        if all((x - a) ** 2 + (y - b) ** 2 > (2 * r) ** 2 for a, b in taken):
            taken.append((x, y))
            places.append(((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, float(score[ys[j], xs[j]] - at)))
    return p, places


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
        """`places` from `ranked_places` at the onset (the located source first), `width` of the
        frames the positions are given in, `confidence` the localizer's for its point."""
        self.cfg = cfg
        self.radius = cfg.radius * width
        self.evidence: list[list[float]] = [[s] for _, _, s in places]
        self.current = 0
        self.challenger: int | None = None
        self.wins = 0
        self.confidence = float(confidence)

    @property
    def weights(self) -> np.ndarray:
        return np.array([np.mean(e) for e in self.evidence])

    def weigh(self, positions: np.ndarray, places: list[Place]) -> Decision:
        """Add one evaluation: `positions` (K, 2) where the candidates are now, `places` the
        localizer's ranked places on the same frame (same pixels)."""
        pos = np.asarray(positions, np.float64).reshape(-1, 2)
        admitted = self._admit(pos, places)
        if admitted is not None:
            pos = pos.copy()
            pos[admitted[0]] = admitted[1]
        for i, (x, y) in enumerate(pos):
            near = [s for px, py, s in places if (px - x) ** 2 + (py - y) ** 2 <= self.radius ** 2]
            # no ranked place near it: below every place that was ranked
            lowest = min(s for _, _, s in places)
            self.evidence[i].append(max(near) if near else min(self.cfg.floor, lowest))
        weights = self.weights
        others = np.delete(np.arange(len(weights)), self.current)
        why = ""
        if len(others):
            best = int(others[np.argmax(weights[others])])
            if weights[best] - weights[self.current] > self.cfg.margin:
                self.wins = self.wins + 1 if best == self.challenger else 1
                self.challenger = best
            else:
                self.challenger, self.wins = None, 0
            if self.wins >= self.cfg.patience:
                self.current, self.challenger, self.wins, why = best, None, 0, "moved"
        was_clear = self.confidence >= self.cfg.clear
        self.confidence = self.lead_confidence(weights)
        if not why and not was_clear and self.confidence >= self.cfg.clear:
            why = "confirmed"
        return Decision(self.current, self.confidence, why, admitted)

    def _admit(self, pos: np.ndarray, places: list[Place]) -> tuple[int, tuple[float, float]] | None:
        """The best place, when no candidate is near it, takes the slot of the weakest candidate
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

    def lead_confidence(self, weights: np.ndarray) -> float:
        others = np.delete(weights, self.current)
        if not len(others):
            return self.confidence  # one candidate: the localizer's own confidence stands
        return float(1.0 - np.exp(-max(0.0, weights[self.current] - others.max())))
