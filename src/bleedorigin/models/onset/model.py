"""Onset detector network (paper section 4.1.1, Figure 5): MDCFM + MDG + window transformer.

Pure nn.Module code, tensors in and out. Per-frame inputs are prepared in numpy by
`prep.py`-style helpers in predictor.py (low-res RGB+HSV, DIS flow), each (B, C, h, w):
  cur, prev    (B, 6, h, w)  RGB and HSV (hue rotated so red is not at the wrap), in [0, 1]
  flow         (B, 3, h, w)  DIS flow prev -> cur (dx, dy, magnitude), scaled
  mem          (B, M, 6, h, w) clean-view keyframes chosen with MDCFM (see KeyframeMemory)
  mem_flow     (B, M, 3, h, w) flow keyframe -> cur
The window model sees N per-frame embeddings and returns (delta, confidence) logits.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.config import OnsetConfig

APPEAR_CH = 6  # RGB + HSV
FLOW_CH = 3    # dx, dy, magnitude


def _conv_stack(cin: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Stride-2 3x3 conv + BN + ReLU per width (three layers in the paper's modules)."""
    layers: list[nn.Module] = []
    for cout in widths:
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*layers)


def _pool(x: torch.Tensor) -> torch.Tensor:
    # mean keeps global change, max keeps a small new red spot
    return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)


class MDCFM(nn.Module):
    """Multi-Domain Confidence-based Frame Memory scorer: for the pair (I_{t-1}, I_t) returns
    logits of (colour change, motion) confidences. Both below threshold -> I_{t-1} is clean."""

    def __init__(self, cfg: OnsetConfig):
        super().__init__()
        self.color = _conv_stack(APPEAR_CH, cfg.mdcfm_channels)
        self.flow = _conv_stack(FLOW_CH, cfg.mdcfm_channels)
        c = cfg.mdcfm_channels[-1]
        self.fc = nn.Linear(4 * c, 2)

    def forward(self, prev: torch.Tensor, cur: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        # half resolution is plenty for "did something change" and keeps this cheap
        d = F.avg_pool2d((cur - prev).abs(), 2)
        f = F.avg_pool2d(flow, 2)
        return self.fc(torch.cat([_pool(self.color(d)), _pool(self.flow(f))], 1))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation over the stacked domain maps."""

    def __init__(self, ch: int, reduction: int = 4):
        super().__init__()
        hid = max(4, ch // reduction)
        self.fc = nn.Sequential(nn.Linear(ch, hid), nn.ReLU(inplace=True), nn.Linear(hid, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc(x.mean((2, 3))))
        return x * w[:, :, None, None]


class MDG(nn.Module):
    """Multi-Domain Gated attention: difference maps of I_t against I_{t-1} and each keyframe in
    RGB, HSV and flow; channel attention; one conv branch per domain; gated fusion."""

    def __init__(self, cfg: OnsetConfig):
        super().__init__()
        self.cfg = cfg
        comps = 1 + (cfg.memory_size if cfg.use_mdcfm else 0)
        self.comps = comps
        self.domains = ["rgb"] if cfg.rgb_only else ["rgb", "hsv", "flow"]
        # rgb/hsv branches also see the current frame's appearance (blood is absolute red)
        self.in_ch = {"rgb": 3 * comps + 3, "hsv": 3 * comps + 3, "flow": 3 * comps}
        total = sum(self.in_ch[d] for d in self.domains)
        self.use_mdg = cfg.use_mdg
        if cfg.use_mdg:
            self.attn = ChannelAttention(total)
            self.branches = nn.ModuleList(_conv_stack(self.in_ch[d], cfg.channels) for d in self.domains)
            self.proj = nn.ModuleList(nn.Linear(2 * cfg.channels[-1], cfg.branch_dim) for _ in self.domains)
            self.gate = nn.Linear(len(self.domains) * cfg.branch_dim, len(self.domains))
        else:  # ablation: one plain conv stack on all maps, no attention, no gates
            self.plain = _conv_stack(total, cfg.channels)
            self.plain_proj = nn.Linear(2 * cfg.channels[-1], cfg.branch_dim)
        self.out = nn.Sequential(nn.Linear(cfg.branch_dim, cfg.d_model), nn.LayerNorm(cfg.d_model))

    def domain_maps(self, cur: torch.Tensor, prev: torch.Tensor, flow: torch.Tensor,
                    mem: torch.Tensor | None, mem_flow: torch.Tensor | None) -> list[torch.Tensor]:
        refs = [prev]
        flows = [flow]
        if self.comps > 1:
            assert mem is not None and mem_flow is not None
            refs += list(mem.unbind(1))
            flows += list(mem_flow.unbind(1))
        diffs = [cur - r for r in refs]
        maps = {"rgb": torch.cat([cur[:, :3]] + [d[:, :3] for d in diffs], 1),
                "hsv": torch.cat([cur[:, 3:]] + [d[:, 3:] for d in diffs], 1),
                "flow": torch.cat(flows, 1)}
        return [maps[d] for d in self.domains]

    def forward(self, cur: torch.Tensor, prev: torch.Tensor, flow: torch.Tensor,
                mem: torch.Tensor | None = None, mem_flow: torch.Tensor | None = None) -> torch.Tensor:
        maps = self.domain_maps(cur, prev, flow, mem, mem_flow)
        x = torch.cat(maps, 1)
        if not self.use_mdg:
            return self.out(self.plain_proj(_pool(self.plain(x))))
        x = self.attn(x)
        parts = torch.split(x, [m.shape[1] for m in maps], 1)
        feats = [p(_pool(b(m))) for m, b, p in zip(parts, self.branches, self.proj)]
        gates = torch.softmax(self.gate(torch.cat(feats, 1)), 1)
        fused = sum(g[:, None] * f for g, f in zip(gates.unbind(1), feats))
        return self.out(fused)


def sinusoidal(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe


class WindowTransformer(nn.Module):
    """N frame embeddings + positional encoding -> 4-layer 8-head encoder -> (delta, conf) logits."""

    def __init__(self, cfg: OnsetConfig):
        super().__init__()
        d = cfg.d_model
        self.register_buffer("pe", sinusoidal(cfg.window, d), persistent=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerEncoderLayer(d, cfg.num_heads, cfg.ff_dim, cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        # "two identical fully connected layers", one per output, on the CLS token joined with
        # mean- and max-pooled frame tokens (max pooling lets one bleeding frame show through;
        # with CLS alone the model collapsed to a constant in our first runs)
        self.delta_head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 1))
        self.conf_head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 1))

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """emb (B, N, D) -> delta_logit (B,), conf_logit (B,)."""
        x = emb + self.pe[: emb.shape[1]]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        y = self.norm(self.encoder(x))
        h = torch.cat([y[:, 0], y[:, 1:].mean(1), y[:, 1:].amax(1)], 1)
        return self.delta_head(h)[:, 0], self.conf_head(h)[:, 0]


class OnsetNet(nn.Module):
    """The whole onset model. Use `frame_embedding` per frame and `window` per sliding window."""

    def __init__(self, cfg: OnsetConfig):
        super().__init__()
        self.cfg = cfg
        self.mdcfm = MDCFM(cfg) if cfg.use_mdcfm else None
        self.mdg = MDG(cfg)
        self.temporal = WindowTransformer(cfg)
        # training aid only: per-frame "blood visible" logit on the MDG embedding
        self.frame_head = nn.Linear(cfg.d_model, 1)

    @property
    def memory_size(self) -> int:
        return self.cfg.memory_size if self.cfg.use_mdcfm else 0

    def clean_logits(self, prev: torch.Tensor, cur: torch.Tensor, flow: torch.Tensor) -> torch.Tensor | None:
        """(B, 2) MDCFM logits (colour, motion); None when the memory is ablated."""
        return None if self.mdcfm is None else self.mdcfm(prev, cur, flow)

    def frame_embedding(self, cur: torch.Tensor, prev: torch.Tensor, flow: torch.Tensor,
                        mem: torch.Tensor | None = None, mem_flow: torch.Tensor | None = None) -> torch.Tensor:
        return self.mdg(cur, prev, flow, mem, mem_flow)

    def window(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.temporal(emb)

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.temporal(emb)


def decode_onset(deltas: torch.Tensor | list[float], confs: torch.Tensor | list[float],
                 starts: list[int], window: int, threshold: float = 0.5) -> int | None:
    """Eq. 2: the earliest window start t with conf > threshold gives onset t + floor(delta * N).

    `deltas`/`confs` are probabilities (after sigmoid), one per window starting at `starts`.
    """
    valid = [(int(s), float(d)) for d, c, s in zip(list(deltas), list(confs), starts) if float(c) > threshold]
    if not valid:
        return None
    start, delta = min(valid)
    return start + min(window - 1, max(0, int(math.floor(delta * window))))
