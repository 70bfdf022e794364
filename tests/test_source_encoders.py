"""Encoder registry and local-file loading of timm-style ViT checkpoints (no timm needed)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.models.backbones.vit import create_encoder, list_encoders, load_pretrained


def _timm_style_vit(grid: int, dim: int = 32, depth: int = 2, eva: bool = False) -> dict[str, torch.Tensor]:
    """A state dict spelled the way timm saves VisionTransformer (or Eva) weights, written by hand."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = {"cls_token": r(1, 1, dim), "pos_embed": r(1, 1 + grid * grid, dim),
          "patch_embed.proj.weight": r(dim, 3, 8, 8), "patch_embed.proj.bias": r(dim),
          "norm.weight": r(dim), "norm.bias": r(dim), "head.weight": r(10, dim), "head.bias": r(10)}
    for i in range(depth):
        b = f"blocks.{i}."
        sd.update({b + "norm1.weight": r(dim), b + "norm1.bias": r(dim), b + "norm2.weight": r(dim),
                   b + "norm2.bias": r(dim), b + "attn.qkv.weight": r(3 * dim, dim), b + "attn.qkv.bias": r(3 * dim),
                   b + "attn.proj.weight": r(dim, dim), b + "attn.proj.bias": r(dim),
                   b + "mlp.fc1.weight": r(4 * dim, dim), b + "mlp.fc1.bias": r(4 * dim),
                   b + "mlp.fc2.weight": r(dim, 4 * dim), b + "mlp.fc2.bias": r(dim)})
        if eva:
            sd.update({b + "gamma_1": r(dim), b + "gamma_2": r(dim)})
        else:
            sd.update({b + "ls1.gamma": r(dim), b + "ls2.gamma": r(dim)})
    return sd


def test_registry_lists_and_rejects():
    assert {"cnn_small", "cnn_test", "vit_test", "vit_pe_spatial_small", "vit_dinov2_small"} <= set(list_encoders())
    with pytest.raises(ConfigError, match="did you mean 'vit_test'"):
        create_encoder("vit_tset")


@pytest.mark.parametrize("name", ["cnn_test", "vit_test"])
def test_encoders_give_stride_8_maps(name):
    enc = create_encoder(name)
    out = enc(torch.rand(1, 3, 48, 64))
    assert out.shape == (1, enc.out_channels, 6, 8)


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_load_timm_checkpoint_with_pos_embed_interpolation(tmp_path, fmt):
    sd = _timm_style_vit(grid=4)  # saved at 32x32 input (4x4 patches); the model holds 8x8
    path = tmp_path / f"vit.{fmt}"
    if fmt == "safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"model": sd}, path)  # training-checkpoint wrapper is unwrapped
    enc = create_encoder("vit_test")
    load_pretrained(enc, path)
    assert torch.equal(enc.blocks[1].attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])
    assert torch.equal(enc.cls_token, sd["cls_token"])
    assert enc.pos_embed.shape == (1, 1 + 8 * 8, 32)
    assert torch.equal(enc.pos_embed[:, 0], sd["pos_embed"][:, 0])  # class token position kept
    assert torch.isfinite(enc(torch.rand(1, 3, 48, 64))).all()


def test_load_eva_style_checkpoint(tmp_path):
    sd = _timm_style_vit(grid=8, eva=True)
    sd["norm_pre.weight"], sd["norm_pre.bias"] = torch.ones(32), torch.zeros(32)
    save_file(sd, str(tmp_path / "pe.safetensors"))
    enc = create_encoder("vit_test", layer_scale="gamma", norm_pre=True, use_rope=True)
    load_pretrained(enc, tmp_path / "pe.safetensors")
    assert torch.equal(enc.blocks[0].gamma_1, sd["blocks.0.gamma_1"])


def test_mismatched_keys_are_listed(tmp_path):
    sd = _timm_style_vit(grid=8)
    del sd["blocks.1.mlp.fc2.weight"]
    sd["blocks.1.extra.weight"] = torch.zeros(1)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InputError, match=r"missing \[blocks.1.mlp.fc2.weight\].*unexpected \[blocks.1.extra.weight\]"):
        load_pretrained(create_encoder("vit_test"), tmp_path / "bad.safetensors")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_pretrained(create_encoder("vit_test"), tmp_path / "nope.safetensors")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="unreadable"):
        load_pretrained(create_encoder("vit_test"), tmp_path / "junk.pth")
