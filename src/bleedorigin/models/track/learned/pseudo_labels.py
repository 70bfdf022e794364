"""Pseudo-labels between sparse annotations (paper section 4.2, Fig. 8) and the sparse-label loss.

For a segment from annotated frame a to the next annotated frame b (30 frames in the benchmark):
1. match features around the annotated point of frame a into frame b (sources within r = 50 px,
   score > 0.7) -> the matched end point = annotated point + median match displacement;
2. track the point forward over frames a..b (any PointTrackerBase; pyramidal LK by default);
3. Kalman/RTS-smooth the forward track with the end point as a near-exact measurement, so the
   pseudo-track runs smoothly into it; corrections are capped at r px.
The end point is the annotation of frame b when it exists, else the matched one.
Loss for sparse-label fine-tuning: 0.6 * Huber(GT frames) + 0.4 * mean Huber(pseudo frames).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from bleedorigin.models.base import PointTrackerBase
from bleedorigin.vision.kalman import rts_smooth
from bleedorigin.vision.matching import Matcher, get_matcher

log = logging.getLogger(__name__)

GT_WEIGHT, PSEUDO_WEIGHT = 0.6, 0.4


@dataclass
class PseudoTrack:
    xy: np.ndarray             # (T, 2) pseudo-labels for frames a..b (first = annotation)
    forward: np.ndarray        # (T, 2) raw forward track
    end_xy: np.ndarray | None  # end point used (annotation of b, or matched)
    matched_end: np.ndarray | None  # end point from feature matching (None: no match)
    num_matches: int
    valid: bool                # False when the forward track ended more than r from the end point


def lk_track(frames: np.ndarray, start: tuple[float, float], win: int = 21) -> np.ndarray:
    """Pyramidal Lucas-Kanade from frames[0] at `start` -> (T, 2) (holds position on failure)."""
    out = np.empty((len(frames), 2))
    out[0] = start
    prev = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    p = np.array([[start]], np.float32)
    for t in range(1, len(frames)):
        cur = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
        q, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p, None, winSize=(win, win), maxLevel=3)
        if st is not None and st[0, 0] == 1 and np.isfinite(q).all():
            p = q
        out[t] = p[0, 0]
        prev = cur
    return out


def matched_end_point(m: Matcher, img0: np.ndarray, img1: np.ndarray, p0: tuple[float, float],
                      radius: float = 50.0, min_score: float = 0.7) -> tuple[np.ndarray | None, int]:
    """p0 moved by the median displacement of the matches found within `radius` of it."""
    matches = m.match(img0, img1, center=p0, radius=radius, min_score=min_score)
    d = matches.displacement()
    return (None if d is None else np.asarray(p0, float) + d), len(matches)


def pseudo_label_segment(frames: np.ndarray, start: tuple[float, float], end: tuple[float, float] | None = None,
                         tracker: PointTrackerBase | None = None, matcher: Matcher | None = None,
                         radius: float = 50.0, min_score: float = 0.7, meas_var: float = 4.0,
                         process_var: float = 0.05) -> PseudoTrack:
    """Pseudo-labels for frames[0..T-1] given the annotated `start` (frame 0) and optional `end`."""
    matcher = matcher or get_matcher("sift")
    matched, n_matches = matched_end_point(matcher, frames[0], frames[-1], start, radius, min_score)
    if tracker is None:
        fwd = lk_track(frames, start)
    else:
        tracker.start(frames[0], start, 0)
        fwd = np.array([start] + [(p.x, p.y) for p in (tracker.step(f) for f in frames[1:])], float)
    end_xy = np.asarray(end, float) if end is not None else matched
    if end_xy is None:
        return PseudoTrack(rts_smooth(fwd, meas_var, process_var), fwd, None, matched, n_matches, True)
    meas = fwd.copy()
    var = np.full(len(fwd), meas_var)
    meas[0], var[0] = start, 1e-6   # the annotation itself
    meas[-1], var[-1] = end_xy, 1e-6  # pin the end to the trusted end point
    smooth = rts_smooth(meas, var, process_var)
    # never move a frame's label more than r from its forward-tracked position (Fig. 8: radius r)
    delta = smooth - fwd
    norm = np.linalg.norm(delta, axis=1, keepdims=True)
    capped = fwd + delta * np.minimum(1.0, radius / np.maximum(norm, 1e-9))
    capped[-1] = smooth[-1] if norm[-1, 0] <= radius else capped[-1]
    valid = bool(np.linalg.norm(fwd[-1] - end_xy) <= radius)
    return PseudoTrack(capped, fwd, end_xy, matched, n_matches, valid)


def pseudo_label_clip(frames: np.ndarray, labels: dict[int, list[tuple[float, float] | None]],
                      tracker: PointTrackerBase | None = None, matcher: Matcher | None = None,
                      radius: float = 50.0, min_score: float = 0.7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense targets for a sparsely labelled clip.

    Returns gt (T, N, 2), gt_mask (T, N), pseudo (T, N, 2), pseudo_mask (T, N): the annotated
    frames in gt, the pseudo-labelled frames strictly between two annotations in pseudo.
    """
    t_len = len(frames)
    keys = sorted(k for k in labels if 0 <= k < t_len)
    n = max(len(v) for v in labels.values())
    gt = np.zeros((t_len, n, 2), np.float32)
    gt_mask = np.zeros((t_len, n), bool)
    pseudo = np.zeros((t_len, n, 2), np.float32)
    pseudo_mask = np.zeros((t_len, n), bool)
    matcher = matcher or get_matcher("sift")
    for k in keys:
        for i, p in enumerate(labels[k]):
            if p is not None:
                gt[k, i], gt_mask[k, i] = p, True
    for a, b in zip(keys[:-1], keys[1:]):
        for i in range(n):
            pa = labels[a][i] if i < len(labels[a]) else None
            pb = labels[b][i] if i < len(labels[b]) else None
            if pa is None or b - a < 2:
                continue
            seg = pseudo_label_segment(frames[a:b + 1], tuple(pa), None if pb is None else tuple(pb),
                                       tracker, matcher, radius, min_score)
            if seg.valid:
                pseudo[a + 1:b, i] = seg.xy[1:-1]
                pseudo_mask[a + 1:b, i] = True
    return gt, gt_mask, pseudo, pseudo_mask


def sparse_label_loss(pred: torch.Tensor, gt: torch.Tensor, gt_mask: torch.Tensor, pseudo: torch.Tensor,
                      pseudo_mask: torch.Tensor, beta: float = 4.0) -> torch.Tensor:
    """0.6 * Huber on annotated frames + 0.4 * mean Huber on pseudo-labelled frames (px/8)."""
    def huber(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.float()
        err = F.smooth_l1_loss(pred, target, beta=beta, reduction="none").sum(-1) / 8.0
        return (err * m).sum() / m.sum().clamp(min=1)
    return GT_WEIGHT * huber(gt, gt_mask) + PSEUDO_WEIGHT * huber(pseudo, pseudo_mask)
