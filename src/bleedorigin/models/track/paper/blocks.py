"""Attention blocks shared by Track-On's decoder, memories and heads (post-norm, as released)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.track.paper.deform_attn import MSDeformAttn


class MHABlock(nn.Module):
    """x = LN(x + MHA(q, k, v)); x = LN(x + FFN(x)); FFN D -> 4D -> D with ReLU."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.1):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, k: torch.Tensor | None = None, v: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        k = q if k is None else k
        v = k if v is None else v
        q = self.norm1(q + self.dropout1(self.mha(q, k, v, key_padding_mask=mask, need_weights=False)[0]))
        return self.norm2(q + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(q))))))


class DeformBlock(nn.Module):
    """The same with multi-scale deformable attention (8 heads, 4 points per level).

    The deformable attention returns its input added back (mmcv's contract), so the residual
    here counts the query twice; the released weights were trained that way.
    """

    def __init__(self, dim: int, heads: int, levels: int, dropout: float = 0.1):
        super().__init__()
        self.mha = MSDeformAttn(dim, heads, levels, 4, dropout=dropout)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, value: torch.Tensor, ref: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        q = self.norm1(q + self.dropout1(self.mha(q, value, ref, shapes)))
        return self.norm2(q + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(q))))))


class TokenDecoder(nn.Module):
    """h_t from f_t: three residual Linear+ReLU steps, then a Linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear1, self.linear2, self.linear3, self.linear4 = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin in (self.linear1, self.linear2, self.linear3):
            x = F.relu(lin(x) + x)
        return self.linear4(x)


def pyramid(f: torch.Tensor, hw: tuple[int, int], levels: int = 4) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(B, P, C) stride-S tokens -> the tokens of `levels` avg-pooled levels (x1, x2, x4, x8)
    concatenated, and their shapes."""
    b, _, c = f.shape
    h, w = hw
    m = f.view(b, h, w, c).permute(0, 3, 1, 2)
    toks, shapes = [], []
    for i in range(levels):
        k = 2 ** i
        lvl = F.avg_pool2d(m, k, k) if k > 1 else m
        shapes.append((h // k, w // k))
        toks.append(lvl.flatten(2).transpose(1, 2))
    return torch.cat(toks, 1), shapes


def normalise_points(p: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixel (x, y) in the model's H x W input -> [0, 1], clamped."""
    scale = torch.tensor([size[1], size[0]], dtype=p.dtype, device=p.device)
    return (p / scale).clamp(0, 1)
