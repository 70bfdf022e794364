"""Pseudo-labels between sparse annotations: matcher radius, Kalman/RTS towards the end point, loss."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bleedorigin.models.track.learned.pseudo_labels import (PseudoTrack, pseudo_label_clip, pseudo_label_segment,
                                                      sparse_label_loss)
from bleedorigin.vision.kalman import rts_smooth
from bleedorigin.vision.matching import get_matcher


def textured(seed: int = 0, size=(360, 300)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (size[1] // 6, size[0] // 6, 3), dtype=np.uint8), size,
                      interpolation=cv2.INTER_CUBIC)
    fine = rng.integers(0, 60, (size[1], size[0], 1), dtype=np.uint8)
    return cv2.GaussianBlur(np.clip(base.astype(int) + fine, 0, 255).astype(np.uint8), (0, 0), 0.8)


def shifted_clip(n: int = 31, shift=(15.0, 9.0)) -> np.ndarray:
    """Crops of one texture sliding by `shift` in total (content moves by +shift)."""
    tex = textured()
    out = []
    for t in range(n):
        a = t / (n - 1)
        m = np.float32([[1, 0, a * shift[0] - 40], [0, 1, a * shift[1] - 40]])
        out.append(cv2.warpAffine(tex, m, (256, 192), flags=cv2.INTER_LINEAR))
    return np.stack(out)


@pytest.mark.parametrize("method", ["sift", "orb"])
def test_matcher_returns_matches_within_radius(method):
    clip = shifted_clip()
    center, r = (120.0, 90.0), 50.0
    m = get_matcher(method).match(clip[0], clip[-1], center=center, radius=r, min_score=0.7)
    assert len(m) >= 3
    assert (np.linalg.norm(m.src - np.array(center), axis=1) <= r).all()
    assert (m.score > 0.7).all()
    d = m.displacement()
    assert d is not None and np.allclose(d, (15.0, 9.0), atol=1.5)


def test_kalman_pins_end_and_smooths():
    t = np.arange(31.0)
    truth = np.stack([t * 2.0, t * 1.0], -1)
    noisy = truth + np.random.default_rng(0).normal(0, 2, truth.shape)
    var = np.full(31, 4.0)
    noisy[-1], var[-1] = truth[-1], 1e-6
    s = rts_smooth(noisy, var)
    assert np.allclose(s[-1], truth[-1], atol=1e-2)
    assert np.abs(s - truth).mean() < np.abs(noisy - truth).mean()


def test_segment_ends_at_matched_end_point_and_stays_within_r():
    clip = shifted_clip()
    start = (120.0, 90.0)
    seg = pseudo_label_segment(clip, start, end=None, radius=50.0, min_score=0.7)
    assert isinstance(seg, PseudoTrack) and seg.valid and seg.num_matches >= 3
    assert seg.matched_end is not None
    assert np.allclose(seg.xy[-1], seg.matched_end, atol=0.05)
    assert np.allclose(seg.matched_end, (135.0, 99.0), atol=1.5)
    assert np.allclose(seg.xy[0], start, atol=0.05)
    assert (np.linalg.norm(seg.xy - seg.forward, axis=1) <= 50.0 + 1e-6).all()
    truth = np.array(start) + np.linspace(0, 1, len(clip))[:, None] * np.array([15.0, 9.0])
    assert np.abs(seg.xy - truth).max() < 2.0


def test_segment_with_wrong_forward_track_is_capped_and_flagged():
    class Stuck:  # a tracker that never moves
        def start(self, frame, point, frame_index=0):
            self.p = point

        def step(self, frame):
            from bleedorigin.types import TrackPoint
            return TrackPoint(0, self.p[0], self.p[1], 1.0)

    clip = shifted_clip()
    seg = pseudo_label_segment(clip, (120.0, 90.0), end=(200.0, 150.0), tracker=Stuck(), radius=50.0)
    assert not seg.valid  # forward track ended ~100 px from the end point
    assert (np.linalg.norm(seg.xy - seg.forward, axis=1) <= 50.0 + 1e-6).all()


def test_pseudo_label_clip_fills_between_annotations():
    clip = shifted_clip()
    labels = {0: [(120.0, 90.0), None], 30: [(135.0, 99.0), (10.0, 10.0)]}
    gt, gt_mask, ps, ps_mask = pseudo_label_clip(clip, labels)
    assert gt_mask[0].tolist() == [True, False] and gt_mask[30].tolist() == [True, True]
    assert ps_mask[1:30, 0].all() and not ps_mask[:, 1].any() and not ps_mask[[0, 30]].any()
    assert np.abs(ps[15, 0] - (127.5, 94.5)).max() < 2.0


def test_sparse_label_loss_weights():
    pred = torch.zeros(4, 1, 2)
    gt = torch.zeros(4, 1, 2)
    gt_mask = torch.tensor([[True], [False], [False], [True]])
    pseudo = torch.zeros(4, 1, 2)
    pseudo_mask = ~gt_mask
    assert float(sparse_label_loss(pred, gt, gt_mask, pseudo, pseudo_mask)) == 0.0
    pseudo[1:3, 0, 0] = 16.0  # Huber(16, beta=4) = 16 - 2 = 14 px -> 14 / 8
    assert float(sparse_label_loss(pred, gt, gt_mask, pseudo, pseudo_mask)) == pytest.approx(0.4 * 14 / 8)
    gt[0, 0, 1] = 1.0  # 0.5 * 1 / 4 = 0.125 px on one of two GT frames
    assert float(sparse_label_loss(pred, gt, gt_mask, pseudo, pseudo_mask)) == pytest.approx(
        0.6 * 0.125 / 8 / 2 + 0.4 * 14 / 8)
