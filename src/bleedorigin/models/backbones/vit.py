"""Spatial encoders for the source localizer, behind a small registry of our own.

timm cannot be imported here (it pulls torchvision), so the ViT below re-implements timm's
parameter naming (`patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.attn.qkv`,
`blocks.N.mlp.fc1`, `norm`, layer scale as `ls1.gamma` (VisionTransformer, DINOv2) or
`gamma_1` (EVA-02)) so a state dict saved by timm loads with `load_pretrained`. The PE-Spatial
and DINOv2 ViT-S/14 presets reproduce their references' outputs (tests/test_paper_parity.py).

Every encoder maps an image (B, 3, H, W) to features (B, C, H/8, W/8) and exposes
`out_channels`; ViTs with patch 14 or 16 are resampled to reach stride 8.
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
from bleedorigin.models.layout import read_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the pixel normalisation our networks are fed with
IMAGENET_STD = (0.229, 0.224, 0.225)

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
    def __init__(self, patch: int, in_chans: int, dim: int, bias: bool = True):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, patch, patch, bias=bias)

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


def rope_2d(gh: int, gw: int, head_dim: int, device: torch.device, ref: tuple[int, int] | None = None,
            offset: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2-D rotary tables (sin, cos) of shape (gh*gw, head_dim), as timm's RotaryEmbeddingCat
    builds them for Eva / PE: positions (index + offset), rescaled so the grid spans `ref` (the
    pre-training grid), x frequencies first, then y, each interleaved in pairs."""
    quarter = head_dim // 4
    bands = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ref_h, ref_w = ref or (gh, gw)
    xs = (torch.arange(gw, device=device, dtype=torch.float32) + offset) / gw * ref_w
    ys = (torch.arange(gh, device=device, dtype=torch.float32) + offset) / gh * ref_h
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    ang = torch.cat([gx.reshape(-1, 1) * bands, gy.reshape(-1, 1) * bands], 1)  # (N, head_dim/2)
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
    def __init__(self, dim: int, heads: int, mlp_ratio: float, layer_scale: str | None, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.layer_scale = layer_scale
        if layer_scale == "ls":  # timm VisionTransformer / DINOv2: blocks.N.ls1.gamma
            self.ls1, self.ls2 = LayerScale(dim), LayerScale(dim)
        elif layer_scale == "gamma":  # timm Eva (EVA-02 style): blocks.N.gamma_1
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
    resample it as the reference does: `pos_interp="timm"` (bicubic to the new size with
    anti-aliasing, timm's dynamic_img_size) or `"dinov2"` (bicubic by scale factor with the 0.1
    offset of the official DINOv2 code) or `"size"` (bicubic to the new size, no anti-aliasing:
    Hugging Face transformers and Track-On). `rope_ref` is the grid RoPE positions are rescaled to
    (PE: 32x32); `post_norm=False` leaves the tokens unnormalised after the last block (PE).
    `pixel_norm=(mean, std)`: the pixel normalisation the weights were trained with when it is
    not ImageNet's (PE: 0.5, 0.5); `forward` converts its ImageNet-normalised input to it,
    `forward_tokens` takes input already normalised the encoder's way.
    """

    def __init__(self, img_size: tuple[int, int] = (224, 224), patch_size: int = 16, embed_dim: int = 192,
                 depth: int = 12, num_heads: int = 3, mlp_ratio: float = 4.0, in_chans: int = 3,
                 layer_scale: str | None = None, use_rope: bool = False, norm_pre: bool = False,
                 abs_pos: bool = True, post_norm: bool = True, norm_eps: float = 1e-6,
                 rope_ref: tuple[int, int] | None = None, pos_interp: str = "timm", patch_bias: bool = True,
                 pixel_norm: tuple[float, float] | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        if patch_size not in (8, 14, 16):
            raise ConfigError(f"patch_size must be 8, 14 or 16, got {patch_size}")
        if pos_interp not in ("timm", "dinov2", "size"):
            raise ConfigError(f"pos_interp must be 'timm', 'dinov2' or 'size', got {pos_interp!r}")
        self.patch_size = patch_size
        self.grid = (img_size[0] // patch_size, img_size[1] // patch_size)  # (h, w) of pos_embed
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid[0] * self.grid[1], embed_dim) * 0.02) \
            if abs_pos else None
        self.norm_pre = nn.LayerNorm(embed_dim, eps=norm_eps) if norm_pre else nn.Identity()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, layer_scale, norm_eps)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if post_norm else nn.Identity()
        if pixel_norm is not None:  # ImageNet-normalised input -> (x - mean) / std of this encoder
            mean, std = pixel_norm
            imagenet_mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            imagenet_std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("renorm_scale", imagenet_std / std, persistent=False)
            self.register_buffer("renorm_shift", (imagenet_mean - mean) / std, persistent=False)
        self.pixel_norm = pixel_norm
        self.use_rope = use_rope
        self.rope_ref = tuple(rope_ref) if rope_ref else None
        self.pos_interp = pos_interp
        self.num_heads = num_heads
        self.out_channels = embed_dim
        self.stride = 8

    def _pos(self, gh: int, gw: int) -> torch.Tensor | None:
        if self.pos_embed is None:
            return None
        cls, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if (gh, gw) != self.grid:
            if self.pos_interp == "dinov2":
                grid = _resample_dinov2(grid, self.grid, (gh, gw))
            else:
                grid = resample_pos_grid(grid, self.grid, (gh, gw), antialias=self.pos_interp == "timm")
        return torch.cat([cls, grid], 1)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch tokens (B, gh*gw, D) after the final norm (if any), and the grid (gh, gw)."""
        b, _, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:  # pad to whole patches; the stride-8 map is cropped back in forward
            x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        t = self.patch_embed(x)
        gh, gw = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], 1)
        pos = self._pos(gh, gw)
        if pos is not None:
            t = t + pos
        t = self.norm_pre(t)
        rope = rope_2d(gh, gw, t.shape[-1] // self.num_heads, t.device, self.rope_ref) if self.use_rope else None
        for blk in self.blocks:
            t = blk(t, rope, 1)
        return self.norm(t)[:, 1:], (gh, gw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised image (B, 3, H, W) -> stride-8 feature map."""
        if self.pixel_norm is not None:
            x = x * self.renorm_scale + self.renorm_shift
        b, _, h, w = x.shape
        t, (gh, gw) = self.forward_tokens(x)
        fmap = t.transpose(1, 2).reshape(b, -1, gh, gw)
        out_hw = (math.ceil(h / 8), math.ceil(w / 8))
        if fmap.shape[-2:] != out_hw:
            fmap = F.interpolate(fmap, size=out_hw, mode="bilinear", align_corners=False)
        return fmap


def resample_pos_grid(grid: torch.Tensor, old: tuple[int, int], new: tuple[int, int],
                      antialias: bool = False) -> torch.Tensor:
    """(1, oh*ow, D) position embedding -> (1, nh*nw, D), bicubic (timm's resample_abs_pos_embed)."""
    d = grid.shape[-1]
    g = grid.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2)
    g = F.interpolate(g.float(), size=new, mode="bicubic", align_corners=False, antialias=antialias).to(grid.dtype)
    return g.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)


def _resample_dinov2(grid: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    # The official DINOv2 code interpolates by scale factor (new + 0.1) / old, which samples at
    # slightly different positions than interpolating to the size; kept for output parity.
    d = grid.shape[-1]
    g = grid.reshape(1, old[0], old[1], d).permute(0, 3, 1, 2).float()
    g = F.interpolate(g, scale_factor=((new[0] + 0.1) / old[0], (new[1] + 0.1) / old[1]), mode="bicubic",
                      antialias=False).to(grid.dtype)
    return g.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], d)


# PE-Spatial as timm defines it (eva.py, vit_pe_spatial_*): Eva blocks without layer scale, a
# pre-transformer norm, no final norm, LayerNorm eps 1e-5, RoPE rescaled to a 32x32 grid with
# offset 1 and x-first bands, an absolute position embedding with a class token, and a patch
# embedding without bias.
_PE_SPATIAL: dict[str, Any] = dict(use_rope=True, norm_pre=True, post_norm=False, norm_eps=1e-5, patch_bias=False,
                                   pixel_norm=(0.5, 0.5),
                                   rope_ref=(32, 32), layer_scale=None, pos_interp="timm")


@register_encoder("vit_pe_spatial_tiny")
def vit_pe_spatial_tiny(**kw: Any) -> nn.Module:
    """timm `vit_pe_spatial_tiny_patch16_512.fb`."""
    cfg: dict[str, Any] = dict(img_size=(512, 512), patch_size=16, embed_dim=192, depth=12, num_heads=3,
                               **_PE_SPATIAL)
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_pe_spatial_small")
def vit_pe_spatial_small(**kw: Any) -> nn.Module:
    """timm `vit_pe_spatial_small_patch16_512.fb` (the `source_paper` preset's encoder)."""
    cfg: dict[str, Any] = dict(img_size=(512, 512), patch_size=16, embed_dim=384, depth=12, num_heads=6,
                               **_PE_SPATIAL)
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_pe_spatial_large")
def vit_pe_spatial_large(**kw: Any) -> nn.Module:
    """timm `vit_pe_spatial_large_patch14_448.fb` (PE-Spatial-448 of the paper's encoder table)."""
    cfg: dict[str, Any] = dict(img_size=(448, 448), patch_size=14, embed_dim=1024, depth=24, num_heads=16,
                               **_PE_SPATIAL)
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_dinov2_small")
def vit_dinov2_small(**kw: Any) -> nn.Module:
    """DINOv2 ViT-S/14 (torch hub `dinov2_vits14`, timm `vit_small_patch14_dinov2.lvd142m`,
    Hugging Face `facebook/dinov2-small`)."""
    cfg: dict[str, Any] = dict(img_size=(518, 518), patch_size=14, embed_dim=384, depth=12, num_heads=6,
                               layer_scale="ls", pos_interp="dinov2")
    return VisionTransformer(**{**cfg, **kw})


@register_encoder("vit_test")
def vit_test(**kw: Any) -> nn.Module:
    cfg: dict[str, Any] = dict(img_size=(64, 64), patch_size=8, embed_dim=32, depth=2, num_heads=2,
                               layer_scale="ls")
    return VisionTransformer(**{**cfg, **kw})


# ----------------------------------------------------------------------------- local weights

def convert_hf_vit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face transformers ViT/DINOv2 names -> timm / torch hub names (q, k, v fused)."""
    out: dict[str, torch.Tensor] = {}
    simple = {"embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
              "embeddings.position_embeddings": "pos_embed",
              "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
              "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
              "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias"}
    inner = {"norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
             "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",  # file / transformers>=5
             "layer_scale1.lambda1": "ls1.gamma", "layer_scale2.lambda1": "ls2.gamma"}
    qkv_names = {"attention.attention.query": 0, "attention.attention.key": 1, "attention.attention.value": 2,
                 "attention.q_proj": 0, "attention.k_proj": 1, "attention.v_proj": 2}
    qkv: dict[tuple[str, str], list[torch.Tensor | None]] = {}
    for k, v in state.items():
        if k in simple:
            out[simple[k]] = v
            continue
        if not k.startswith("encoder.layer."):
            out[k] = v  # left as is: reported as unexpected by the strict check
            continue
        i, rest = k[len("encoder.layer."):].split(".", 1)
        part, _, kind = rest.rpartition(".")
        if part in qkv_names:  # q, k, v fused below
            qkv.setdefault((i, kind), [None, None, None])[qkv_names[part]] = v
            continue
        for src, dst in inner.items():
            if rest == src or rest.startswith(src + "."):
                out[f"blocks.{i}.{dst}{rest[len(src):]}"] = v
                break
        else:
            out[k] = v
    for (i, kind), parts in qkv.items():
        if any(p is None for p in parts):
            raise InputError(f"layer {i}: query, key and value {kind} are not all present")
        out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(parts, 0)  # type: ignore[arg-type]
    return out


def load_pretrained(model: nn.Module, path: str | Path, prefix: str = "") -> None:
    """Load a timm-style state dict from a local .safetensors/.pth file into `model`.

    Accepted layouts: timm (PE-Spatial, DINOv2), the official DINOv2 torch hub files
    (`dinov2_vits14_pretrain.pth`) and Hugging Face transformers (`facebook/dinov2-small`; the
    encoder then resamples positions as transformers does, by size, so its outputs match).

    Position embeddings of another grid are interpolated to the model's grid. Keys are
    checked strictly (heads like `head.*`/`fc_norm.*`, unused by a dense encoder, are dropped);
    a mismatch raises InputError listing missing/unexpected keys.
    """
    path = Path(path)
    state = read_state_dict(path)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if any(k.startswith("embeddings.") for k in state):
        state = convert_hf_vit(state)
        if isinstance(model, VisionTransformer) and model.pos_interp == "dinov2":
            model.pos_interp = "size"  # resample positions as transformers does, for its outputs
    # Heads and DINOv2's masked-modelling token are unused by a dense encoder.
    state = {k: v for k, v in state.items()
             if not k.startswith(("head.", "fc_norm.", "attn_pool.", "pooler.")) and k != "mask_token"}
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
