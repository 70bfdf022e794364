"""Track-On's backbone: frozen DINOv2 ViT-S/14 with a trainable ViT-Adapter (Chen et al., 2023).

The adapter keeps a convolutional "spatial prior" pyramid (strides 4, 8, 16, 32) that exchanges
information with the ViT tokens through deformable attention: before each group of ViT blocks the
tokens read the pyramid (injector), after it the pyramid reads the tokens (extractor + ConvFFN).
Parameter names follow the released Track-On checkpoint (`backbone.vit_encoder.*`); the ViT part
has the official DINOv2 names, so its weights also load from `dinov2_vits14_pretrain.pth`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.models.backbones.vit import VisionTransformer
from bleedorigin.models.track.paper.deform_attn import MSDeformAttn

EPS = 1e-6  # DINOv2's LayerNorm epsilon, also used by the adapter's norms


def grid_centres(shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """Normalised (x, y) centres of every cell of each grid, concatenated: (1, sum(h*w), 1, 2)."""
    refs = []
    for h, w in shapes:
        ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, device=device) / h,
                                torch.linspace(0.5, w - 0.5, w, device=device) / w, indexing="ij")
        refs.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], -1))
    return torch.cat(refs, 0)[None, :, None]


class ConvFFN(nn.Module):
    """Linear -> 3x3 depthwise conv on each pyramid level -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Module()  # nested: the released keys are ffn.dwconv.dwconv.*
        self.dwconv.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, shapes: list[tuple[int, int]]) -> torch.Tensor:
        x = self.fc1(x)
        b, _, c = x.shape
        parts, start = [], 0
        for h, w in shapes:
            lvl = x[:, start:start + h * w].transpose(1, 2).reshape(b, c, h, w)
            parts.append(self.dwconv.dwconv(lvl).flatten(2).transpose(1, 2))
            start += h * w
        return self.fc2(self.act(torch.cat(parts, 1)))


class Injector(nn.Module):
    """ViT tokens read the 3-level pyramid; the update is scaled by a learned gain."""

    def __init__(self, dim: int, heads: int, points: int):
        super().__init__()
        self.query_norm = nn.LayerNorm(dim, eps=EPS)
        self.feat_norm = nn.LayerNorm(dim, eps=EPS)
        self.attn = MSDeformAttn(dim, heads, 3, points)
        self.gamma = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, ref: torch.Tensor, c: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        feat = self.feat_norm(c)
        return x + self.gamma * self.attn(self.query_norm(x), feat, ref, shapes)


class Extractor(nn.Module):
    """Pyramid tokens read the ViT tokens, then a ConvFFN."""

    def __init__(self, dim: int, heads: int, points: int, ffn_ratio: float = 0.25):
        super().__init__()
        self.query_norm = nn.LayerNorm(dim, eps=EPS)
        self.feat_norm = nn.LayerNorm(dim, eps=EPS)
        self.attn = MSDeformAttn(dim, heads, 1, points)
        self.ffn = ConvFFN(dim, int(dim * ffn_ratio))
        self.ffn_norm = nn.LayerNorm(dim, eps=EPS)

    def forward(self, c: torch.Tensor, ref: torch.Tensor, x: torch.Tensor, vit_shape: tuple[int, int],
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        c = c + self.attn(self.query_norm(c), self.feat_norm(x), ref, [vit_shape])
        return c + self.ffn(self.ffn_norm(c), shapes)


class Interaction(nn.Module):
    def __init__(self, dim: int, heads: int, points: int, extra: bool):
        super().__init__()
        self.injector = Injector(dim, heads, points)
        self.extractor = Extractor(dim, heads, points)
        self.extra_extractors = nn.Sequential(*(Extractor(dim, heads, points) for _ in range(2))) if extra else None


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SpatialPrior(nn.Module):
    """Conv stem at strides 4, 8, 16, 32, each level projected to the ViT width."""

    def __init__(self, planes: int = 64, dim: int = 384):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, planes, 2), *_conv_bn(planes, planes, 1), *_conv_bn(planes, planes, 1),
                                  nn.MaxPool2d(3, 2, 1))
        self.conv2 = nn.Sequential(*_conv_bn(planes, 2 * planes, 2))
        self.conv3 = nn.Sequential(*_conv_bn(2 * planes, 4 * planes, 2))
        self.conv4 = nn.Sequential(*_conv_bn(4 * planes, 4 * planes, 2))
        self.fc1 = nn.Conv2d(planes, dim, 1)
        self.fc2 = nn.Conv2d(2 * planes, dim, 1)
        self.fc3 = nn.Conv2d(4 * planes, dim, 1)
        self.fc4 = nn.Conv2d(4 * planes, dim, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stem(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return [self.fc1(c1), self.fc2(c2), self.fc3(c3), self.fc4(c4)]


class ViTAdapter(VisionTransformer):
    """DINOv2 ViT-S/14 (frozen) + adapter. forward(x) -> 4 maps (B, 384, H/s, W/s), s = 4, 8, 16, 32."""

    def __init__(self, groups: tuple[tuple[int, int], ...] = ((0, 2), (3, 5), (6, 8), (9, 11)), heads: int = 6,
                 points: int = 4):
        super().__init__(img_size=(518, 518), patch_size=14, embed_dim=384, depth=12, num_heads=6,
                         layer_scale="ls", pos_interp="dinov2")
        for p in self.parameters():  # the ViT is frozen; only the adapter parts below train
            p.requires_grad = False
        dim = self.out_channels
        self.groups = groups
        self.level_embed = nn.Parameter(torch.zeros(3, dim))
        self.spm = SpatialPrior(64, dim)
        self.interactions = nn.Sequential(*(Interaction(dim, heads, points, extra=i == len(groups) - 1)
                                            for i in range(len(groups))))
        self.up = nn.ConvTranspose2d(dim, dim, 2, 2)
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.BatchNorm2d(dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        b, _, h, w = x.shape
        shapes = [(h // 8, w // 8), (h // 16, w // 16), (h // 32, w // 32)]
        vit_shape = (h // 14, w // 14)
        ref_vit = grid_centres([vit_shape], x.device)  # ViT tokens reading the pyramid
        ref_pyr = grid_centres(shapes, x.device)       # pyramid tokens reading the ViT
        c1, *rest = self.spm(x)
        c = torch.cat([lvl.flatten(2).transpose(1, 2) + self.level_embed[i] for i, lvl in enumerate(rest)], 1)

        if h % 14 or w % 14:
            x = F.interpolate(x, size=(vit_shape[0] * 14, vit_shape[1] * 14), mode="bilinear", align_corners=False)
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        # Track-On resizes the 37x37 position grid to the token grid by size (no 0.1 offset).
        pos = self.pos_embed[:, 1:].reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=vit_shape, mode="bicubic", align_corners=False)
        t = t + pos.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b, -1, -1) + self.pos_embed[:, 0]

        for (first, last), inter in zip(self.groups, self.interactions):
            t = inter.injector(t, ref_vit, c, shapes)
            t = torch.cat([cls, t], 1)
            for blk in self.blocks[first:last + 1]:
                t = blk(t)
            cls, t = t[:, :1], t[:, 1:]
            c = inter.extractor(c, ref_pyr, t, vit_shape, shapes)
            for extra in inter.extra_extractors or ():
                c = extra(c, ref_pyr, t, vit_shape, shapes)

        n2, n3 = shapes[0][0] * shapes[0][1], shapes[1][0] * shapes[1][1]
        c2 = c[:, :n2].transpose(1, 2).reshape(b, -1, *shapes[0])
        c3 = c[:, n2:n2 + n3].transpose(1, 2).reshape(b, -1, *shapes[1])
        c4 = c[:, n2 + n3:].transpose(1, 2).reshape(b, -1, *shapes[2])
        c1 = self.up(c2) + c1
        return [self.norm1(c1), self.norm2(c2), self.norm3(c3), self.norm4(c4)]
