"""Pseudo-labels for the source localizer (paper section 4.1.2) and the Gaussian targets of Eq. 5.

The annotated source on one frame is carried to its n = 10 neighbours with dense DIS optical
flow, chained frame to frame (backwards by default: the frames just before the labelled one).
Each pseudo point becomes a Gaussian heat-map target with a lower loss weight than the real one.
"""
from __future__ import annotations

import numpy as np
import torch

from bleedorigin.errors import InputError
from bleedorigin.vision.flow import chain_flows, dis_flow, to_gray


def propagate_point(frames: np.ndarray, ref: int, xy: tuple[float, float], n: int = 10,
                    direction: int = -1, preset: str = "medium") -> np.ndarray:
    """Positions (n, 2) of point `xy` (pixels of frame `ref`) on frames ref+direction*k, k=1..n.

    Chained DIS flow between consecutive frames. Rows for frames outside the clip, or once the
    point has left the image, are NaN.
    """
    if direction not in (-1, 1):
        raise InputError(f"direction must be -1 or 1, got {direction}")
    if not 0 <= ref < len(frames):
        raise InputError(f"reference frame {ref} outside the clip of {len(frames)} frames")
    dis = dis_flow(preset)
    flows = []
    for k in range(1, n + 1):
        t = ref + direction * k
        if not 0 <= t < len(frames):
            break
        # displacement from frame t-direction to frame t, on the former's grid
        flows.append(dis.calc(to_gray(frames[t - direction]), to_gray(frames[t]), None))
    out = np.full((n, 2), np.nan, np.float64)
    out[:len(flows)] = chain_flows(flows, xy)
    return out


def gaussian_heatmaps(xy: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """(B, 2) points in pixels -> (B, 1, H, W) Gaussians with peak 1; size is (W, H)."""
    w, h = size
    xs = torch.arange(w, dtype=xy.dtype, device=xy.device)
    ys = torch.arange(h, dtype=xy.dtype, device=xy.device)
    gx = torch.exp(-((xs[None] - xy[:, :1]) ** 2) / (2 * sigma ** 2))  # (B, W)
    gy = torch.exp(-((ys[None] - xy[:, 1:]) ** 2) / (2 * sigma ** 2))  # (B, H)
    return (gy[:, :, None] * gx[:, None, :])[:, None]
