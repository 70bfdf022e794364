"""Multi-scale deformable attention (Deformable-DETR) in plain PyTorch: CPU and CUDA, no extension.

Parameter names and the forward contract follow mmcv's `MultiScaleDeformableAttention`, which
Track-On's checkpoints were saved with: `sampling_offsets`, `attention_weights`, `value_proj`,
`output_proj`, and the output *includes the residual* (`output_proj(...) + identity`, identity
being the query unless given).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn(value: torch.Tensor, shapes: Sequence[tuple[int, int]], locations: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
    """value (B, S, heads, d); locations (B, Q, heads, levels, points, 2) in [0, 1] (x, y);
    weights (B, Q, heads, levels, points) -> (B, Q, heads * d). Bilinear, zeros outside."""
    b, _, heads, d = value.shape
    _, q, _, levels, points, _ = locations.shape
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].flatten(2).transpose(1, 2).reshape(b * heads, d, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # (B*heads, Q, points, 2)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    w_ = weights.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * w_).sum(-1)  # (B*heads, d, Q)
    return out.view(b, heads * d, q).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    def __init__(self, dim: int = 256, heads: int = 8, levels: int = 4, points: int = 4, value_ratio: float = 1.0,
                 dropout: float = 0.0):
        super().__init__()
        self.heads, self.levels, self.points = heads, levels, points
        vdim = int(dim * value_ratio)
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, vdim)
        self.output_proj = nn.Linear(vdim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, value: torch.Tensor, reference_points: torch.Tensor,
                shapes: Sequence[tuple[int, int]], identity: torch.Tensor | None = None) -> torch.Tensor:
        """query (B, Q, C); value (B, S, C) with S = sum(h*w of `shapes`); reference_points
        (B, Q, levels or 1, 2) in [0, 1] (x, y)."""
        identity = query if identity is None else identity
        b, q, _ = query.shape
        v = self.value_proj(value).view(b, value.shape[1], self.heads, -1)
        off = self.sampling_offsets(query).view(b, q, self.heads, self.levels, self.points, 2)
        attn = self.attention_weights(query).view(b, q, self.heads, self.levels * self.points).softmax(-1)
        attn = attn.view(b, q, self.heads, self.levels, self.points)
        norm = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype, device=query.device)
        loc = reference_points[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
        out = self.output_proj(ms_deform_attn(v, shapes, loc, attn))
        return self.dropout(out) + identity
