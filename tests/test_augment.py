"""Clip augmentation: one transform for the whole clip, points follow the flips, blood stays red."""
from __future__ import annotations

import numpy as np

from bleedorigin.training.augment import ClipAugment
from bleedorigin.vision.color import BLOOD_THRESHOLD, red_mask

from conftest import make_tiny_frames


def test_flips_move_points_with_the_content():
    frames, path = make_tiny_frames(n=12, onset=2)
    aug = ClipAugment(flip_h=True, flip_v=True)
    out = aug.frames(frames)
    h, w = frames.shape[1:3]
    x, y = aug.point(tuple(path[-1]), (w, h))
    assert tuple(out[-1, int(round(y)), int(round(x))]) == tuple(frames[-1, int(path[-1][1]), int(path[-1][0])])


def test_same_transform_on_every_frame_and_blood_stays_red():
    frames, path = make_tiny_frames(n=12, onset=2)
    rng = np.random.default_rng(3)
    for _ in range(10):
        aug = ClipAugment.random(rng, 1.0)
        out = aug.frames(frames)
        assert out.shape == frames.shape and out.dtype == np.uint8
        # a static frame pair stays identical apart from the noise: the transform is clip-wide
        noiseless = ClipAugment(**{**aug.__dict__, "noise_std": 0.0}).frames(frames[[0, 0]])
        assert np.array_equal(noiseless[0], noiseless[1])
        h, w = frames.shape[1:3]
        x, y = aug.point(tuple(path[-1]), (w, h))
        assert red_mask(out[-1])[int(round(y)), int(round(x))] > BLOOD_THRESHOLD
