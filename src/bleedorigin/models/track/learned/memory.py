"""Explicit tracker state: fixed-size tensors passed into and out of `TrackOnSmall.step`.

Everything the online model remembers lives here (nothing hidden in the nn.Module), so a step
is a pure function of (frame, state) and exports to ONNX as tensors in / tensors out.
Memories are FIFOs with the newest slot last; `*_valid` masks empty slots.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class TrackState(NamedTuple):
    query: torch.Tensor        # (B, N, D) initial query (bilinear sample at the start point)
    ctx_mem: torch.Tensor      # (B, N, M, D) context memory: past decoded query embeddings
    ctx_valid: torch.Tensor    # (B, N, M) float 0/1
    sp_mem: torch.Tensor       # (B, N, M, D) spatial memory: local features at past predictions
    sp_valid: torch.Tensor     # (B, N, M) float 0/1 (0 when the point was predicted occluded)
    last_xy: torch.Tensor      # (B, N, 2) last prediction, model pixels
    since_refresh: torch.Tensor  # (B, N) float frames since the memory was last reset
    conf_ema: torch.Tensor     # (B, N) running confidence (adaptive refresh trigger)
    active: torch.Tensor       # (B, N) float 0/1: slot holds a tracked point
    template8: torch.Tensor    # (B, N, Cc) normalised stride-8 correlation feature at the (re)start point
    template4: torch.Tensor    # (B, N, C4) normalised stride-4 feature at the (re)start point


def empty_state(batch: int, points: int, dim: int, memory: int, corr_dim: int, fine_dim: int,
                device: torch.device | None = None) -> TrackState:
    z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
    return TrackState(z(batch, points, dim), z(batch, points, memory, dim), z(batch, points, memory),
                      z(batch, points, memory, dim), z(batch, points, memory), z(batch, points, 2),
                      z(batch, points), torch.ones(batch, points, device=device), z(batch, points),
                      z(batch, points, corr_dim), z(batch, points, fine_dim))


def push(mem: torch.Tensor, valid: torch.Tensor, item: torch.Tensor,
         item_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FIFO push of `item` (B, N, D) with validity (B, N): the oldest slot drops out."""
    mem = torch.cat([mem[:, :, 1:], item.unsqueeze(2)], dim=2)
    valid = torch.cat([valid[:, :, 1:], item_valid.unsqueeze(2)], dim=2)
    return mem, valid


def clear_where(mem: torch.Tensor, valid: torch.Tensor, reset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty the memories of points where `reset` (B, N) is 1."""
    keep = 1.0 - reset
    return mem * keep[..., None, None], valid * keep[..., None]


def refresh_due(since_refresh: torch.Tensor, conf_ema: torch.Tensor, conf: torch.Tensor,
                every: int, adaptive_drop: float, min_gap: int) -> torch.Tensor:
    """(B, N) float 0/1: periodic refresh every `every` frames (0 disables), or adaptive refresh
    when this frame's confidence falls `adaptive_drop` below its running mean (0 disables),
    at least `min_gap` frames after the previous one."""
    due = torch.zeros_like(since_refresh)
    if every > 0:
        due = (since_refresh >= every).float()
    if adaptive_drop > 0:
        falling = ((conf_ema - conf) > adaptive_drop) & (since_refresh >= min_gap)
        due = torch.maximum(due, falling.float())
    return due
