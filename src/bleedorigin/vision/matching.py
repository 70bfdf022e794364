"""Feature matching between two frames around a point (pseudo-labels, paper Fig. 8).

`Matcher.match(img0, img1, center, radius, min_score)` returns `Matches` whose source points
lie within `radius` px of `center` in img0, with a similarity score in [0, 1] above
`min_score`. OpenCV SIFT (default) and ORB need nothing but OpenCV; other matchers (XFeat, ...)
plug in with `register_matcher` and are only built when their weights exist locally (never a
download).
"""
from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bleedorigin.errors import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass
class Matches:
    src: np.ndarray    # (M, 2) points in img0 (x, y)
    dst: np.ndarray    # (M, 2) matched points in img1
    score: np.ndarray  # (M,) similarity in [0, 1]

    def __len__(self) -> int:
        return int(len(self.score))

    def displacement(self) -> np.ndarray | None:
        """Score-weighted median displacement dst - src, or None without matches."""
        if len(self) == 0:
            return None
        d = self.dst - self.src
        order = np.argsort(d, axis=0)
        out = np.empty(2)
        for j in range(2):
            w = self.score[order[:, j]]
            c = np.cumsum(w)
            out[j] = d[order[np.searchsorted(c, c[-1] / 2), j], j]
        return out


def _gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


class Matcher(ABC):
    name = "matcher"

    @abstractmethod
    def match(self, img0: np.ndarray, img1: np.ndarray, center: tuple[float, float] | None = None,
              radius: float = 50.0, min_score: float = 0.7) -> Matches:
        """Matches from img0 (sources within `radius` of `center`) to img1."""


class OpenCVMatcher(Matcher):
    """SIFT (cosine similarity of L2-normalised descriptors) or ORB (1 - Hamming / bits), with
    mutual nearest neighbours and Lowe's ratio test."""

    def __init__(self, method: str = "sift", max_features: int = 2000, ratio: float = 0.9):
        if method not in ("sift", "orb"):
            raise ConfigError(f"unknown OpenCV matcher {method!r}; expected sift or orb")
        self.name = method
        self.method, self.ratio = method, ratio
        self.det = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=0.01) if method == "sift" \
            else cv2.ORB_create(nfeatures=max_features, fastThreshold=5, edgeThreshold=15)

    def _detect(self, img: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        kps, desc = self.det.detectAndCompute(_gray(img), mask)
        pts = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
        return pts, desc

    def _similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.method == "sift":
            a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-9)
            b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-9)
            return a @ b.T
        bits = a.shape[1] * 8
        ua, ub = np.unpackbits(a, axis=1).astype(np.float32), np.unpackbits(b, axis=1).astype(np.float32)
        ham = ua @ (1 - ub).T + (1 - ua) @ ub.T
        return 1.0 - ham / bits

    def match(self, img0: np.ndarray, img1: np.ndarray, center: tuple[float, float] | None = None,
              radius: float = 50.0, min_score: float = 0.7) -> Matches:
        mask = None
        if center is not None:
            mask = np.zeros(img0.shape[:2], np.uint8)
            cv2.circle(mask, (int(round(center[0])), int(round(center[1]))), int(np.ceil(radius)), 255, -1)
        p0, d0 = self._detect(img0, mask)
        p1, d1 = self._detect(img1, None)
        empty = Matches(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0))
        if d0 is None or d1 is None or len(p0) == 0 or len(p1) < 2:
            return empty
        if center is not None:  # the mask is a pixel disc: enforce the exact radius
            keep = np.linalg.norm(p0 - np.asarray(center, float), axis=1) <= radius
            p0, d0 = p0[keep], d0[keep]
            if len(p0) == 0:
                return empty
        sim = self._similarity(d0, d1)
        j = sim.argmax(1)
        best = sim[np.arange(len(j)), j]
        second = np.partition(sim, -2, axis=1)[:, -2]
        mutual = sim.argmax(0)[j] == np.arange(len(j))
        # ratio test on distances (1 - similarity): the best must be clearly better than the second
        ok = mutual & (best > min_score) & ((1 - best) < self.ratio * (1 - second) + 1e-9)
        return Matches(p0[ok], p1[j[ok]], best[ok].astype(np.float64))


_MATCHERS: dict[str, Callable[..., Matcher]] = {
    "sift": lambda **kw: OpenCVMatcher("sift", **kw),
    "orb": lambda **kw: OpenCVMatcher("orb", **kw),
}


def register_matcher(name: str, factory: Callable[..., Matcher]) -> None:
    """Make `get_matcher(name)` build a custom matcher (e.g. a learned one with local weights)."""
    _MATCHERS[name] = factory


def get_matcher(name: str = "sift", **kwargs: Any) -> Matcher:
    if name == "xfeat" and name not in _MATCHERS:
        return _xfeat(**kwargs)
    if name not in _MATCHERS:
        raise ConfigError(f"unknown matcher {name!r}; known: {', '.join(sorted(_MATCHERS))}, xfeat")
    return _MATCHERS[name](**kwargs)


class _HubMatcher(Matcher):
    """Adapter for a torch.hub XFeat model (`match_xfeat(img0, img1, top_k)` -> (pts0, pts1))."""

    name = "xfeat"

    def __init__(self, model: Any, top_k: int = 4096):
        self.model, self.top_k = model, top_k

    def match(self, img0: np.ndarray, img1: np.ndarray, center: tuple[float, float] | None = None,
              radius: float = 50.0, min_score: float = 0.7) -> Matches:
        p0, p1 = self.model.match_xfeat(img0[..., ::-1].copy(), img1[..., ::-1].copy(), top_k=self.top_k)
        p0, p1 = np.asarray(p0, float).reshape(-1, 2), np.asarray(p1, float).reshape(-1, 2)
        keep = np.ones(len(p0), bool) if center is None else \
            np.linalg.norm(p0 - np.asarray(center, float), axis=1) <= radius
        # XFeat's matcher already applies its own mutual/threshold test: report score 1
        return Matches(p0[keep], p1[keep], np.ones(int(keep.sum())))


def _xfeat(repo: str | None = None, **kwargs: Any) -> Matcher:
    """XFeat from a local torch.hub checkout ($BLEEDORIGIN_XFEAT or the hub cache); never downloads."""
    import torch
    cands = [repo, os.environ.get("BLEEDORIGIN_XFEAT"),
             str(Path(torch.hub.get_dir()) / "verlab_accelerated_features_main")]
    for c in cands:
        if c and (Path(c) / "hubconf.py").is_file():
            model = torch.hub.load(c, "XFeat", source="local", pretrained=True, top_k=4096)
            return _HubMatcher(model, **kwargs)
    raise InputError("XFeat not found locally (set BLEEDORIGIN_XFEAT to a checkout with its weights); "
                     "use matcher 'sift' or 'orb'")
