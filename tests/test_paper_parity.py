"""Parity with the reference implementations, from committed fixtures (no network, no timm).

tools/make_parity_fixtures.py recorded, in a separate environment with the reference code,
each released checkpoint's key layout and the reference outputs on a small input with random
weights built by `seeded_state_dict` from the layout. Here the same state dict is rebuilt, loaded
strictly through our loaders (from a file, in the release's layout) and the outputs compared.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bleedorigin.errors import InputError
from bleedorigin.models.layout import compare_layout, layout_of, load_layout, seeded_state_dict
from bleedorigin.models.backbones.vit import create_encoder, load_pretrained

FIX = Path(__file__).parent / "fixtures" / "parity"
TOL = 1e-4


def _fixture(name: str) -> tuple[dict[str, torch.Tensor], dict]:
    return load_file(str(FIX / f"{name}.safetensors")), json.loads((FIX / f"{name}.json").read_text())


def _released_file(tmp_path: Path, layout: str, seed: int, fmt: str = "safetensors") -> Path:
    sd = seeded_state_dict(load_layout(layout)["keys"], seed)
    path = tmp_path / f"{layout}.{fmt}"
    if fmt == "safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"model": sd}, path)
    return path


@pytest.mark.parametrize("encoder,layout", [("vit_pe_spatial_small", "pe_spatial_small"),
                                            ("vit_pe_spatial_large", "pe_spatial_large"),
                                            ("vit_dinov2_small", "dinov2_vits14_hub"),
                                            ("vit_dinov2_small", "dinov2_small_hf")])
def test_encoder_has_the_released_layout(encoder, layout):
    """Every released key has a place in our encoder (modulo the converter and unused heads)."""
    from bleedorigin.models.backbones.vit import convert_hf_vit
    keys = load_layout(layout)["keys"]
    keys = {k: v for k, v in keys.items() if k != "mask_token" and not k.startswith("embeddings.mask_token")}
    if layout.endswith("_hf"):
        keys = layout_of(convert_hf_vit({k: torch.empty(v) for k, v in keys.items()}))
    with torch.device("meta"):
        own = create_encoder(encoder).state_dict()
    assert compare_layout(own, keys) == {"missing": [], "unexpected": [], "shape": []}


@pytest.mark.parametrize("name,encoder", [("pe_spatial_small", "vit_pe_spatial_small"),
                                          ("dinov2_vits14_hub", "vit_dinov2_small"),
                                          ("dinov2_small_hf", "vit_dinov2_small")])
def test_encoder_output_parity(tmp_path, name, encoder):
    data, meta = _fixture(name)
    path = _released_file(tmp_path, meta["layout"], meta["seed"])
    enc = create_encoder(encoder).eval()
    load_pretrained(enc, path)
    with torch.no_grad():
        tokens, _ = enc.forward_tokens(data["input"])
    assert tokens.shape == data["tokens"].shape
    err = (tokens - data["tokens"]).abs().max().item()
    assert err <= TOL, f"{name}: max abs difference {err:.2e}"


def test_strict_load_names_what_is_wrong(tmp_path):
    sd = seeded_state_dict(load_layout("pe_spatial_small")["keys"], 0)
    sd["blocks.0.gamma_1"] = torch.ones(384)  # a layer scale PE-Spatial does not have
    del sd["blocks.11.mlp.fc2.bias"]
    save_file(sd, str(tmp_path / "pe.safetensors"))
    with pytest.raises(InputError, match=r"missing \[blocks.11.mlp.fc2.bias\].*unexpected \[blocks.0.gamma_1\]"):
        load_pretrained(create_encoder("vit_pe_spatial_small"), tmp_path / "pe.safetensors")


def test_trackon_has_the_released_layout():
    from bleedorigin.models.track.paper.model import TrackOn
    with torch.device("meta"):
        own = TrackOn().state_dict()
    assert compare_layout(own, load_layout("trackon_v1")["keys"]) == {"missing": [], "unexpected": [], "shape": []}


def test_trackon_streaming_parity(tmp_path):
    """Track-On v1 streaming (TrackOnFF) with random weights: our points and visibility match."""
    from bleedorigin.models.track.paper.loading import load_trackon
    from bleedorigin.models.track.paper.model import TrackOn, TrackOnConfig
    data, meta = _fixture("trackon_v1")
    # the checkpoint as Track-On saves it: {"model": ..., "args": Namespace} with DistributedDataParallel's prefix
    sd = seeded_state_dict({**load_layout("trackon_v1")["keys"], **meta["layout_changes"]}, meta["seed"])
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 1,
                "args": argparse.Namespace(input_size=[96, 128])}, tmp_path / "ckpt.pt")
    net = TrackOn(TrackOnConfig(input_size=tuple(meta["input_size"]), support_grid=meta["support_grid"])).eval()
    load_trackon(net, tmp_path / "ckpt.pt")
    frames = data["frames"][:, None]
    with torch.no_grad():
        state = net.start(frames[0], data["points"])
        for t, frame in enumerate(frames):
            pts, vis, _, state = net.step(frame, state)
            err = (pts - data["coords"][t]).abs().max().item()
            assert err <= TOL, f"frame {t}: max point difference {err:.2e} px"
            assert torch.equal((vis > net.cfg.visibility_threshold).float(), data["visible"][t])


def test_trackon_wrong_checkpoint_is_named(tmp_path):
    from bleedorigin.models.track.paper.loading import load_trackon
    from bleedorigin.models.track.paper.model import TrackOn, TrackOnConfig
    _, meta = _fixture("trackon_v1")
    sd = seeded_state_dict({**load_layout("trackon_v1")["keys"], **meta["layout_changes"]}, 0)
    del sd["projection2.weight"]
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(InputError, match=r"missing \[projection2.weight\]"):
        load_trackon(TrackOn(TrackOnConfig(input_size=(96, 128))), tmp_path / "bad.pt")


def test_pe_spatial_takes_imagenet_normalised_frames():
    """The source network normalises frames the ImageNet way; PE-Spatial was trained on (x - 0.5) / 0.5."""
    import torch.nn.functional as F
    enc = create_encoder("vit_pe_spatial_small", depth=2).eval()
    x = torch.rand(1, 3, 48, 64)
    mean, std = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1), torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    with torch.no_grad():
        fmap = enc((x - mean) / std)
        tokens, (gh, gw) = enc.forward_tokens((x - 0.5) / 0.5)
    want = F.interpolate(tokens.transpose(1, 2).reshape(1, -1, gh, gw), size=(6, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(fmap, want, atol=1e-5)
