"""BleedOrigin-Detect source network (paper section 4.1.2, Figure 6, Eq. 3).

    image ──► encoder ──► F_e (H/8) ──► V
      │          └──► heat-map module (2 x conv3x3 + upsampling conv) ──► F_h (H) ──► Q
      └──► Red-Mask (handcrafted, H) ──► F_r ──► K
    at every scale s in {H, H/2, H/4, H/8}: A_s = Q_s + Attn(Q_s, K_s, V_s)
    FPN top-down fusion of A_s ──► fused heat-map (H) ──► arg-max + sub-pixel refinement

Attention is global at H/8 (a few hundred tokens) and local (k x k neighbourhood per pixel)
at the finer scales, where global attention over every pixel would be far too costly.
Pure tensors in and out; resizing, Red-Mask computation and pixel mapping live in predictor.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.backbones.vit import IMAGENET_MEAN, IMAGENET_STD, create_encoder, load_pretrained

SCALES = (8, 4, 2, 1)  # feature strides of the pyramid, coarsest first


@dataclass(frozen=True)
class SourceConfig:
    """Source localizer architecture, preprocessing and decision settings."""

    encoder: str = "cnn_small"              # name in models.backbones.vit
    pretrained: str = ""                    # local .safetensors/.pth for the encoder ("" = none)
    input_size: tuple[int, int] = (256, 192)  # (W, H) the network sees
    dim: int = 16                           # attention width (Q, K, V)
    heads: int = 2
    heat_channels: int = 8                  # channels of the heat-map module output F_h
    window: int = 3                         # local attention neighbourhood at the fine scales
    sigma: float = 3.0                      # Gaussian target sigma, input_size pixels
    softargmax_beta: float = 1.0            # temperature of the differentiable arg-max (training)
    refine_radius: int = 2                  # sub-pixel refinement window half-size, input_size pixels
    red_mask: str = "local"                 # "local" | "vision": both bleedorigin.vision.color.red_mask


class HeatMapModule(nn.Module):
    """Two 3x3 convs then one upsampling (transposed) conv from H/8 back to H."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(inplace=True))
        self.up = nn.ConvTranspose2d(cin, cout, 8, stride=8)

    def forward(self, f: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = self.up(self.convs(f))
        return out[..., :size[0], :size[1]]


class RedMaskEmbed(nn.Module):
    """Embeds the (non-trainable) Red-Mask at one scale: mean and max pooling -> conv."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, dim, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(dim, dim, 1))

    def forward(self, red: torch.Tensor, stride: int) -> torch.Tensor:
        if stride == 1:
            x = torch.cat([red, red], 1)
        else:
            x = torch.cat([F.avg_pool2d(red, stride, ceil_mode=True), F.max_pool2d(red, stride, ceil_mode=True)], 1)
        return self.net(x)


def global_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    b, d, h, w = q.shape

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2).reshape(b, h * w, heads, d // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(b, h * w, d).transpose(1, 2).reshape(b, d, h, w)


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, window: int) -> torch.Tensor:
    """Each query pixel attends to the window x window neighbourhood of keys/values around it.

    Done with shifted views of the zero-padded K/V (no unfold copies): about 4x faster on CPU.
    """
    b, d, h, w = q.shape
    hd = d // heads
    pad = window // 2
    kp = F.pad(k, (pad, pad, pad, pad)).view(b, heads, hd, h + 2 * pad, w + 2 * pad)
    vp = F.pad(v, (pad, pad, pad, pad)).view(b, heads, hd, h + 2 * pad, w + 2 * pad)
    qq = q.view(b, heads, hd, h, w) * hd ** -0.5
    offsets = [(dy, dx) for dy in range(window) for dx in range(window)]
    logits = torch.stack([(qq * kp[..., dy:dy + h, dx:dx + w]).sum(2) for dy, dx in offsets], 2)
    att = logits.softmax(2)  # (b, heads, n, h, w)
    out = sum(att[:, :, i:i + 1] * vp[..., dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets))
    return out.reshape(b, d, h, w)  # type: ignore[union-attr]


class ScaleAttention(nn.Module):
    """Q = heat-map features, K = Red-Mask features, V = encoder features, at one scale."""

    def __init__(self, cfg: SourceConfig, stride: int):
        super().__init__()
        self.stride, self.heads, self.window = stride, cfg.heads, cfg.window
        d = cfg.dim
        self.q = nn.Conv2d(cfg.heat_channels, d, 1)
        self.k = RedMaskEmbed(d)
        self.v = nn.Conv2d(d, d, 1)
        self.out = nn.Conv2d(d, d, 1)

    def forward(self, heat: torch.Tensor, red: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        s = self.stride
        h, w = -(-heat.shape[-2] // s), -(-heat.shape[-1] // s)
        q = self.q(heat if s == 1 else F.avg_pool2d(heat, s, ceil_mode=True))
        k = self.k(red, s)
        v = self.v(feat if feat.shape[-2:] == (h, w) else
                   F.interpolate(feat, size=(h, w), mode="bilinear", align_corners=False))
        att = global_attention(q, k, v, self.heads) if s == SCALES[0] else \
            local_attention(q, k, v, self.heads, self.window)
        return q + self.out(att)


class SourceNet(nn.Module):
    """(image (B,3,H,W) in [0,1], red mask (B,1,H,W) in [0,1]) -> heat-map logits (B,1,H,W)."""

    def __init__(self, cfg: SourceConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = create_encoder(cfg.encoder)
        if cfg.pretrained:
            load_pretrained(self.encoder, cfg.pretrained)
        self.proj = nn.Conv2d(self.encoder.out_channels, cfg.dim, 1)
        self.heatmap = HeatMapModule(cfg.dim, cfg.heat_channels)
        self.attn = nn.ModuleList(ScaleAttention(cfg, s) for s in SCALES)
        self.lateral = nn.ModuleList(nn.Conv2d(cfg.dim, cfg.dim, 3, padding=1) for _ in SCALES[1:])
        self.head = nn.Sequential(nn.Conv2d(cfg.dim, cfg.dim, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(cfg.dim, 1, 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        nn.init.constant_(self.head[-1].bias, -4.0)  # start near an empty heat-map (targets are sparse)

    def forward(self, image: torch.Tensor, red: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        feat = self.proj(self.encoder((image - self.mean) / self.std))
        heat = self.heatmap(feat, size)
        fused: torch.Tensor | None = None
        for i, s in enumerate(SCALES):  # FPN top-down: coarse context refined at finer scales
            a = self.attn[i](heat, red, feat)
            if fused is not None:
                a = self.lateral[i - 1](a + F.interpolate(fused, size=a.shape[-2:], mode="bilinear",
                                                          align_corners=False))
            fused = F.relu(a)
        assert fused is not None
        return self.head(fused)


def soft_argmax(logits: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Differentiable arg-max: softmax-weighted mean pixel (x, y) of (B,1,H,W) logits -> (B,2)."""
    b, _, h, w = logits.shape
    p = (logits.flatten(1) * beta).softmax(1).view(b, h, w)
    xs = torch.arange(w, device=logits.device, dtype=p.dtype)
    ys = torch.arange(h, device=logits.device, dtype=p.dtype)
    return torch.stack([(p.sum(1) * xs).sum(1), (p.sum(2) * ys).sum(1)], 1)


def refined_peak(logits: torch.Tensor, radius: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Arg-max of each (B,1,H,W) map, refined to sub-pixel by the centroid of the heat above
    the local minimum in a (2r+1)^2 window. Returns xy (B,2) and peak confidence (B,) in [0,1]."""
    b, _, h, w = logits.shape
    flat = logits.flatten(1)
    idx = flat.argmax(1)
    py, px = idx // w, idx % w
    heat = torch.sigmoid(logits[:, 0])
    out = torch.empty(b, 2, dtype=heat.dtype, device=heat.device)
    for i in range(b):
        y0, y1 = max(0, int(py[i]) - radius), min(h, int(py[i]) + radius + 1)
        x0, x1 = max(0, int(px[i]) - radius), min(w, int(px[i]) + radius + 1)
        patch = heat[i, y0:y1, x0:x1]
        wgt = patch - patch.min()
        tot = wgt.sum()
        if tot <= 0:
            out[i] = torch.stack([px[i], py[i]]).to(out.dtype)
            continue
        ys = torch.arange(y0, y1, device=heat.device, dtype=heat.dtype)
        xs = torch.arange(x0, x1, device=heat.device, dtype=heat.dtype)
        out[i, 0] = (wgt.sum(0) * xs).sum() / tot
        out[i, 1] = (wgt.sum(1) * ys).sum() / tot
    conf = heat.flatten(1).gather(1, idx[:, None])[:, 0]
    return out, conf
