"""Track-On v1's query decoder, spatial memory, re-ranking, offset and visibility heads.

Names follow the released checkpoint (`query_decoder`, `sm_query_updater`, `rerank_module`,
`offset_head`, `visibility_head`). Shapes: B batch, N queries, P = H'W' tokens, C channels,
M memory slots, K re-ranking candidates. Points are pixels of the model's H x W input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.track.paper.blocks import DeformBlock, MHABlock, normalise_points, pyramid


def patch_centres(idx: torch.Tensor, w_tokens: int, stride: int) -> torch.Tensor:
    """Token indices -> (x, y) pixel centres of their stride x stride patches."""
    rows, cols = idx // w_tokens, idx % w_tokens
    return torch.stack([cols * stride + 0.5 * stride, rows * stride + 0.5 * stride], -1).float()


class QueryDecoder(nn.Module):
    """L layers of: cross-attention to all tokens, query self-attention, context-memory attention."""

    def __init__(self, dim: int, layers: int, memory: int, heads: int = 8):
        super().__init__()
        self.token_to_query = nn.ModuleList(MHABlock(dim, heads) for _ in range(layers))
        self.query_to_query = nn.ModuleList(MHABlock(dim, heads) for _ in range(layers))
        self.memory_to_query = nn.ModuleList(MHABlock(dim, heads) for _ in range(layers))
        self.time_embedding = nn.Parameter(torch.zeros(1, memory + 1, dim))
        nn.init.trunc_normal_(self.time_embedding, std=0.02)

    @property
    def memory_size(self) -> int:
        return self.time_embedding.shape[1] - 1

    def _memory(self, q: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor, i: int) -> tuple[torch.Tensor,
                                                                                           torch.Tensor]:
        # Each query attends over [its M memory slots, itself]; only the query's output is kept,
        # the updated slots feed the next layer (the stored memory is never overwritten).
        b, n, c = q.shape
        q, mem, mask = q.reshape(b * n, 1, c).clone(), mem.reshape(b * n, -1, c).clone(), mask.reshape(b * n, -1)
        live = ~mask.all(-1)
        if not live.any():
            return q.view(b, n, c), mem.view(b, n, -1, c)
        seq = torch.cat([mem[live], q[live]], 1)
        m = torch.cat([mask[live], torch.zeros_like(mask[live][:, :1])], 1)
        out = self.memory_to_query[i](seq + self.time_embedding, seq + self.time_embedding, seq, mask=m)
        q[live], mem[live] = out[:, -1:], out[:, :-1]
        return q.view(b, n, c), mem.view(b, n, -1, c)

    def forward(self, q: torch.Tensor, f: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                kv: torch.Tensor | None = None) -> torch.Tensor:
        """`kv` replaces `f` as the cross-attention keys/values (the paper's Red-Mask tokens).
        Every query starts on the first frame in streaming, so query self-attention is unmasked."""
        m = self.memory_size
        memory, memory_mask = memory[:, :, -m:], memory_mask[:, :, -m:]
        kv = f if kv is None else kv
        for i in range(len(self.token_to_query)):
            q = self.token_to_query[i](q, kv, kv)
            q = self.query_to_query[i](q)
            q, memory = self._memory(q, memory, memory_mask, i)
        return q


class SpatialMemory(nn.Module):
    """Per-query FIFO of local feature summaries around past predictions (read before decoding,
    written after prediction); slots of frames predicted occluded are ignored."""

    def __init__(self, dim: int, memory: int, writer_layers: int = 3, self_layers: int = 1, cross_layers: int = 1,
                 levels: int = 4, heads: int = 8):
        super().__init__()
        self.query_to_feature = nn.ModuleList(DeformBlock(dim, heads, levels) for _ in range(writer_layers))
        self.memory_to_memory = nn.ModuleList(MHABlock(dim, heads) for _ in range(self_layers))
        self.query_to_memory = nn.ModuleList(MHABlock(dim, heads) for _ in range(cross_layers))
        self.augment_layer = nn.Linear(2 * dim, dim)
        self.query_residual = nn.Linear(dim, dim)
        self.time_embedding = nn.Parameter(torch.zeros(1, memory + 1, dim))
        nn.init.trunc_normal_(self.time_embedding, std=0.02)
        self.levels = levels

    @property
    def memory_size(self) -> int:
        return self.time_embedding.shape[1] - 1

    def write(self, q_init: torch.Tensor, q_t: torch.Tensor, f: torch.Tensor, hw: tuple[int, int],
              points: torch.Tensor, size: tuple[int, int], started: torch.Tensor) -> torch.Tensor:
        a = self.augment_layer(torch.cat([q_t, q_init], -1))
        value, shapes = pyramid(f, hw, self.levels)
        ref = normalise_points(points, size).unsqueeze(2).expand(-1, -1, self.levels, -1)
        for layer in self.query_to_feature:
            a = layer(a, value, ref, shapes)
        return torch.where(started.unsqueeze(-1), a, q_init)

    def read(self, q_init: torch.Tensor, memory: torch.Tensor, ignore: torch.Tensor, t: int) -> torch.Tensor:
        if t == 0:
            return q_init.clone()
        m = self.memory_size
        memory, ignore = memory[:, :, -m:], ignore[:, :, -m:]
        b, n, c = q_init.shape
        ignore = ignore.reshape(b * n, -1)
        live = ~ignore.all(-1)
        out = q_init.reshape(b * n, 1, c).clone()
        if not live.any():
            return out.view(b, n, c)
        kv, mask = memory.reshape(b * n, -1, c)[live], ignore[live]
        past, now = self.time_embedding[:, :-1], self.time_embedding[:, -1:]
        for layer in self.memory_to_memory:
            kv = layer(kv + past, kv + past, kv, mask=mask)
        q = out[live] + now
        for layer in self.query_to_memory:
            q = layer(q, kv + past, kv, mask=mask)
        out[live] = out[live] + self.query_residual(q)
        return out.view(b, n, c)


def rerank_pyramid(h: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The re-ranker's 4-level values, as the released code computes them: its coarsest level
    average-pools the flattened (P, C) token matrix by 8x8 (tokens and channels mixed) instead of
    the map. The released weights were trained on that, so it is kept for parity."""
    b, p, c = h.shape
    value, shapes = pyramid(h, hw, 3)
    coarse = F.avg_pool2d(h, 8, 8).reshape(b, c, p // 64).transpose(1, 2)
    return torch.cat([value, coarse], 1), shapes + [(hw[0] // 8, hw[1] // 8)]


class RerankModule(nn.Module):
    """Top-K patches of the first correlation, each refined by deformable attention around its
    centre and given an uncertainty, then fused back into the query."""

    def __init__(self, dim: int, top_k: int = 16, layers: int = 3, fusion_layers: int = 1, heads: int = 8):
        super().__init__()
        self.top_k = top_k
        self.sample_query_fusion = nn.Linear(2 * dim, dim)
        self.sample_projection = nn.Linear(2 * dim, dim)
        self.sample_uncertainty = nn.Linear(dim, 1)
        self.local_patch_encoder = nn.ModuleList(DeformBlock(dim, heads, 4) for _ in range(layers))
        self.local_decoder = nn.ModuleList(MHABlock(dim, heads) for _ in range(fusion_layers))

    def forward(self, q: torch.Tensor, h: torch.Tensor, corr: torch.Tensor, hw: tuple[int, int], stride: int,
                size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, c = q.shape
        k = self.top_k
        centres = patch_centres(torch.topk(corr, k, dim=-1)[1], hw[1], stride)  # (B, N, K, 2)
        value, shapes = rerank_pyramid(h, hw)
        ref = normalise_points(centres, size).unsqueeze(3).expand(-1, -1, -1, 4, -1).reshape(b, n * k, 4, 2)
        local = q.unsqueeze(2).expand(-1, -1, k, -1).reshape(b, n * k, c)
        for layer in self.local_patch_encoder:
            local = layer(local, value, ref, shapes)
        cand = self.sample_projection(torch.cat([q.unsqueeze(2).expand(-1, -1, k, -1), local.view(b, n, k, c)], -1))
        uncertainty = self.sample_uncertainty(cand).squeeze(-1)
        fused = q.reshape(b * n, 1, c)
        cand_flat = cand.reshape(b * n, k, c)
        for layer in self.local_decoder:
            fused = layer(fused, cand_flat, cand_flat)
        q = self.sample_query_fusion(torch.cat([q, fused.view(b, n, c)], -1))
        return q, uncertainty, centres


class OffsetHead(nn.Module):
    """Deformable layers around the chosen patch; each predicts an offset of at most +-stride px."""

    def __init__(self, dim: int, layers: int = 3, heads: int = 8):
        super().__init__()
        self.offset_layer = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2), nn.Tanh())
        self.local_transformer = nn.ModuleList(DeformBlock(dim, heads, 4) for _ in range(layers))

    def forward(self, q: torch.Tensor, h: torch.Tensor, points: torch.Tensor, hw: tuple[int, int], stride: int,
                size: tuple[int, int]) -> torch.Tensor:
        value, shapes = pyramid(h, hw, 4)
        ref = normalise_points(points, size).unsqueeze(2).expand(-1, -1, 4, -1)
        offsets = []
        for layer in self.local_transformer:
            q = layer(q, value, ref, shapes)
            offsets.append(self.offset_layer(q) * stride)
        return torch.stack(offsets, 1)  # (B, layers, N, 2)


class VisibilityHead(nn.Module):
    """One deformable layer at the predicted point; visibility and uncertainty logits."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        self.vis_layer = nn.Linear(2 * dim, 1)
        self.unc_layer = nn.Linear(2 * dim, 1)
        self.decoder_layer = DeformBlock(dim, heads, 4)

    def forward(self, q: torch.Tensor, h: torch.Tensor, points: torch.Tensor, hw: tuple[int, int],
                size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        value, shapes = pyramid(h, hw, 4)
        ref = normalise_points(points, size).unsqueeze(2).expand(-1, -1, 4, -1)
        x = torch.cat([q, self.decoder_layer(q, value, ref, shapes)], -1)
        return self.vis_layer(x).squeeze(-1), self.unc_layer(x).squeeze(-1)
