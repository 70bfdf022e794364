"""BleedOrigin-Track network: a small online Track-On-style point tracker (paper section 4.2).

One frame in, all points out, with the state explicit (memory.TrackState):

    frame (B, 4, H, W) = RGB in [0, 1] + Red-Mask
      -> CNN stride-4/8 maps; Red-Mask encoded and joined to the stride-8 features; projected
         ONCE to keys/values shared by every decoder layer
    query (sampled at the start point) -> spatial-memory read -> L x [cross-attention to the
      frame, self-attention among points, attention over the point's context memory (time
      embedding per slot)]
    -> patch classification: cosine correlation at 3 pooled scales (+ the start template and a
       motion prior), fused 1x1, temperature tau
    -> top-K re-ranking -> offset refinement on a stride-4 local cost volume (2 iterations)
    -> visibility and confidence logits; memories pushed; periodic/adaptive refresh.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.backbones.cnn import ConvBackbone, RedMaskEncoder
from bleedorigin.models.track.learned.memory import TrackState, clear_where, empty_state, push, refresh_due


@dataclass(frozen=True)
class TrackerConfig:
    dim: int = 128
    heads: int = 4
    layers: int = 2
    ffn: int = 256
    memory: int = 12              # M slots of context and spatial memory
    topk: int = 8                 # K candidates re-ranked
    c2: int = 16
    c4: int = 32
    c8: int = 64
    c16: int = 128
    feat_dim: int = 96            # stride-8 feature width
    corr_dim: int = 64            # width of the normalised correlation features
    red_dim: int = 16             # Red-Mask encoding width (0 with use_red_mask false)
    use_red_mask: bool = True
    red_mask_source: str = "shared"  # shared (bleedorigin.vision.color) | fallback (built-in)
    temperature: float = 0.05
    local_radius: int = 3         # stride-4 cost volume is (2r+1)^2
    offset_ranges: tuple[float, ...] = (12.0, 4.0)  # max px per refinement iteration
    motion_sigma: float = 48.0    # px scale of the motion prior
    motion_mix: bool = False      # second prior centre: the last point carried by the camera-motion hint
    hint_mode: str = "window"     # how the camera-motion hint reads the flow (motion_hint.HINT_MODES)
    refresh_every: int = 60       # memory refresh period N (0: never)
    adaptive_drop: float = 0.3    # confidence drop below its running mean that refreshes (0: off)
    refresh_min_gap: int = 15
    refresh_reseed: str = "memory"  # memory: reset memories, seed from the prediction, keep the start
                                    # query/templates | all: also re-seed query and templates there
    conf_momentum: float = 0.9
    mem_drop: float = 0.1         # random memory-slot masking in training
    stride: int = 8
    memory_read: int = 0          # read only the newest slots at test time (0: all M); training
                                  # unrolls of T frames fill at most T-1 slots


def sample_map(fmap: torch.Tensor, xy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear samples of fmap (B, C, h, w) at pixel points xy (B, N, S, 2) of an image of
    `size` (W, H) -> (B, N, S, C). Pixel-centre convention; the map covers the whole image."""
    w, h = size
    grid = torch.stack([(xy[..., 0] + 0.5) / w * 2 - 1, (xy[..., 1] + 0.5) / h * 2 - 1], -1)
    out = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)


def cell_centres(h: int, w: int, stride: int, device: torch.device) -> torch.Tensor:
    """(h*w, 2) pixel coordinates of the stride-`stride` cell centres, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).float() * stride + (stride - 1) / 2


def sine_pos(xy: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encoding of pixel positions (P, 2) -> (P, dim); size independent."""
    n = dim // 4
    freq = torch.exp(torch.linspace(0, 5, n, device=xy.device)) / 256.0
    a = xy[:, :1] * freq * 3.1416
    b = xy[:, 1:] * freq * 3.1416
    return torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], -1)


class Attention(nn.Module):
    """Multi-head attention with an optional learned null slot (rows with no valid key stay defined)."""

    def __init__(self, dim: int, heads: int, null: bool = False, shared_kv: bool = False):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = None if shared_kv else nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.null = nn.Parameter(torch.zeros(2, dim)) if null else None

    def split(self, x: torch.Tensor) -> torch.Tensor:
        *lead, n, d = x.shape
        return x.reshape(*lead, n, self.heads, d // self.heads).transpose(-2, -3)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                k: torch.Tensor | None = None, v: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., Nq, D); ctx (..., Nk, D) or precomputed split k/v; mask (..., Nq|1, Nk) bool."""
        if k is None or v is None:
            assert self.kv is not None and ctx is not None
            k, v = self.kv(ctx).chunk(2, -1)
            if self.null is not None:
                lead = k.shape[:-2]
                k = torch.cat([self.null[0].expand(*lead, 1, -1), k], -2)
                v = torch.cat([self.null[1].expand(*lead, 1, -1), v], -2)
                if mask is not None:
                    mask = torch.cat([torch.ones_like(mask[..., :1]), mask], -1)
            k, v = self.split(k), self.split(v)
        q = self.split(self.q(x))
        attn_mask = None if mask is None else mask.unsqueeze(-3)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        o = o.transpose(-2, -3).flatten(-2)
        return self.out(o)


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.n1, self.n2, self.n3, self.n4 = (nn.LayerNorm(dim) for _ in range(4))
        self.cross = Attention(dim, heads, shared_kv=True)
        self.self_attn = Attention(dim, heads)
        self.mem_attn = Attention(dim, heads, null=True)
        self.mlp = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, active: torch.Tensor,
                mem: torch.Tensor, mem_valid: torch.Tensor) -> torch.Tensor:
        q = q + self.cross(self.n1(q), k=k, v=v)
        n = q.shape[1]
        ar = torch.arange(n, device=q.device)
        eye = ar[:, None] == ar[None, :]  # (not torch.eye: ONNX Runtime lacks a boolean EyeLike)
        self_mask = (active[:, None, :] > 0.5) | eye  # (B, N, N): attend to tracked points and self
        x = self.n2(q)
        q = q + self.self_attn(x, x, self_mask)
        # memory attention: each point over its own M slots (batched as B*N rows of one query)
        x = self.n3(q).unsqueeze(2)
        q = q + self.mem_attn(x, mem, (mem_valid > 0.5).unsqueeze(2)).squeeze(2)
        return q + self.mlp(self.n4(q))


class TrackOnSmall(nn.Module):
    def __init__(self, cfg: TrackerConfig | None = None):
        super().__init__()
        cfg = cfg or TrackerConfig()
        self.cfg = cfg
        d = cfg.dim
        self.backbone = ConvBackbone(cfg.c2, cfg.c4, cfg.c8, cfg.c16, cfg.feat_dim)
        red = cfg.red_dim if cfg.use_red_mask else 0
        self.red_enc = RedMaskEncoder(cfg.red_dim, cfg.stride) if cfg.use_red_mask else None
        self.token_proj = nn.Sequential(nn.Linear(cfg.feat_dim + red, d), nn.LayerNorm(d))
        self.kv_proj = nn.Linear(d, 2 * d)      # keys/values shared by all decoder layers
        self.query_init = nn.Linear(d, d)
        self.corr8 = nn.Conv2d(cfg.feat_dim, cfg.corr_dim, 1)
        self.corr4 = nn.Linear(cfg.c4, cfg.c4)
        self.sp_read = Attention(d, cfg.heads, null=True)
        self.sp_norm = nn.LayerNorm(d)
        self.time_ctx = nn.Parameter(torch.randn(cfg.memory, d) * 0.02)
        self.time_sp = nn.Parameter(torch.randn(cfg.memory, d) * 0.02)
        self.layers = nn.ModuleList(DecoderLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.layers))
        self.out_norm = nn.LayerNorm(d)
        self.q_corr = nn.Linear(d, cfg.corr_dim)
        self.fuse = nn.Conv2d(5, 1, 1)  # [query corr x3 scales, template corr, motion prior]
        with torch.no_grad():
            self.fuse.weight.copy_(torch.tensor([0.5, 0.2, 0.1, 0.5, 0.05]).view(1, 5, 1, 1))
            self.fuse.bias.zero_()
        self.rerank = nn.Sequential(nn.Linear(3 * d + 6, d), nn.GELU(), nn.Linear(d, 1))
        self.cand_proj = nn.Linear(d, d)
        self.q_fine = nn.Linear(d, cfg.c4)
        win = (2 * cfg.local_radius + 1) ** 2
        self.offset_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * win + 9 + d, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2))
            for _ in cfg.offset_ranges)
        self.head = nn.Sequential(nn.Linear(d + 2 * win + 2, d), nn.GELU(), nn.Linear(d, 2))  # vis, conf
        r = cfg.local_radius
        gy, gx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        self.register_buffer("fine_grid", torch.stack([gx, gy], -1).reshape(-1, 2).float() * 4.0, persistent=False)
        gy, gx = torch.meshgrid(torch.arange(-1, 2), torch.arange(-1, 2), indexing="ij")
        self.register_buffer("coarse_grid", torch.stack([gx, gy], -1).reshape(-1, 2).float() * 8.0, persistent=False)

    # ------------------------------------------------------------------ per frame
    def encode(self, frame: torch.Tensor) -> dict[str, torch.Tensor]:
        """frame (B, 4, H, W): RGB in [0, 1] and Red-Mask. Everything the step needs from the image."""
        rgb, mask = frame[:, :3], frame[:, 3:4]
        b, _, hh, ww = frame.shape
        f4, f8 = self.backbone(rgb)
        h8, w8 = f8.shape[-2:]
        feats = f8
        if self.red_enc is not None:
            feats = torch.cat([f8, self.red_enc(mask)], 1)
        tok = self.token_proj(feats.flatten(2).transpose(1, 2))  # (B, P, D)
        tok_map = tok.transpose(1, 2).reshape(b, -1, h8, w8)
        # keys/values: one projection per frame, shared by all decoder layers, on the 2x pooled
        # token map (global context only; precise localisation is the correlation's job)
        pooled = F.avg_pool2d(tok_map, 2, ceil_mode=True)
        k, v = self.kv_proj(pooled.flatten(2).transpose(1, 2)).chunk(2, -1)
        k = k + sine_pos(cell_centres(pooled.shape[-2], pooled.shape[-1], 2 * self.cfg.stride, frame.device),
                         self.cfg.dim)
        split = self.layers[0].cross.split
        return {"k": split(k), "v": split(v), "tok_map": tok_map,
                "c8": F.normalize(self.corr8(f8), dim=1), "f4": f4,
                "centres": cell_centres(h8, w8, self.cfg.stride, frame.device), "size": torch.tensor([ww, hh])}

    def start_from(self, feats: dict[str, torch.Tensor], xy: torch.Tensor, active: torch.Tensor) -> TrackState:
        """Initial state for points xy (B, N, 2) (model pixels) on the encoded start frame."""
        b, n = xy.shape[:2]
        st = empty_state(b, n, self.cfg.dim, self.cfg.memory, self.cfg.corr_dim, self.cfg.c4, xy.device)
        tok, q, t8, t4 = self._seed(feats, xy)
        sp_mem, sp_valid = push(st.sp_mem, st.sp_valid, tok, active)
        return st._replace(query=q, template8=t8, template4=t4, sp_mem=sp_mem, sp_valid=sp_valid,
                           last_xy=xy, active=active)

    def _seed(self, feats: dict[str, torch.Tensor], xy: torch.Tensor) -> tuple[torch.Tensor, ...]:
        size = (int(feats["size"][0]), int(feats["size"][1]))
        p = xy.unsqueeze(2)
        tok = sample_map(feats["tok_map"], p, size)[:, :, 0]
        t8 = F.normalize(sample_map(feats["c8"], p, size)[:, :, 0], dim=-1)
        t4 = F.normalize(self.corr4(sample_map(feats["f4"], p, size)[:, :, 0]), dim=-1)
        return tok, self.query_init(tok), t8, t4

    def start(self, frame: torch.Tensor, xy: torch.Tensor, active: torch.Tensor | None = None) -> TrackState:
        if active is None:
            active = torch.ones(xy.shape[:2], device=xy.device)
        return self.start_from(self.encode(frame), xy, active)

    def step(self, frame: torch.Tensor, state: TrackState,
             hint_xy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, TrackState]:
        """(points (B, N, 2) model px, visibility prob (B, N), confidence prob (B, N), new state).
        `hint_xy` (B, N, 2): a second centre of the motion prior (distance to the nearer centre)."""
        out, new = self.step_from(self.encode(frame), state, hint_xy=hint_xy)
        return out["points"][-1], torch.sigmoid(out["vis_logit"]), torch.sigmoid(out["conf_logit"]), new

    # ------------------------------------------------------------------ decoding
    def step_from(self, feats: dict[str, torch.Tensor], st: TrackState, memory_drop: float = 0.0,
                  hint_xy: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor | list[torch.Tensor]], TrackState]:
        cfg = self.cfg
        size = (int(feats["size"][0]), int(feats["size"][1]))
        b, n, d = st.query.shape
        ctx_valid, sp_valid = st.ctx_valid, st.sp_valid
        if 0 < cfg.memory_read < cfg.memory:
            recent = (torch.arange(cfg.memory, device=ctx_valid.device) >= cfg.memory - cfg.memory_read).float()
            ctx_valid, sp_valid = ctx_valid * recent, sp_valid * recent
        if memory_drop > 0:  # Track-On's random memory masking (training only)
            ctx_valid = ctx_valid * (torch.rand_like(ctx_valid) > memory_drop).float()
            sp_valid = sp_valid * (torch.rand_like(sp_valid) > memory_drop).float()
        q = st.query
        q = q + self.sp_read(self.sp_norm(q).unsqueeze(2), st.sp_mem + self.time_sp,
                             (sp_valid > 0.5).unsqueeze(2)).squeeze(2)
        ctx = st.ctx_mem + self.time_ctx
        for layer in self.layers:
            q = layer(q, feats["k"], feats["v"], st.active, ctx, ctx_valid)
        h = self.out_norm(q)

        # patch classification over the stride-8 map
        c8 = feats["c8"]
        h8, w8 = c8.shape[-2:]
        qc = F.normalize(self.q_corr(h), dim=-1)
        levels = [torch.einsum("bnc,bchw->bnhw", qc, c8)]
        for s in (2, 4):
            pooled = F.normalize(F.avg_pool2d(c8, s, ceil_mode=True), dim=1)
            cor = torch.einsum("bnc,bchw->bnhw", qc, pooled)
            levels.append(F.interpolate(cor, size=(h8, w8), mode="bilinear", align_corners=False))
        levels.append(torch.einsum("bnc,bchw->bnhw", st.template8, c8))
        centres = feats["centres"]  # (P, 2)
        dist2 = ((centres[None, None] - st.last_xy.unsqueeze(2)) ** 2).sum(-1)
        if hint_xy is not None:
            dist2 = torch.minimum(dist2, ((centres[None, None] - hint_xy.unsqueeze(2)) ** 2).sum(-1))
        dist2 = dist2 / cfg.motion_sigma ** 2
        prior = -dist2.clamp(max=9.0).reshape(b, n, h8, w8)
        stack = torch.stack(levels + [prior], 2)  # (B, N, 5, h8, w8)
        logits = self.fuse(stack.flatten(0, 1)).reshape(b, n, h8 * w8) / cfg.temperature

        # top-K re-ranking
        kk = min(cfg.topk, h8 * w8)
        base, idx = logits.topk(kk, dim=-1)
        tok = feats["tok_map"].flatten(2).transpose(1, 2)  # (B, P, D)
        cand = torch.gather(tok.unsqueeze(1).expand(b, n, -1, d), 2, idx.unsqueeze(-1).expand(-1, -1, -1, d))
        cand_stats = torch.gather(stack.flatten(3), 3, idx.unsqueeze(2).expand(-1, -1, 5, -1)).transpose(2, 3)
        he = h.unsqueeze(2).expand(-1, -1, kk, -1)
        rr_in = torch.cat([he, cand, he * cand, cand_stats, (base / 100.0).unsqueeze(-1)], -1)
        rerank = base + self.rerank(rr_in).squeeze(-1)
        w = torch.softmax(rerank, -1)
        hq = h + self.cand_proj((w.unsqueeze(-1) * cand).sum(2))
        best = rerank.argmax(-1, keepdim=True)
        p = centres[torch.gather(idx, 2, best).squeeze(-1)]  # (B, N, 2)

        # offset refinement on local cost volumes (stride 4 fine, stride 8 coarse)
        qf = F.normalize(self.q_fine(hq), dim=-1)
        points, fine = [], None
        for head, rng in zip(self.offset_heads, cfg.offset_ranges):
            fine = self._local(feats, p, qf, st, size)
            coarse = (sample_map(c8, p.unsqueeze(2) + self.coarse_grid, size) * qc.unsqueeze(2)).sum(-1)
            off = torch.tanh(head(torch.cat([fine, coarse, hq], -1))) * rng
            p = p + off
            p = torch.stack([p[..., 0].clamp(0, size[0] - 1), p[..., 1].clamp(0, size[1] - 1)], -1)
            points.append(p)
        assert fine is not None
        vc = self.head(torch.cat([hq, fine, w.max(-1, keepdim=True)[0], rerank.max(-1, keepdim=True)[0] / 100.0], -1))
        vis_logit, conf_logit = vc[..., 0], vc[..., 1]
        out = {"logits": logits, "topk_idx": idx, "rerank": rerank, "points": points,
               "vis_logit": vis_logit, "conf_logit": conf_logit}
        return out, self._update(feats, st, h, p, vis_logit, conf_logit, size)

    def _local(self, feats: dict[str, torch.Tensor], p: torch.Tensor, qf: torch.Tensor, st: TrackState,
               size: tuple[int, int]) -> torch.Tensor:
        """Stride-4 cost volume around p against the learned query and the start template."""
        # the 1x1 projection commutes with bilinear sampling: project the samples, not the map
        s = F.normalize(self.corr4(sample_map(feats["f4"], p.unsqueeze(2) + self.fine_grid, size)), dim=-1)
        return torch.cat([(s * qf.unsqueeze(2)).sum(-1), (s * st.template4.unsqueeze(2)).sum(-1)], -1)

    def _update(self, feats: dict[str, torch.Tensor], st: TrackState, h: torch.Tensor, p: torch.Tensor,
                vis_logit: torch.Tensor, conf_logit: torch.Tensor, size: tuple[int, int]) -> TrackState:
        cfg = self.cfg
        act = st.active
        visible = (vis_logit > 0).float() * act
        tok = sample_map(feats["tok_map"], p.unsqueeze(2), size)[:, :, 0]
        ctx_mem, ctx_valid = push(st.ctx_mem, st.ctx_valid, h, act)
        sp_mem, sp_valid = push(st.sp_mem, st.sp_valid, tok, visible)
        conf = torch.sigmoid(conf_logit).detach()
        since = st.since_refresh + act
        due = refresh_due(since, st.conf_ema, conf, cfg.refresh_every, cfg.adaptive_drop,
                          cfg.refresh_min_gap) * act
        ema = cfg.conf_momentum * st.conf_ema + (1 - cfg.conf_momentum) * conf
        ctx_mem, ctx_valid = clear_where(ctx_mem, ctx_valid, due)
        sp_mem, sp_valid = clear_where(sp_mem, sp_valid, due)
        # re-seed from the current prediction: new query/templates, one spatial-memory slot
        _, q_new, t8, t4 = self._seed(feats, p)
        dd = due.unsqueeze(-1)
        if cfg.refresh_reseed != "all":  # keep the start-frame query and templates (less drift)
            q_new, t8, t4 = st.query, st.template8, st.template4
        sp_mem = torch.cat([sp_mem[:, :, :-1], (dd * tok + (1 - dd) * sp_mem[:, :, -1]).unsqueeze(2)], 2)
        sp_valid = torch.cat([sp_valid[:, :, :-1], torch.maximum(sp_valid[:, :, -1], due).unsqueeze(2)], 2)
        return TrackState(query=dd * q_new + (1 - dd) * st.query, ctx_mem=ctx_mem, ctx_valid=ctx_valid,
                          sp_mem=sp_mem, sp_valid=sp_valid, last_xy=p.detach(),
                          since_refresh=since * (1 - due), conf_ema=due * 1.0 + (1 - due) * ema,
                          active=act, template8=dd * t8 + (1 - dd) * st.template8,
                          template4=dd * t4 + (1 - dd) * st.template4)
