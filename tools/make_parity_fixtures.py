"""Record parity fixtures for the paper models from their reference implementations.

Runs in a throwaway environment OUTSIDE the project, never in CI. It builds each reference model
with random weights (filled by `bleedorigin.models.layout.seeded_state_dict`, deterministic per
key name), runs it on a small fixed input and writes:

  src/bleedorigin/assets/layouts/<name>.json   key names and shapes of the released checkpoint
                                               (used by `bleedorigin weights --check` and tests)
  tests/fixtures/parity/<name>.safetensors     the input and reference outputs (a few kB each)
  tests/fixtures/parity/<name>.json            seed, sizes, reference versions, the small
                                               model's layout when it differs from the release

The tests rebuild the same random state dict from the layout and seed, load it strictly into
our models and compare outputs (tolerance 1e-4), without the reference code or the network.

Set-up (x86_64; see docs/paper-models.md):
  python3 -m venv ../parity-venv
  ../parity-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
  ../parity-venv/bin/pip install timm transformers safetensors mmengine mmcv-lite
  git clone https://github.com/gorkaydemir/track_on -b track-on   # Track-On v1 (commit 009a491)
  git clone https://github.com/facebookresearch/dinov2
  ../parity-venv/bin/python tools/make_parity_fixtures.py --trackon-repo track_on --dinov2-repo dinov2

mmcv-lite ships the Python side of mmcv's MultiScaleDeformableAttention without the compiled
extension; on the CPU that class runs mmcv's own pure-PyTorch path, so a stand-in `mmcv._ext`
module (never called) is enough to import it.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from bleedorigin.models.layout import layout_of, seeded_state_dict  # noqa: E402

SEED = 1234


def _save(out: Path, name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, str(out / f"{name}.safetensors"))
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {name}: " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in tensors.items()))


def _write_layout(layouts: Path, name: str, model: torch.nn.Module | dict, source: str, reference: str) -> dict:
    state = model if isinstance(model, dict) else model.state_dict()
    keys = layout_of(state)
    layouts.mkdir(parents=True, exist_ok=True)
    doc = {"source": source, "reference": reference, "keys": keys,
           "tensor_bytes_fp32": int(sum(int(np.prod(s)) * 4 for s in keys.values()))}
    (layouts / f"{name}.json").write_text(json.dumps(doc, indent=0) + "\n")
    return keys


def _load_seeded(model: torch.nn.Module, seed: int = SEED) -> dict[str, list[int]]:
    keys = layout_of(model.state_dict())
    model.load_state_dict(seeded_state_dict(keys, seed), strict=True)
    return keys


def _image(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape) * scale).float()


# ----------------------------------------------------------------------------- PE-Spatial (timm)

def pe_spatial(out: Path, layouts: Path) -> None:
    import timm
    ref = f"timm {timm.__version__}"
    for name, timm_name in (("pe_spatial_small", "vit_pe_spatial_small_patch16_512"),
                            ("pe_spatial_large", "vit_pe_spatial_large_patch14_448")):
        full = timm.create_model(timm_name, pretrained=False, num_classes=0)
        _write_layout(layouts, name, full, f"timm/{timm_name}.fb (model.safetensors)", f"{ref} {timm_name}")
        if name != "pe_spatial_small":
            continue  # layout only for the large one: its parity follows from the same code path
        model = timm.create_model(timm_name, pretrained=False, num_classes=0, dynamic_img_size=True).eval()
        _load_seeded(model)
        x = _image((1, 3, 48, 64), 1)  # 3x4 patches: position embedding and RoPE both resampled
        with torch.no_grad():
            tokens = model.forward_features(x)[:, 1:]
        _save(out, name, {"input": x, "tokens": tokens},
              {"seed": SEED, "reference": f"{ref} {timm_name} dynamic_img_size=True", "layout": name})


# ----------------------------------------------------------------------------- DINOv2

def dinov2_hub(out: Path, layouts: Path, repo: Path) -> None:
    sys.path.insert(0, str(repo))
    from dinov2.hub.backbones import dinov2_vits14
    model = dinov2_vits14(pretrained=False).eval()
    _write_layout(layouts, "dinov2_vits14_hub", model, "dinov2_vits14_pretrain.pth (torch hub)",
                  "facebookresearch/dinov2 dinov2_vits14")
    _load_seeded(model)
    x = _image((1, 3, 56, 70), 2)  # 4x5 patches from the 37x37 grid
    with torch.no_grad():
        tokens = model.forward_features(x)["x_norm_patchtokens"]
    _save(out, "dinov2_vits14_hub", {"input": x, "tokens": tokens},
          {"seed": SEED, "reference": "facebookresearch/dinov2 hub dinov2_vits14", "layout": "dinov2_vits14_hub"})


# transformers >= 5 renames the attention weights when it loads a file; the released
# facebook/dinov2-small file keeps the earlier names, which are the ones recorded.
_HF_FILE_NAMES = (("attention.q_proj", "attention.attention.query"), ("attention.k_proj", "attention.attention.key"),
                  ("attention.v_proj", "attention.attention.value"), ("attention.o_proj", "attention.output.dense"))


def dinov2_hf(out: Path, layouts: Path) -> None:
    import transformers
    from transformers import Dinov2Config, Dinov2Model
    cfg = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518,
                       patch_size=14, layerscale_value=1.0)
    model = Dinov2Model(cfg).eval()

    def file_name(k: str) -> str:
        for new, old in _HF_FILE_NAMES:
            k = k.replace(new, old)
        return k
    to_model = {file_name(k): k for k in model.state_dict()}
    file_state = {file_name(k): v for k, v in model.state_dict().items()}
    keys = _write_layout(layouts, "dinov2_small_hf", file_state, "facebook/dinov2-small (model.safetensors)",
                         f"transformers {transformers.__version__} Dinov2Model, file key names")
    model.load_state_dict({to_model[k]: v for k, v in seeded_state_dict(keys, SEED).items()}, strict=True)
    x = _image((1, 3, 56, 70), 3)
    with torch.no_grad():
        tokens = model(pixel_values=x).last_hidden_state[:, 1:]
    _save(out, "dinov2_small_hf", {"input": x, "tokens": tokens},
          {"seed": SEED, "reference": f"transformers {transformers.__version__} Dinov2Model",
           "layout": "dinov2_small_hf"})


# ----------------------------------------------------------------------------- Track-On v1

def _import_trackon(repo: Path) -> Any:
    ext = types.ModuleType("mmcv._ext")  # the compiled ops are never reached on the CPU

    def _missing(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def fail(*a: Any, **k: Any) -> None:
            raise RuntimeError(f"mmcv._ext.{name} is not available (CPU reference run)")
        return fail
    ext.__getattr__ = _missing  # type: ignore[attr-defined]
    sys.modules["mmcv._ext"] = ext
    sys.path.insert(0, str(repo))
    import dino_adapter.dino_vit_adapter as dva
    from dino_adapter.vit.vision_transformer import DinoVisionTransformer

    def no_download(url: str, **kw: Any) -> dict:  # the reference would fetch DINOv2 weights here
        return DinoVisionTransformer(**dva.vit_kwargs).state_dict()
    dva.torch.hub.load_state_dict_from_url = no_download
    from model.track_on_ff import TrackOnFF
    return TrackOnFF


def _trackon_args(size: tuple[int, int]) -> argparse.Namespace:
    return argparse.Namespace(N=8, T=3, input_size=list(size), stride=4, transformer_embedding_dim=256, cnn_corr=False,
                              linear_visibility=False, num_layers=3, num_layers_offset_head=3, num_layers_rerank=3,
                              num_layers_rerank_fusion=1, top_k_regions=16, num_layers_spatial_writer=3,
                              num_layers_spatial_self=1, num_layers_spatial_cross=1, memory_size=12,
                              val_memory_size=48, val_vis_delta=0.8, random_memory_mask_drop=0.1, lambda_point=3,
                              lambda_vis=1, lambda_offset=1, lambda_uncertainty=1, lambda_top_k=1,
                              loss_after_query=True)


SUPPORT_GRID = 3  # Track-On streams with 20x20 support queries; 3x3 keeps the test fast


def trackon(out: Path, layouts: Path, repo: Path) -> None:
    TrackOnFF = _import_trackon(repo)
    import model.track_on_ff as ff
    grid = ff.get_points_on_a_grid
    ff.get_points_on_a_grid = lambda k, size, device: grid(SUPPORT_GRID, size, device)
    full = TrackOnFF(_trackon_args((384, 512)))
    full_keys = _write_layout(layouts, "trackon_v1", full,
                              "gaydemir/track_on track_on_checkpoint.pt ('model', 'module.' prefix)",
                              "gorkaydemir/track_on@009a491 TrackOn")
    del full
    torch.manual_seed(0)
    model = TrackOnFF(_trackon_args((96, 128))).eval()
    small_keys = _load_seeded(model)
    frames = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (3, 1, 3, 80, 112))).float()
    points = torch.tensor([[20.0, 15.0], [60.5, 40.25], [100.0, 70.0], [5.0, 75.0]])
    coords, vis = [], []
    with torch.no_grad():
        model.init_queries_and_memory(points.clone(), frames[0])
        for f in frames:
            c, v = model.ff_forward(f)
            coords.append(c.clone())
            vis.append(v.float())
    changed = {k: v for k, v in small_keys.items() if full_keys[k] != v}  # the frame position grid
    _save(out, "trackon_v1", {"frames": frames[:, 0], "points": points, "coords": torch.stack(coords),
                              "visible": torch.stack(vis)},
          {"seed": SEED, "reference": "gorkaydemir/track_on@009a491 TrackOnFF (mmcv-lite CPU path)",
           "layout": "trackon_v1", "input_size": [96, 128], "support_grid": SUPPORT_GRID,
           "layout_changes": changed})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trackon-repo", type=Path, help="checkout of gorkaydemir/track_on, branch track-on")
    ap.add_argument("--dinov2-repo", type=Path, help="checkout of facebookresearch/dinov2")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "parity")
    ap.add_argument("--layouts", type=Path, default=ROOT / "src" / "bleedorigin" / "assets" / "layouts")
    ap.add_argument("--only", nargs="*", default=["pe", "dinov2_hub", "dinov2_hf", "trackon"])
    a = ap.parse_args()
    exports = {"pe": lambda: pe_spatial(a.out, a.layouts),
               "dinov2_hub": lambda: dinov2_hub(a.out, a.layouts, a.dinov2_repo),
               "dinov2_hf": lambda: dinov2_hf(a.out, a.layouts),
               "trackon": lambda: trackon(a.out, a.layouts, a.trackon_repo)}
    needs = {"dinov2_hub": ("--dinov2-repo", a.dinov2_repo), "trackon": ("--trackon-repo", a.trackon_repo)}
    for name in a.only:  # every missing input is reported before any export runs
        if name not in exports:
            sys.exit(f"error: unknown export {name!r}; expected some of {', '.join(exports)}")
        if name in needs and not needs[name][1]:
            sys.exit(f"error: {needs[name][0]} is needed for {name}")
    torch.set_grad_enabled(False)
    for name in exports:
        if name in a.only:
            exports[name]()

if __name__ == "__main__":
    main()
