"""Track-On v1 (Aydemir et al., ICLR 2025), streaming form, plus the BleedOrigin paper's changes.

`TrackOn` has the released checkpoint's module names, so `load_trackon` fills it strictly from
`track_on_checkpoint.pt`. `TrackPaper` wraps it with the paper's Red-Mask keys/values (section
4.2.2): a Red-Mask map is encoded, concatenated with the visual tokens and projected back to D
for the decoder's cross-attention. The projection starts as [identity, 0], so a freshly loaded
Track-On checkpoint tracks exactly as released until fine-tuning (LoRA) moves it.

One frame at a time: `start(frame, points)` samples the queries and empties both memories,
`step(frame, state)` returns points, visibility and the next state (the network holds no state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.backbones.vit import IMAGENET_MEAN, IMAGENET_STD
from bleedorigin.models.track.paper.adapter import ViTAdapter
from bleedorigin.models.track.paper.blocks import TokenDecoder
from bleedorigin.models.track.paper.heads import (OffsetHead, QueryDecoder, RerankModule, SpatialMemory, VisibilityHead,
                                              patch_centres)


@dataclass(frozen=True)
class TrackOnConfig:
    input_size: tuple[int, int] = (384, 512)  # (H, W) the frames are resized to
    stride: int = 4
    dim: int = 256
    layers: int = 3            # query decoder
    memory: int = 12           # both memories, as trained; `with_memory` stretches it for inference
    top_k: int = 16
    rerank_layers: int = 3
    offset_layers: int = 3
    writer_layers: int = 3
    visibility_threshold: float = 0.8
    support_grid: int = 20     # extra queries on a grid, as Track-On's streaming mode adds (0: none)


class TrackState(NamedTuple):
    q_init: torch.Tensor          # (1, N, C)
    spatial: torch.Tensor         # (1, N, M, C)
    context: torch.Tensor         # (1, N, M, C)
    occluded: torch.Tensor        # (1, N, M) bool, slot's frame predicted occluded
    empty: torch.Tensor           # (1, N, M) bool, slot not written yet
    t: int
    n_user: int                   # queries given by the user (support grid follows)


class Backbone(nn.Module):
    def __init__(self, cfg: TrackOnConfig):
        super().__init__()
        self.size = cfg.input_size
        self.vit_encoder = ViTAdapter()
        self.token_projection = nn.Conv2d(384, cfg.dim, 1)
        hw = (cfg.input_size[0] // cfg.stride, cfg.input_size[1] // cfg.stride)
        self.frame_pos_embedding = nn.Parameter(torch.zeros(1, cfg.dim, *hw))
        nn.init.trunc_normal_(self.frame_pos_embedding, std=0.02)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in 0..255 -> stride-4 map (B, C, H', W') with position embedding."""
        x = F.interpolate(frames / 255.0, size=self.size, mode="bilinear", align_corners=False)
        f = self.vit_encoder((x - self.mean) / self.std)[0]
        return self.token_projection(f) + self.frame_pos_embedding


def support_grid(n: int, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(n*n, 2) pixel points on a grid with a W/64 margin (Track-On's support queries)."""
    h, w = size
    margin = w / 64
    ys, xs = torch.meshgrid(torch.linspace(margin, h - margin, n, device=device),
                            torch.linspace(margin, w - margin, n, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2)


class TrackOn(nn.Module):
    def __init__(self, cfg: TrackOnConfig = TrackOnConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.hw = (cfg.input_size[0] // cfg.stride, cfg.input_size[1] // cfg.stride)
        self.backbone = Backbone(cfg)
        self.sm_query_updater = SpatialMemory(d, cfg.memory, cfg.writer_layers)
        self.query_decoder = QueryDecoder(d, cfg.layers, cfg.memory)
        self.feature_decoder = TokenDecoder(d)
        self.offset_head = OffsetHead(d, cfg.offset_layers)
        self.rerank_module = RerankModule(d, cfg.top_k, cfg.rerank_layers)
        self.visibility_head = VisibilityHead(d)
        self.projection1 = nn.Linear(d, d)
        self.projection2 = nn.Linear(d, d)
        self.corr_layer = nn.Conv2d(4, 1, 1, bias=False)

    def with_memory(self, context: int, spatial: int) -> None:
        """Stretch both memories for inference (Track-On: 48 on DAVIS, 96 on Kinetics) by linear
        interpolation of the past rows of each time embedding; the "now" row is kept."""
        for mod, m in ((self.query_decoder, context), (self.sm_query_updater, spatial)):
            te = mod.time_embedding.data
            past = F.interpolate(te[:, :-1].transpose(1, 2), size=m, mode="linear", align_corners=True)
            mod.time_embedding = nn.Parameter(torch.cat([past.transpose(1, 2), te[:, -1:]], 1))

    def correlation(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each query with the token map at 4 pooled scales, fused -> (B, N, P)."""
        b, n, c = q.shape
        hh, ww = self.hw
        qn = F.normalize(q, dim=-1)
        m = h.view(b, hh, ww, c).permute(0, 3, 1, 2)
        maps = []
        for i in range(4):
            lvl = F.avg_pool2d(m, 2 ** i, 2 ** i) if i else m
            sim = torch.einsum("bnc,bcp->bnp", qn, F.normalize(lvl.flatten(2), dim=1))
            sim = sim.view(b * n, 1, *lvl.shape[-2:])
            maps.append(F.interpolate(sim, size=self.hw, mode="bilinear", align_corners=False))
        return self.corr_layer(torch.cat(maps, 1)).view(b, n, hh * ww)

    def encode(self, frame: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) frame in 0..255 -> f_t (1, P, C)."""
        return self.backbone(frame).flatten(2).transpose(1, 2)

    def start(self, frame: torch.Tensor, points: torch.Tensor) -> TrackState:
        """`points` (N, 2) pixel (x, y) of `frame`; queries are sampled from this frame."""
        h, w = frame.shape[-2:]
        size = self.cfg.input_size
        pts = points.float() * torch.tensor([size[1] / w, size[0] / h], device=points.device)
        if self.cfg.support_grid:
            pts = torch.cat([pts, support_grid(self.cfg.support_grid, size, points.device)], 0)
        fmap = self.backbone(frame)
        grid = (pts / torch.tensor([size[1], size[0]], device=pts.device)) * 2 - 1
        q = F.grid_sample(fmap, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=False)
        q_init = q[:, :, 0].transpose(1, 2)  # (1, N', C)
        n, c = q_init.shape[1], q_init.shape[2]
        m = max(self.query_decoder.memory_size, self.sm_query_updater.memory_size)
        zeros = torch.zeros(1, n, m, c, device=q_init.device)
        ones = torch.ones(1, n, m, dtype=torch.bool, device=q_init.device)
        return TrackState(q_init, zeros, zeros.clone(), ones, ones.clone(), 0, int(points.shape[0]))

    def step(self, frame: torch.Tensor, state: TrackState, kv: torch.Tensor | None = None,
             f: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, TrackState]:
        """Next frame -> points (N, 2) in frame pixels, visibility probability (N,), uncertainty
        probability (N,), next state. `kv`: decoder keys/values replacing f_t (TrackPaper)."""
        cfg, size, s = self.cfg, self.cfg.input_size, self.cfg.stride
        h, w = frame.shape[-2:]
        q_start = self.sm_query_updater.read(state.q_init, state.spatial, state.empty | state.occluded, state.t)
        f = self.encode(frame) if f is None else f
        h_t = self.feature_decoder(f)
        q = self.projection1(self.query_decoder(q_start, f, state.context, state.empty, kv=kv))
        q, _, _ = self.rerank_module(q, h_t, self.correlation(q, h_t), self.hw, s, size)
        q_corr = self.projection2(q)
        patch = patch_centres(self.correlation(q_corr, h_t).argmax(-1), self.hw[1], s)
        p = patch + self.offset_head(q_corr, h_t, patch, self.hw, s, size)[:, -1]
        v_logit, u_logit = self.visibility_head(q, h_t, p, self.hw, size)
        started = torch.ones_like(v_logit, dtype=torch.bool)
        aug = self.sm_query_updater.write(state.q_init, q, f, self.hw, p, size, started)
        vis = torch.sigmoid(v_logit)
        nxt = TrackState(state.q_init,
                         torch.cat([state.spatial[:, :, 1:], aug.unsqueeze(2)], 2),
                         torch.cat([state.context[:, :, 1:], q.unsqueeze(2)], 2),
                         torch.cat([state.occluded[:, :, 1:], (vis < cfg.visibility_threshold).unsqueeze(-1)], 2),
                         torch.cat([state.empty[:, :, 1:], ~started.unsqueeze(-1)], 2),
                         state.t + 1, state.n_user)
        n = state.n_user
        pts = p[0, :n] * torch.tensor([w / size[1], h / size[0]], device=p.device)
        return pts, vis[0, :n], torch.sigmoid(u_logit)[0, :n], nxt


class RedMaskKV(nn.Module):
    """Paper 4.2.2: Red-Mask features concatenated with the visual tokens as decoder keys/values."""

    def __init__(self, dim: int, red_dim: int = 32, stride: int = 4):
        super().__init__()
        self.stride = stride
        self.encoder = nn.Sequential(nn.Conv2d(1, red_dim, 3, 1, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(red_dim, red_dim, 3, 1, 1))
        self.fuse = nn.Linear(dim + red_dim, dim)
        with torch.no_grad():  # start as the identity on the visual tokens: released behaviour
            self.fuse.weight.zero_()
            self.fuse.weight[:, :dim].copy_(torch.eye(dim))
            self.fuse.bias.zero_()

    def forward(self, f: torch.Tensor, red: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """f (1, P, C); red (1, 1, H, W) Red-Mask in [0, 1] at the model input size."""
        r = F.adaptive_avg_pool2d(red, hw)
        r = self.encoder(r).flatten(2).transpose(1, 2)
        return self.fuse(torch.cat([f, r], -1))


class TrackPaper(nn.Module):
    """Track-On (`net`, released layout) + the paper's Red-Mask keys/values (`red`)."""

    def __init__(self, cfg: TrackOnConfig = TrackOnConfig(), red_dim: int = 32):
        super().__init__()
        self.net = TrackOn(cfg)
        self.red = RedMaskKV(cfg.dim, red_dim, cfg.stride)

    def start(self, frame: torch.Tensor, points: torch.Tensor) -> TrackState:
        return self.net.start(frame, points)

    def step(self, frame: torch.Tensor, red: torch.Tensor, state: TrackState) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor, TrackState]:
        f = self.net.encode(frame)
        kv = self.red(f, red, self.net.hw)
        return self.net.step(frame, state, kv=kv, f=f)
