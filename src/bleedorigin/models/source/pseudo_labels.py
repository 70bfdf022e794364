"""Pseudo-labels for the source localizer (paper section 4.1.2) and the Gaussian targets of Eq. 5.

The annotated source on one frame is carried to its n = 10 neighbours with dense DIS optical
flow, chained frame to frame (backwards by default: the frames just before the labelled one).
Each pseudo point becomes a Gaussian heat-map target with a lower loss weight than the real one.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from bleedorigin.errors import InputError

_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def _sample_flow(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear flow (dx, dy) at a sub-pixel point."""
    h, w = flow.shape[:2]
    x, y = float(np.clip(xy[0], 0, w - 1)), float(np.clip(xy[1], 0, h - 1))
    x0, y0 = min(int(x), w - 2), min(int(y), h - 2)
    fx, fy = x - x0, y - y0
    top = flow[y0, x0] * (1 - fx) + flow[y0, x0 + 1] * fx
    bot = flow[y0 + 1, x0] * (1 - fx) + flow[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def dis_flow(preset: str = "medium") -> cv2.DISOpticalFlow:
    if preset not in _PRESETS:
        raise InputError(f"unknown DIS preset {preset!r}; expected one of {sorted(_PRESETS)}")
    return cv2.DISOpticalFlow_create(_PRESETS[preset])


def chain_flows(flows: list[np.ndarray], xy: tuple[float, float]) -> np.ndarray:
    """Follow a point through successive flow fields; (len(flows), 2), NaN once it leaves the image."""
    out = np.full((len(flows), 2), np.nan, np.float64)
    p = np.asarray(xy, np.float64)
    for k, flow in enumerate(flows):
        h, w = flow.shape[:2]
        p = p + _sample_flow(flow, p)
        if not (0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1):
            break
        out[k] = p
    return out


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
        flows.append(dis.calc(_gray(frames[t - direction]), _gray(frames[t]), None))
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
