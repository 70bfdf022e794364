"""Spatial encoders for the source localizer, behind a small registry of our own.

timm cannot be imported here (it pulls torchvision), so the ViT below re-implements timm's
parameter naming (`patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.attn.qkv`,
`blocks.N.mlp.fc1`, `norm`, layer scale as `ls1.gamma` (VisionTransformer, DINOv2) or
`gamma_1` (Eva, PE-Spatial)) so a state dict saved by timm loads with `load_pretrained`.

Every encoder maps an image (B, 3, H, W) to features (B, C, H/8, W/8) and exposes
`out_channels`; ViTs with patch 16 are upsampled x2 to reach stride 8.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.errors import ConfigError, InputError

log = logging.getLogger(__name__)

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ENCODERS:
            raise ValueError(f"encoder {name!r} registered twice")
        _ENCODERS[name] = fn
        return fn
    return wrap


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def create_encoder(name: str, **kwargs: Any) -> nn.Module:
    if name not in _ENCODERS:
        import difflib
        close = difflib.get_close_matches(name, _ENCODERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown encoder {name!r}{hint}; known: {', '.join(list_encoders())}")
    return _ENCODERS[name](**kwargs)


# ----------------------------------------------------------------------------- small CNN

def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Stride-8 CNN (stem + 3 stride-2 stages of depthwise-separable blocks): cheap on CPU."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), depth: int = 2, in_chans: int = 3):
        super().__init__()
        if len(widths) != 4:
            raise ConfigError(f"SmallCNN needs 4 widths, got {widths}")
        layers: list[nn.Module] = [_conv_bn(in_chans, widths[0])]
        cin = widths[0]
        for w in widths[1:]:
            layers.append(_conv_bn(cin, w, stride=2))
            for _ in range(depth - 1):  # depthwise 3x3 + pointwise keeps the receptive field growing cheaply
                layers += [_conv_bn(w, w, groups=w), nn.Conv2d(w, w, 1, bias=False), nn.BatchNorm2d(w),
                           nn.ReLU(inplace=True)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.out_channels = widths[-1]
        self.stride = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_encoder("cnn_small")
def cnn_small(**kw: Any) -> nn.Module:
    return SmallCNN(widths=kw.pop("widths", (16, 32, 64, 96)), depth=kw.pop("depth", 2), **kw)


@register_encoder("cnn_test")
def cnn_test(**kw: Any) -> nn.Module:
    return SmallCNN(widths=kw.pop("widths", (8, 8, 16, 16)), depth=kw.pop("depth", 1), **kw)


# ----------------------------------------------------------------------------- ViT (timm names)

class PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_chans: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                prefix: int = 0) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:  # rotary position on patch tokens only (Eva / PE style)
            q = torch.cat([q[:, :, :prefix], _rotate(q[:, :, prefix:], *rope)], 2)
            k = torch.cat([k[:, :, :prefix], _rotate(k[:, :, prefix:], *rope)], 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _rotate(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rot = torch.stack([-x2, x1], -1).flatten(-2)
    return x * cos + rot * sin


def rope_2d(gh: int, gw: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2-D rotary tables (sin, cos) of shape (gh*gw, head_dim), half of the dims per axis."""
    quarter = head_dim // 4
    freqs = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(torch.arange(gh, device=device, dtype=torch.float32),
                            torch.arange(gw, device=device, dtype=torch.float32), indexing="ij")
    ang = torch.cat([ys.reshape(-1, 1) * freqs, xs.reshape(-1, 1) * freqs], 1)  # (N, head_dim/2)
    ang = ang.repeat_interleave(2, -1)
    return ang.sin(), ang.cos()


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, layer_scale: str | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.layer_scale = layer_scale
        if layer_scale == "ls":  # timm VisionTransformer / DINOv2: blocks.N.ls1.gamma
            self.ls1, self.ls2 = LayerScale(dim), LayerScale(dim)
        elif layer_scale == "gamma":  # timm Eva / PE: blocks.N.gamma_1
            self.gamma_1 = nn.Parameter(1e-5 * torch.ones(dim))
            self.gamma_2 = nn.Parameter(1e-5 * torch.ones(dim))

    def _scale(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if self.layer_scale == "ls":
            return (self.ls1 if i == 1 else self.ls2)(x)
        if self.layer_scale == "gamma":
            return x * (self.gamma_1 if i == 1 else self.gamma_2)
        return x

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                prefix: int = 0) -> torch.Tensor:
        x = x + self._scale(1, self.attn(self.norm1(x), rope, prefix))
        return x + self._scale(2, self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """Plain ViT with timm parameter names. Output: patch tokens as a stride-8 feature map.

    `img_size` is the grid the absolute position embedding is stored for; other input sizes
    interpolate it (bicubic), as timm's `dynamic_img_size` does.
    """

    def __init__(self, img_size: tuple[int, int] = (224, 224), patch_size: int = 16, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, in_chans: int = 3,
                 layer_scale: str | None = None, use_rope: bool = False, norm_pre: bool = False,
                 abs_pos: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        if patch_size not in (8, 14, 16):
            raise ConfigError(f"patch_size must be 8, 14 or 16, got {patch_size}")
        self.patch_size = patch_size
        self.grid = (img_size[0] // patch_size, img_size[1] // patch_size)  # (h, w) of pos_embed
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid[0] * self.grid[1], embed_dim) * 0.02) \
            if abs_pos else None
        self.norm_pre = nn.LayerNorm(embed_dim, eps=1e-6) if norm_pre else nn.Identity()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, layer_scale) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.use_rope = use_rope
        self.num_heads = num_heads
        self.out_channels = embed_dim
        self.stride = 8

    def _pos(self, gh: int, gw: int) -> torch.Tensor | None:
        if self.pos_embed is None:
            return None
        cls, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if (gh, gw) != self.grid:
            grid = resample_pos_grid(grid, self.grid, (gh, gw))
        return torch.cat([cls, grid], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:  # pad to whole patches; the stride-8 map is cropped back below
            x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        t = self.patch_embed(x)
        gh, gw = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], 1)
        pos = self._pos(gh, gw)
        if pos is not None:
            t = t + pos
        t = self.norm_pre(t)
        rope = rope_2d(gh, gw, t.shape[-1] // self.num_heads, t.device) if self.use_rope else None
        for blk in self.blocks:
            t = blk(t, rope, 1)
        t = self.norm(t)[:, 1:]
        fmap = t.transpose(1, 2).reshape(b, -1, gh, gw)
        out_hw = (math.ceil(h / 8), math.ceil(w / 8))
        if fmap.shape[-2:] != out_hw:
            fmap = F.interpolate(fmap, size=out_hw, mode="bilinear", align_corners=False)
        return fmap


def resample_pos_grid(grid: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """(1, oh*ow, D) position embedding -> (1, nh*nw, D), bicubic (timm's resample_abs_pos_embed)."""
    d = grid.shape[-1]
    g = grid.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2)
    g = F.interpolate(g.float(), size=new, mode="bicubic", align_corners=False).to(grid.dtype)
    return g.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)


@register_encoder("vit_pe_spatial_tiny")
def vit_pe_spatial_tiny(**kw: Any) -> nn.Module:
    """PE-Spatial-tiny-like layout (Eva naming, RoPE + absolute pos, layer scale)."""
    cfg: dict[str, Any] = dict(img_size=(512, 512), patch_size=16, embed_dim=192, depth=12, num_heads=3,
                               layer_scale="gamma", use_rope=True, norm_pre=True)
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_pe_spatial_small")
def vit_pe_spatial_small(**kw: Any) -> nn.Module:
    cfg: dict[str, Any] = dict(img_size=(512, 512), patch_size=16, embed_dim=384, depth=12, num_heads=6,
                               layer_scale="gamma", use_rope=True, norm_pre=True)
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_dinov2_small")
def vit_dinov2_small(**kw: Any) -> nn.Module:
    cfg: dict[str, Any] = dict(img_size=(518, 518), patch_size=14, embed_dim=384, depth=12, num_heads=6,
                               layer_scale="ls")
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_test")
def vit_test(**kw: Any) -> nn.Module:
    cfg: dict[str, Any] = dict(img_size=(64, 64), patch_size=8, embed_dim=32, depth=2, num_heads=2,
                               layer_scale="ls")
    return VisionTransformer(**{**cfg, **kw})


# ----------------------------------------------------------------------------- local weights

def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path}: pretrained weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: one line, no traceback
        raise InputError(f"{path}: unreadable weights ({type(e).__name__}: {e})") from None
    for key in ("model", "state_dict", "module"):  # common training-checkpoint wrappers
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj


def load_pretrained(model: nn.Module, path: str | Path, prefix: str = "") -> None:
    """Load a timm-style state dict from a local .safetensors/.pth file into `model`.

    Position embeddings of another grid are interpolated to the model's grid. Keys are
    checked strictly (heads like `head.*`/`fc_norm.*`, unused by a dense encoder, are dropped);
    a mismatch raises InputError listing missing/unexpected keys.
    """
    path = Path(path)
    state = _read_state_dict(path)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc_norm.", "attn_pool."))}
    own = model.state_dict()
    if isinstance(model, VisionTransformer) and "pos_embed" in state and model.pos_embed is not None:
        pe = state["pos_embed"]
        n_new = own["pos_embed"].shape[1] - 1
        n_old = pe.shape[1] - 1
        if n_old != n_new:
            side = int(round(math.sqrt(n_old)))
            if side * side != n_old:
                raise InputError(f"{path}: pos_embed of {n_old} patches is not a square grid")
            grid = resample_pos_grid(pe[:, 1:], (side, side), model.grid)
            state["pos_embed"] = torch.cat([pe[:, :1], grid], 1)
            log.info("interpolated pos_embed %dx%d -> %dx%d", side, side, *model.grid)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
        raise InputError(f"{path}: weights do not match {type(model).__name__}: "
                         f"missing [{show(missing)}], unexpected [{show(unexpected)}]")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        k = bad[0]
        raise InputError(f"{path}: shape mismatch for {k}: file {tuple(state[k].shape)} vs model "
                         f"{tuple(own[k].shape)} ({len(bad)} tensors differ)")
    model.load_state_dict(state, strict=True)
    log.info("loaded %d tensors from %s", len(state), path)
