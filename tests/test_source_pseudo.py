"""Source pseudo-labels: DIS propagation over the n previous frames and Gaussian targets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bleedorigin.errors import InputError
from bleedorigin.models.source.pseudo_labels import gaussian_heatmaps, propagate_point


def _moving_texture(n: int = 12, step: tuple[float, float] = (1.5, -1.0)) -> np.ndarray:
    """Smooth random texture translated by `step` px per frame (sub-pixel, via affine warp)."""
    import cv2
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (160, 200)).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, step[0] * t], [0, 1, step[1] * t]])
        g = cv2.warpAffine(base, m, (200, 160), borderMode=cv2.BORDER_REFLECT)
        frames.append(np.repeat(g[..., None], 3, 2).astype(np.uint8))
    return np.stack(frames)


def test_backward_propagation_follows_known_motion():
    frames = _moving_texture()
    ref, xy = 11, np.array([100.0, 80.0])
    out = propagate_point(frames, ref, tuple(xy), n=10, direction=-1)
    truth = xy[None] - np.arange(1, 11)[:, None] * np.array([1.5, -1.0])
    assert np.abs(out - truth).max() < 0.5


def test_rows_before_the_clip_are_nan():
    frames = _moving_texture(n=5)
    out = propagate_point(frames, 3, (100.0, 80.0), n=10, direction=-1)
    assert np.isfinite(out[:3]).all() and np.isnan(out[3:]).all()
    fwd = propagate_point(frames, 3, (100.0, 80.0), n=3, direction=1)
    assert np.isfinite(fwd[0]).all() and np.isnan(fwd[1:]).all()


@pytest.mark.parametrize("kwargs, match", [({"ref": 9}, "outside the clip"), ({"direction": 0}, "direction"),
                                           ({"preset": "slow"}, "DIS preset")])
def test_bad_arguments(kwargs, match):
    args = {"ref": 2, "xy": (10.0, 10.0), "n": 2, "direction": -1, "preset": "fast", **kwargs}
    with pytest.raises(InputError, match=match):
        propagate_point(_moving_texture(n=4), **args)


def test_gaussian_targets_peak_at_the_point():
    maps = gaussian_heatmaps(torch.tensor([[5.0, 7.0], [20.0, 3.0]]), (32, 16), sigma=2.0)
    assert maps.shape == (2, 1, 16, 32)
    assert float(maps[0, 0, 7, 5]) == pytest.approx(1.0)
    assert float(maps[1, 0, 3, 20]) == pytest.approx(1.0)
    assert float(maps[0, 0, 7, 7]) == pytest.approx(np.exp(-4 / 8), rel=1e-5)
