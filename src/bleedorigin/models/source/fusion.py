"""`EvidenceSourceLocator`: the source network's heat-map fused with evidence that transfers
from simulation to real video (models.source.evidence).

Fusion rule, per pixel of the network's working resolution:

    score = w_net * log(heat + eps) + w_red * red + log(support + eps) + log(prior + eps)
            + w_growth * growth / max(growth)

heat = the network's sigmoid heat-map, red = the Red-Mask smoothed over `red_sigma`, support =
where a source can be (field of view, no glare, not grey), prior = the rim prior, growth = where blood kept appearing over the history frames
(only when history is given and blood did appear). The point is the arg-max with sub-pixel
refinement. Confidence = the share of the fused posterior (softmax of the score) within
`conf_radius` of the point times the weighted agreement of the heat, red and growth maps there
(each map's value at the point relative to its own peak): it drops when the posterior is spread
over several places and when the pieces of evidence point at different places.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.source.evidence import EvidenceConfig, growth_map, rim_prior, support_map
from bleedorigin.models.source.model import refined_peak
from bleedorigin.models.source.predictor import SourceLocator, check_frame, to_input
from bleedorigin.types import Point
from bleedorigin.vision.color import field_of_view, red_mask

EPS = 1e-3


@dataclass(frozen=True)
class FusionConfig:
    # Defaults chosen by scripts/source_fusion_select.py (rule in its docstring; docs/source.md).
    w_net: float = 0.1        # weight of the network's log-heat
    w_red: float = 1.0        # weight of the smoothed Red-Mask
    red_sigma: float = 3.0    # px at the working resolution: a blood region, not single red pixels
    w_growth: float = 0.0     # weight of the (normalised) growth map when history is given
    growth_min: float = 0.02  # growth peak below which no blood appeared: the map is left out
    conf_radius: float = 0.08  # share of the working width around the point counted as "here"
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)


@dataclass
class EvidenceMaps:
    """The maps behind one decision, at the working resolution (for reports and overlays)."""

    heat: np.ndarray
    red: np.ndarray
    support: np.ndarray
    prior: np.ndarray
    growth: np.ndarray | None
    posterior: np.ndarray


def fuse(heat: np.ndarray, red: np.ndarray, support: np.ndarray, prior: np.ndarray,
         growth: np.ndarray | None, cfg: FusionConfig) -> np.ndarray:
    """The fused log-score (h, w) of the rule in the module docstring."""
    score = cfg.w_net * np.log(heat + EPS) + cfg.w_red * red + np.log(support + EPS) + np.log(prior + EPS)
    if growth is not None and cfg.w_growth > 0 and float(growth.max()) > cfg.growth_min:
        score = score + cfg.w_growth * growth / float(growth.max())
    return score.astype(np.float32)


def posterior(score: np.ndarray) -> np.ndarray:
    p = np.exp(score - score.max())
    return (p / p.sum()).astype(np.float32)


def confidence(post: np.ndarray, evidence: list[tuple[float, np.ndarray]], xy: tuple[float, float],
               radius: float) -> float:
    """Posterior mass near the point times how much the evidence agrees there: the weighted
    mean, over the (weight, map) pairs that voted, of each map's value at the point relative to
    its own peak."""
    h, w = post.shape
    ys, xs = np.mgrid[0:h, 0:w]
    near = (xs - xy[0]) ** 2 + (ys - xy[1]) ** 2 <= radius ** 2
    x, y = int(round(np.clip(xy[0], 0, w - 1))), int(round(np.clip(xy[1], 0, h - 1)))
    votes = [(wt, float(m[y, x] / max(float(m.max()), EPS))) for wt, m in evidence if wt > 0]
    agree = sum(wt * a for wt, a in votes) / sum(wt for wt, _ in votes) if votes else 1.0
    return float(np.clip(post[near].sum() * agree, 0.0, 1.0))


def voters(m: EvidenceMaps, cfg: FusionConfig) -> list[tuple[float, np.ndarray]]:
    """The weighted maps that point at a place (support and prior only rule places out)."""
    out = [(cfg.w_net, m.heat), (cfg.w_red, m.red)]
    if m.growth is not None and float(m.growth.max()) > cfg.growth_min:
        out.append((cfg.w_growth, m.growth))
    return out


def peak(post: np.ndarray, radius: int) -> tuple[float, float]:
    """Sub-pixel arg-max of a posterior map (network pixels), as the network's own peak."""
    xy, _ = refined_peak(torch.from_numpy(np.log(post + 1e-12))[None, None], radius)
    return float(xy[0, 0]), float(xy[0, 1])


class EvidenceSourceLocator(SourceLocatorBase):
    """The network (`base`, a `SourceLocator`) plus transferable evidence; `last_maps` keeps
    the maps of the latest call."""

    name = "source_evidence"

    def __init__(self, base: SourceLocator, cfg: FusionConfig = FusionConfig(), model_id: str | None = None):
        self.base = base
        self.net = base.net  # the torch module (parameter and FLOP counts)
        self.cfg = cfg
        self.model_id = model_id or f"{base.model_id}+evidence"
        self.last_maps: EvidenceMaps | None = None
        self.timings_ms: dict[str, float] = {}

    def maps(self, frame: np.ndarray, history: list[np.ndarray] | None = None) -> EvidenceMaps:
        check_frame(frame)
        w, h = self.base.cfg.input_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        fov = field_of_view(small)
        heat = torch.sigmoid(self.base.heatmap(small)[0, 0]).cpu().numpy() * fov
        red = cv2.GaussianBlur(red_mask(small), (0, 0), self.cfg.red_sigma) * fov
        support = support_map(small, self.cfg.evidence, fov)
        prior = rim_prior(fov, self.cfg.evidence.rim_fraction)
        growth = None
        if history and self.cfg.w_growth > 0:  # aligning the history costs; only when it counts
            past = [cv2.resize(check_frame(f), (w, h), interpolation=cv2.INTER_AREA) for f in history]
            growth = growth_map(small, past, self.cfg.evidence, fov)
        score = fuse(heat, red, support, prior, growth, self.cfg)
        return EvidenceMaps(heat, red, support, prior, growth, posterior(score))

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None) -> Point:
        t0 = time.perf_counter()
        m = self.maps(frame, history)
        self.last_maps = m
        px, py = peak(m.posterior, self.base.cfg.refine_radius)
        w, h = self.base.cfg.input_size
        conf = confidence(m.posterior, voters(m, self.cfg), (px, py), self.cfg.conf_radius * w)
        in_size = (frame.shape[1], frame.shape[0])
        x, y = to_input(np.array([px, py]), in_size, (w, h))
        self.timings_ms = {"source": (time.perf_counter() - t0) * 1e3}
        return Point(float(np.clip(x, 0, in_size[0] - 1)), float(np.clip(y, 0, in_size[1] - 1)), conf)


def from_options(net: SourceLocator, **options: Any) -> EvidenceSourceLocator:
    """An `EvidenceSourceLocator` with FusionConfig / EvidenceConfig fields given by name."""
    ev = {k: options.pop(k) for k in list(options) if k in EvidenceConfig.__dataclass_fields__}
    return EvidenceSourceLocator(net, FusionConfig(**options, evidence=EvidenceConfig(**ev)))
