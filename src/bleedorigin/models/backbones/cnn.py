"""Small CNN feature extractor (stride 4 and 8) and the Red-Mask encoder of BleedOrigin-Track.

The paper's tracker uses a frozen DINOv2 + adapter; on 2 CPU cores we use a from-scratch CNN
with a stride-16 context branch folded back into the stride-8 map (receptive field ~100 px,
enough to match under blur and blood). Each frame is normalised by its own mean/std first:
brightness/contrast changes between endoscopes then barely reach the features.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if k % 2 else 0, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SepBlock(nn.Module):
    """Residual depthwise-separable block (MobileNet style): cheap spatial context on 2 cores."""

    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, groups=c, bias=False)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn(self.pw(self.dw(x))))


def normalise_frame(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel standardisation of (B, 3, H, W) in [0, 1] (stats on a 4x
    subsampled copy: same numbers, a fraction of the cost)."""
    small = rgb[:, :, ::4, ::4]
    mean = small.mean(dim=(2, 3), keepdim=True)
    std = small.std(dim=(2, 3), keepdim=True)
    return (rgb - mean) / (std + 0.02)


class ConvBackbone(nn.Module):
    """(B, 3, H, W) RGB in [0, 1] -> f4 (B, c4, H/4, W/4), f8 (B, out_dim, H/8, W/8).

    About 0.25 GMAC at 512x384: a 4x4 patchify stem, 2x2 strided downsampling and
    depthwise-separable blocks (dilated at stride 16 for a wide receptive field)."""

    def __init__(self, c2: int = 16, c4: int = 32, c8: int = 64, c16: int = 128, out_dim: int = 96):
        super().__init__()
        del c2  # kept in the config for compatibility; the patchify stem has no stride-2 stage
        self.stem = nn.Sequential(conv_bn(3, c4, 4, 4), SepBlock(c4))
        self.down8 = nn.Sequential(conv_bn(c4, c8, 2, 2), SepBlock(c8), SepBlock(c8, 2))
        self.down16 = nn.Sequential(conv_bn(c8, c16, 2, 2), SepBlock(c16, 2), SepBlock(c16, 4))
        self.fuse = nn.Conv2d(c8 + c16, out_dim, 1)
        self.c4, self.out_dim = c4, out_dim

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalise_frame(rgb)
        f4 = self.stem(x)
        f8 = self.down8(f4)
        f16 = self.down16(f8)
        up = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return f4, self.fuse(torch.cat([f8, up], 1))


class RedMaskEncoder(nn.Module):
    """Blood-likelihood map (B, 1, H, W) in [0, 1] -> (B, dim, H/8, W/8) features joined to K/V."""

    def __init__(self, dim: int = 16, stride: int = 8):
        super().__init__()
        self.stride = stride
        self.net = nn.Sequential(nn.Conv2d(2, dim, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 1))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        # mean and max pooling: how much blood, and whether any blood, in each cell
        avg = F.avg_pool2d(mask, self.stride)
        mx = F.max_pool2d(mask, self.stride)
        return self.net(torch.cat([avg, mx], 1))


def fallback_red_mask(rgb: np.ndarray) -> np.ndarray:
    """The built-in blood likelihood (H, W) float32 in [0, 1] the shipped tracker was trained with
    (`red_mask_source: fallback`): red dominance over green/blue, soft-thresholded."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    dom = r - np.maximum(g, b)
    sat = dom / (r + 1e-3)
    return np.clip((sat - 0.35) / 0.4, 0.0, 1.0).astype(np.float32) * (r > 0.12)


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """Blood likelihood map of `red_mask_source: shared` (bleedorigin.vision.color.red_mask)."""
    from bleedorigin.vision.color import red_mask as shared_red_mask
    return shared_red_mask(rgb)
