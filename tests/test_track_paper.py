"""track_paper: the streaming predictor, the paper's Red-Mask keys/values, loading a fine-tuned
file, the fine-tuning recipe at toy size, and what `bench` measures. Random weights, 96x128."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from bleedorigin.models import registry
from bleedorigin.models.track.paper import build_track_paper
from bleedorigin.models.track.paper.finetune import PaperFinetuneConfig, finetune_paper, load_finetune_recipe, lora_targets
from bleedorigin.models.track.paper.model import TrackOnConfig, TrackPaper
from bleedorigin.models.track.learned.train import SparseTargets

ROOT = Path(__file__).resolve().parents[1]
TOY = dict(input_size=(96, 128), support_grid=0)


@pytest.fixture(autouse=True)
def no_local_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("BLEEDORIGIN_PAPER_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.delenv("BLEEDORIGIN_TRACKON", raising=False)
    monkeypatch.delenv("BLEEDORIGIN_DINOV2", raising=False)


def _frames(n: int, h: int = 80, w: int = 112) -> list[np.ndarray]:
    """A textured pattern drifting right by 2 px per frame, with a red blob."""
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (h, w + 2 * n, 3), dtype=np.uint8)
    base[30:45, 50:70] = (180, 20, 20)
    return [np.ascontiguousarray(base[:, 2 * (n - i):2 * (n - i) + w]) for i in range(n)]


def test_predictor_streams_points_and_refreshes_its_memory():
    tracker = registry.create("track_paper", device="cpu", infer_memory=16, refresh_every=2, **TOY)
    assert tracker.model_id == "track:paper-untrained"
    assert tracker.model.net.query_decoder.memory_size == 16
    frames = _frames(4)
    tracker.start_many(frames[0], [(30.0, 20.0), (90.5, 60.0)], frame_index=5)
    out = [tracker.step_many(f) for f in frames[1:]]
    assert [p[0].frame for p in out] == [6, 7, 8]
    for pts in out:
        for p in pts:
            assert 0 <= p.x <= 111 and 0 <= p.y <= 79 and 0 <= p.confidence <= 1
    assert tracker.state is not None and tracker.state.t == 1  # re-seeded after the 2nd step
    with pytest.raises(Exception, match="frame size changed"):
        tracker.step(np.zeros((60, 80, 3), np.uint8))


def test_red_mask_keys_start_as_the_released_tracker():
    """Until fine-tuning moves it, the paper's Red-Mask K/V leaves Track-On's output unchanged."""
    torch.manual_seed(0)
    model = TrackPaper(TrackOnConfig(**TOY)).eval()
    frames = [torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in _frames(3)]
    red = torch.rand(1, 1, 96, 128)
    pts = torch.tensor([[30.0, 20.0]])
    with torch.no_grad():
        a = model.start(frames[0], pts)
        b = model.net.start(frames[0], pts)
        for f in frames[1:]:
            pa, va, _, a = model.step(f, red, a)
            pb, vb, _, b = model.net.step(f, b)
            assert torch.allclose(pa, pb, atol=1e-4) and torch.allclose(va, vb, atol=1e-5)


def test_loads_a_finetuned_file(tmp_path):
    model, _ = build_track_paper(seed=3, infer_memory=12, **TOY)  # saved at the trained memory length
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    again, model_id = build_track_paper(checkpoint=str(tmp_path), seed=4, infer_memory=12, **TOY)
    assert model_id == "track:paper@finetuned"
    assert torch.equal(again.red.fuse.weight, model.red.fuse.weight)
    assert torch.equal(again.net.projection2.weight, model.net.projection2.weight)


def _sparse_clip(t: int = 4) -> SparseTargets:
    frames = torch.from_numpy(np.stack(_frames(t, 48, 64))).permute(0, 3, 1, 2).float() / 255
    frames = torch.cat([frames, torch.zeros(t, 1, 48, 64)], 1)
    gt = torch.tensor([[20.0 + 2 * i, 15.0] for i in range(t)])[:, None]
    gt_mask = torch.zeros(t, 1, dtype=torch.bool)
    gt_mask[[0, t - 1]] = True
    return SparseTargets(frames, gt, gt_mask, gt.clone(), torch.ones(t, 1, dtype=torch.bool))


def test_paper_recipe_trains_adapters_at_toy_size():
    cfg, model_cfg = load_finetune_recipe(ROOT / "src" / "bleedorigin" / "configs" / "paper" / "track_paper_finetune.yaml")
    assert (cfg.lr, cfg.epochs, cfg.amp, cfg.kind) == (5e-6, 100, True, "lora")  # paper 5.3, mixed precision
    assert model_cfg["input_size"] == [384, 512] and model_cfg["support_grid"] == 20
    toy = PaperFinetuneConfig(**{**cfg.__dict__, "steps": 1, "window": 2, "lr": 1e-3, "clips_per_step": 2})
    model, _ = build_track_paper(infer_memory=12, **TOY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    targets = lora_targets(model)
    assert targets and not any(t.startswith("net.backbone") for t in targets)
    assert any(t.endswith(".mha") for t in targets) and any(t.endswith("sampling_offsets") for t in targets)
    tuned, losses = finetune_paper(model, [_sparse_clip()], toy)  # bf16 autocast on the CPU
    assert len(losses) == 1 and all(np.isfinite(losses))
    after = tuned.state_dict()
    assert set(after) == set(before)  # adapters merged back: the checkpoint layout is unchanged
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("red.") for k in changed)
    assert any(".offset_head." in k for k in changed)
    assert not any(k.startswith("net.backbone.") for k in changed)  # frozen DINOv2 + adapter


def test_bench_counts_params_and_flops():
    from bleedorigin.bench import _gflops, _params
    tracker = registry.create("track_paper", device="cpu", infer_memory=12, **TOY)
    frames = _frames(2)
    tracker.start(frames[0], (30.0, 20.0))
    n = _params(tracker)
    assert n is not None and 45e6 < n < 50e6  # ViT-S 22M + adapter + Track-On head (+ Red-Mask K/V)
    flops = _gflops(lambda: tracker.step(frames[1]), tracker)
    assert flops is not None and flops > 0.5
