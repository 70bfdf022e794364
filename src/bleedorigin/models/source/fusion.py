"""`EvidenceSourceLocator`: the source network's heat-map fused with evidence that transfers
from simulation to real video (models.source.evidence), and a spatial prior.

Fusion rule, per pixel of the network's working resolution:

    score = w_net * log(heat + eps) + w_red * red + log(support + eps) + log(rim + eps)
            + log centre_prior + w_dark * dark
            + w_growth * growth / max(growth) + w_flow * flow / max(flow)

heat = the network's sigmoid heat-map, red = the Red-Mask smoothed over `red_sigma`, support =
where a source can be (field of view, no glare, not grey), rim = the rim prior, centre_prior =
a Gaussian around the centre of the view (`prior_sigma`; none when 0), dark = the dark-blood
mask (`vision.color.dark_blood_mask`, near-black pools the Red-Mask misses) smoothed like red,
growth = where blood kept appearing over the history frames, flow = where blood flows out from
(both only when history is given and the map has a peak). Posterior = softmax(score / temperature).

The point (`estimate`): "peak", the posterior's arg-max with sub-pixel refinement; "mean", the
posterior mean; "shrink", the arg-max moved toward the centre of the view by the confidence:
centre + min(1, confidence / shrink_full) * (peak - centre).
Confidence = 1 - exp(-margin), margin = the fused score at the point minus the best fused score
farther than 2 * `conf_radius` from it: near 0 when another place far away scores about as well
(the evidence points at two places, or at none and the prior decides), higher the more clearly
one place stands out (chosen by the rule in docs/source-choices.md, "How the confidence is chosen").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from bleedorigin.errors import ConfigError
from bleedorigin.models.base import SourceLocatorBase, allowed
from bleedorigin.models.source.cues import (CueConfig, outflow_map, persistent_stump_map, refill_map, streak_map,
                                            stump_map)
from bleedorigin.models.source.evidence import (EvidenceConfig, centre_prior, flow_map, growth_map, rim_prior,
                                                support_map)
from bleedorigin.models.source.model import refined_peak
from bleedorigin.models.source.predictor import SourceLocator, check_frame, to_input
from bleedorigin.types import Point
from bleedorigin.vision.color import dark_blood_mask, field_of_view, red_mask

EPS = 1e-3
FALLBACK_PRIOR = 1.5  # centre prior (equivalent radii) that decides when no weighed map has a peak
ESTIMATES = ("peak", "mean", "shrink")


@dataclass(frozen=True)
class FusionConfig:
    # The defaults are the red fusion `source_evidence_red`, which the shipped pipeline runs
    # (configs/pipeline.yaml; w_net, w_red, w_dark and prior_sigma by experiments/source_fuse_fit.py
    # with the prior on the working channel's side, the rim fraction by experiments/source_prior_fit.py,
    # w_growth by experiments/source_fusion_select.py). STUMP below
    # is `source_evidence`, the vessel-stump cue alone (docs/source.md, "Cues").
    w_net: float = 0.1        # weight of the network's log-heat (0: the network does not run)
    w_red: float = 1.0        # weight of the smoothed Red-Mask
    red_sigma: float = 3.0    # px at the working resolution: a blood region, not single red pixels
    w_dark: float = 0.5       # weight of the smoothed dark-blood mask
    w_growth: float = 0.0     # weight of the (normalised) growth map when history is given
    growth_min: float = 0.02  # growth peak below which no blood appeared: the map is left out
    w_flow: float = 0.0       # weight of the (normalised) flow-divergence map when history is given
    flow_min: float = 1e-3    # flow-map peak below which no blood flowed out: the map is left out
    prior_sigma: float = 0.8  # spatial prior's std as a share of the view's equivalent radius (0: none)
    prior_shift: float = 0.5  # the prior's centre this share of that radius below the view's centre (the working channel's side)
    w_support: float = 1.0    # weight of log support + log rim prior (0: the cues alone decide)
    w_stump: float = 0.0      # weight of the (normalised) vessel-stump map (models.source.cues)
    w_refill: float = 0.0     # weight of the (normalised) refill map, when history is given
    w_streak: float = 0.0     # weight of the (normalised) streak-convergence map
    w_outflow: float = 0.0    # weight of the (normalised) blood-outflow map, when history is given
    temperature: float = 1.0  # posterior = softmax(score / temperature)
    estimate: str = "peak"    # "peak" | "mean" | "shrink" (module docstring)
    shrink_full: float = 0.5  # "shrink": confidence at and above which the arg-max is kept as is
    conf_radius: float = 0.08  # share of the working width: places beyond twice this compete with the point
    cand_temperature: float = 1.0  # `locate_candidates`: posterior temperature of the candidates' probabilities
                                   # (calibrated for STUMP only, docs/source.md "Candidates")
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    cues: CueConfig = field(default_factory=CueConfig)

    def __post_init__(self) -> None:
        if self.estimate not in ESTIMATES:
            raise ConfigError(f"unknown estimate {self.estimate!r}; expected one of {list(ESTIMATES)}")
        if self.temperature <= 0 or self.shrink_full <= 0:
            raise ConfigError("temperature and shrink_full must be > 0")


@dataclass
class EvidenceMaps:
    """The maps behind one decision, at the working resolution (for reports and overlays)."""

    heat: np.ndarray
    red: np.ndarray
    dark: np.ndarray | None
    support: np.ndarray
    prior: np.ndarray
    growth: np.ndarray | None
    flow: np.ndarray | None
    centre: np.ndarray         # log of the centre prior (zeros when there is none)
    centre_xy: tuple[float, float]
    posterior: np.ndarray
    cues: dict[str, np.ndarray] = field(default_factory=dict)  # the weighted cue maps that had something to say


# The red fusion `source_evidence_red` (FusionConfig's defaults): the network, Red-Mask, dark blood,
# support, rim and a spatial prior on the working channel's side.
RED: dict[str, Any] = dict(w_net=0.1, w_red=1.0, w_dark=0.5, w_support=1.0, prior_sigma=0.8, prior_shift=0.5,
                           w_stump=0.0, cand_temperature=1.0)
# `source_evidence`: the vessel-stump cue alone (the network does not run); the candidates'
# temperature calibrated leave one clip out (docs/source.md, "Candidates").
STUMP: dict[str, Any] = dict(w_net=0.0, w_red=0.0, w_dark=0.0, w_support=0.0, prior_sigma=0.0, prior_shift=0.0,
                             w_stump=1.0, cand_temperature=0.1)
# `source_evidence_persist`: STUMP with the stump map combined over 8 aligned history frames
# (cues.persistent_stump_map; 8 as the growth map's samples, fixed before measuring).
PERSIST: dict[str, Any] = dict(stump_history=8)


def fuse(heat: np.ndarray | None, red: np.ndarray, support: np.ndarray, prior: np.ndarray,
         growth: np.ndarray | None, cfg: FusionConfig, flow: np.ndarray | None = None,
         centre: np.ndarray | None = None, dark: np.ndarray | None = None,
         cues: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The fused log-score (h, w) of the rule in the module docstring (`heat` None: w_net = 0)."""
    score = cfg.w_red * red + cfg.w_support * (np.log(support + EPS) + np.log(prior + EPS))
    if heat is not None and cfg.w_net > 0:
        score = score + cfg.w_net * np.log(heat + EPS)
    for name, m in (cues or {}).items():
        score = score + cue_weight(cfg, name) * m / float(m.max())
    if centre is not None:
        score = score + centre
    if dark is not None and cfg.w_dark > 0:
        score = score + cfg.w_dark * dark
    for wt, m in counted(cfg, growth, flow):
        score = score + wt * m / float(m.max())
    return score.astype(np.float32)


CUE_NAMES = ("stump", "refill", "streak", "outflow")
HISTORY_CUES = ("refill", "outflow")


def cue_weight(cfg: FusionConfig, name: str) -> float:
    return float(getattr(cfg, f"w_{name}"))


def cue_maps(small: np.ndarray, past: list[np.ndarray] | None, fov: np.ndarray,
             cfg: FusionConfig) -> dict[str, np.ndarray]:
    """The weighted cues of `cfg` that have something to say on this frame (and history)."""
    out: dict[str, np.ndarray] = {}
    for name in CUE_NAMES:
        if cue_weight(cfg, name) <= 0 or (name in HISTORY_CUES and not past):
            continue
        if name == "stump" and past and cfg.cues.stump_history > 0:
            m = persistent_stump_map(small, past, fov, cfg.cues)
        elif name == "stump":
            m = stump_map(small, fov, cfg.cues)
        elif name == "streak":
            m = streak_map(small, fov, cfg.cues)
        elif name == "refill":
            m = refill_map(small, past or [], fov, cfg.cues)
        else:
            m = outflow_map(small, past or [], fov, cfg.cues)
        if m is not None and float(m.max()) > 0:
            out[name] = m
    return out


def counted(cfg: FusionConfig, growth: np.ndarray | None,
            flow: np.ndarray | None) -> list[tuple[float, np.ndarray]]:
    """The history maps that take part: weighted, given, and with a peak above their floor."""
    maps = ((cfg.w_growth, growth, cfg.growth_min), (cfg.w_flow, flow, cfg.flow_min))
    return [(wt, m) for wt, m, floor in maps if m is not None and wt > 0 and float(m.max()) > floor]


def posterior(score: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    p = np.exp((score - score.max()) / temperature)
    return (p / p.sum()).astype(np.float32)


def confidence(post: np.ndarray, xy: tuple[float, float], radius: float, temperature: float = 1.0) -> float:
    """How clearly the fused evidence prefers the point to every place farther than 2 * radius
    from it: 1 - exp(-margin), margin = the fused score at the point minus the best score out
    there (score = temperature * log posterior + a constant). Two equally good places far apart
    give 0; one place a whole Red-Mask unit above everything else gives 0.63."""
    h, w = post.shape
    ys, xs = np.mgrid[0:h, 0:w]
    far = (xs - xy[0]) ** 2 + (ys - xy[1]) ** 2 > (2 * radius) ** 2
    if not far.any():
        return 0.0
    x, y = int(round(np.clip(xy[0], 0, w - 1))), int(round(np.clip(xy[1], 0, h - 1)))
    log_p = np.log(post.astype(np.float64) + 1e-300)
    margin = temperature * (log_p[y, x] - log_p[far].max())
    return float(1.0 - np.exp(-max(margin, 0.0)))


def peak(post: np.ndarray, radius: int) -> tuple[float, float]:
    """Sub-pixel arg-max of a posterior map (network pixels), as the network's own peak."""
    xy, _ = refined_peak(torch.from_numpy(np.log(post + 1e-12))[None, None], radius)
    return float(xy[0, 0]), float(xy[0, 1])


def posterior_mean(post: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[:post.shape[0], :post.shape[1]]
    return float((post * xs).sum()), float((post * ys).sum())


def point_estimate(m: EvidenceMaps, cfg: FusionConfig, radius: int) -> tuple[tuple[float, float], float]:
    """The point (network pixels) by `cfg.estimate` and its confidence."""
    top = peak(m.posterior, radius)
    conf = confidence(m.posterior, top, cfg.conf_radius * m.posterior.shape[1], cfg.temperature)
    if cfg.estimate == "mean":
        return posterior_mean(m.posterior), conf
    if cfg.estimate == "shrink":
        k = min(1.0, conf / cfg.shrink_full)
        (cx, cy), (px, py) = m.centre_xy, top
        return (cx + k * (px - cx), cy + k * (py - cy)), conf
    return top, conf


def candidates(score: np.ndarray, k: int, radius: float, temperature: float) -> list[tuple[float, float, float]]:
    """Up to `k` peaks (x, y, probability) of a fused score map, most probable first: peaks taken
    by score, each farther than 2 * `radius` from every higher one; probability = the mass of
    softmax(score / temperature) within `radius` of the peak (the chance that the source is
    there, once the temperature is calibrated; they sum to at most 1). A sharp peak can score
    highest and hold less mass than a broad one."""
    h, w = score.shape
    post = posterior(score, temperature).astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w]
    free = np.ones((h, w), bool)
    out: list[tuple[float, float, float]] = []
    while len(out) < k and free.any():
        y, x = np.unravel_index(int(np.argmax(np.where(free, score, -np.inf))), score.shape)
        d2 = (xs - x) ** 2 + (ys - y) ** 2
        out.append((float(x), float(y), float(post[d2 <= radius ** 2].sum())))
        free &= d2 > (2 * radius) ** 2
    return sorted(out, key=lambda c: -c[2])


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

    def maps(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
             exclude: np.ndarray | None = None) -> EvidenceMaps:
        check_frame(frame)
        w, h = self.base.cfg.input_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        fov = field_of_view(small)
        heat = None  # the network runs only when it counts
        if self.cfg.w_net > 0:
            heat = torch.sigmoid(self.base.heatmap(small)[0, 0]).cpu().numpy() * fov
        red = cv2.GaussianBlur(red_mask(small), (0, 0), self.cfg.red_sigma) * fov
        dark = None
        if self.cfg.w_dark > 0:
            dark = dark_blood_mask(small, fov).astype(np.float32)
            dark = cv2.GaussianBlur(dark, (0, 0), self.cfg.red_sigma) * fov
        support = support_map(small, self.cfg.evidence, fov)
        prior = rim_prior(fov, self.cfg.evidence.rim_fraction)
        growth = flow = None
        past = None
        wants = (self.cfg.w_growth > 0 or self.cfg.w_flow > 0 or any(cue_weight(self.cfg, c) > 0 for c in HISTORY_CUES)
                 or (self.cfg.w_stump > 0 and self.cfg.cues.stump_history > 0))
        if history and wants:  # costs; only when it counts
            past = [cv2.resize(check_frame(f), (w, h), interpolation=cv2.INTER_AREA) for f in history]
            if self.cfg.w_growth > 0:
                growth = growth_map(small, past, self.cfg.evidence, fov)
            if self.cfg.w_flow > 0:
                flow = flow_map(small, past, self.cfg.evidence, fov)
        cues = cue_maps(small, past, fov, self.cfg)
        centre, centre_xy = centre_prior(fov, self.cfg.prior_sigma, self.cfg.prior_shift)
        score = fuse(heat, red, support, prior, growth, self.cfg, flow, centre, dark, cues)
        if float(score.max() - score.min()) <= 1e-6:  # nothing weighed said anything: the middle of the view
            score = centre_prior(fov, FALLBACK_PRIOR, self.cfg.prior_shift)[0]
        keep = allowed(exclude, (w, h))
        if keep is not None and keep.any():  # old blood (`locate`'s exclude) scores as the least likely place
            score = np.where(keep, score, score.min())
        return EvidenceMaps(np.ones((h, w), np.float32) if heat is None else heat, red, dark, support, prior,
                            growth, flow, centre, centre_xy, posterior(score, self.cfg.temperature), cues)

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:
        t0 = time.perf_counter()
        m = self.maps(frame, history, exclude)
        self.last_maps = m
        (px, py), conf = point_estimate(m, self.cfg, self.base.cfg.refine_radius)
        w, h = self.base.cfg.input_size
        in_size = (frame.shape[1], frame.shape[0])
        x, y = to_input(np.array([px, py]), in_size, (w, h))
        self.timings_ms = {"source": (time.perf_counter() - t0) * 1e3}
        return Point(float(np.clip(x, 0, in_size[0] - 1)), float(np.clip(y, 0, in_size[1] - 1)), conf)

    def locate_candidates(self, frame: np.ndarray, history: list[np.ndarray] | None = None, k: int = 3,
                          exclude: np.ndarray | None = None) -> list[Point]:
        """Up to `k` separated peaks of the fused score, most probable first (one of them is
        `locate`'s arg-max before sub-pixel refinement), each with the probability that the
        source lies within `conf_radius` of it (`cand_temperature`, calibrated in docs/source.md)."""
        m = self.maps(frame, history, exclude)
        self.last_maps = m
        score = self.cfg.temperature * np.log(m.posterior.astype(np.float64) + 1e-300)
        w, h = self.base.cfg.input_size
        in_size = (frame.shape[1], frame.shape[0])
        out = []
        for px, py, p in candidates(score, k, self.cfg.conf_radius * w, self.cfg.cand_temperature):
            x, y = to_input(np.array([px, py]), in_size, (w, h))
            out.append(Point(float(np.clip(x, 0, in_size[0] - 1)), float(np.clip(y, 0, in_size[1] - 1)),
                             float(np.clip(p, 0.0, 1.0))))
        return out


def from_options(net: SourceLocator, **options: Any) -> EvidenceSourceLocator:
    """An `EvidenceSourceLocator` with FusionConfig / EvidenceConfig fields given by name."""
    ev = {k: options.pop(k) for k in list(options) if k in EvidenceConfig.__dataclass_fields__}
    cues = {k: options.pop(k) for k in list(options) if k in CueConfig.__dataclass_fields__}
    return EvidenceSourceLocator(net, FusionConfig(**options, evidence=EvidenceConfig(**ev), cues=CueConfig(**cues)))
