"""LoRA / AdaLoRA (peft) on the tracker: which layers, what trains, merging for export."""
from __future__ import annotations

import pytest
import torch

from bleedorigin.models.track.learned.lora import apply_lora, base_model, lora_targets, merge_lora
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.models.track.learned.predictor import TEST_MODEL

pytest.importorskip("peft")



def tiny() -> TrackOnSmall:
    torch.manual_seed(0)
    return TrackOnSmall(TrackerConfig(**TEST_MODEL)).eval()


def test_targets_are_attention_and_mlp_linears_only():
    m = tiny()
    names = lora_targets(m)
    assert "kv_proj" in names and "layers.0.cross.q" in names and "layers.0.mem_attn.kv" in names
    assert "layers.0.mlp.0" in names and "offset_heads.0.0" in names and "head.2" in names
    assert not any(n.startswith(("backbone", "red_enc")) for n in names)
    mods = dict(m.named_modules())
    assert all(isinstance(mods[n], torch.nn.Linear) for n in names)


@pytest.mark.parametrize("kind", ["lora", "adalora"])
def test_only_adapter_parameters_train(kind):
    pm = apply_lora(tiny(), kind, r=4, total_step=100)
    trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    wrapped = {n.split(".lora_")[0].replace("base_model.model.", "") for n in trainable}
    assert wrapped == set(lora_targets(tiny()))
    # the backbone is frozen
    assert not any(p.requires_grad for n, p in pm.named_parameters() if ".backbone." in n)


def test_lora_starts_as_identity_and_merges_exactly():
    m = tiny()
    x = torch.rand(2, 1, 4, 48, 64)
    xy = torch.tensor([[[20.0, 20.0], [50.0, 30.0]]])
    with torch.no_grad():
        ref = m.step(x[1], m.start(x[0], xy))[0]
    pm = apply_lora(m, "lora", r=4)
    inner = base_model(pm)
    with torch.no_grad():
        assert torch.allclose(inner.step(x[1], inner.start(x[0], xy))[0], ref)  # B = 0 at init
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
        tuned = inner.step(x[1], inner.start(x[0], xy))[0]
    merged = merge_lora(pm)
    assert isinstance(merged, TrackOnSmall)
    assert not any("lora" in k for k in merged.state_dict())
    with torch.no_grad():
        assert torch.allclose(merged.step(x[1], merged.start(x[0], xy))[0], tuned, atol=1e-4)


def test_sparse_label_finetune_changes_only_adapted_layers():
    import numpy as np
    from bleedorigin.models.track.learned.train import finetune_sparse, prepare_sparse_clip
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (7, 96, 128, 3), dtype=np.uint8)
    labels = {0: [(40.0, 30.0), (90.0, 60.0)], 6: [(44.0, 33.0), None]}
    clip = prepare_sparse_clip(frames, labels, mask_source="fallback", size=(64, 48))
    assert clip.gt_mask[0].tolist() == [True, True] and clip.gt_mask[6].tolist() == [True, False]
    m = tiny()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    out = finetune_sparse(m, [clip], steps=2, kind="lora", r=2, lr=1e-2, window=7)
    assert isinstance(out, TrackOnSmall)
    after = out.state_dict()
    assert set(after) == set(before)
    changed = {k.rsplit(".", 1)[0] for k in after if not torch.equal(after[k], before[k])}
    targets = set(lora_targets(m))
    assert changed and changed <= targets
