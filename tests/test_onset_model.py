"""Onset network: forward/backward, decoding rule (Eq. 2), loss (Eq. 4), ablation switches."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bleedorigin.config import OnsetConfig, from_dict, load_yaml, to_dict
from bleedorigin.models.onset import ONSET_TEST
from bleedorigin.models.onset.model import OnsetNet, decode_onset
from bleedorigin.models.onset.predictor import KeyframeMemory, memory_slots
from bleedorigin.models.onset.train import onset_loss, onset_metrics, window_targets
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]



def _inputs(cfg: OnsetConfig, b: int = 3) -> tuple[torch.Tensor, ...]:
    w, h = cfg.internal_size
    g = torch.Generator().manual_seed(0)
    cur, prev = torch.rand(b, 6, h, w, generator=g), torch.rand(b, 6, h, w, generator=g)
    flow = torch.randn(b, 3, h, w, generator=g)
    m = cfg.memory_size
    return cur, prev, flow, torch.rand(b, m, 6, h, w, generator=g), torch.randn(b, m, 3, h, w, generator=g)


@pytest.mark.parametrize("ablation", [{}, {"use_mdcfm": False}, {"use_mdg": False}, {"rgb_only": True}])
def test_forward_backward_no_nan(ablation: dict) -> None:
    cfg = from_dict(OnsetConfig, {**to_dict(ONSET_TEST), **ablation})
    torch.manual_seed(0)
    net = OnsetNet(cfg)
    cur, prev, flow, mem, mem_flow = _inputs(cfg, b=cfg.window)
    emb = net.frame_embedding(cur, prev, flow, mem, mem_flow)
    assert emb.shape == (cfg.window, cfg.d_model)
    d, c = net.window(emb[None].repeat(2, 1, 1))
    logits = net.clean_logits(prev, cur, flow)
    assert (logits is None) == (not cfg.use_mdcfm)
    loss = d.sum() + c.sum() + (0 if logits is None else logits.sum())
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(d).all() and torch.isfinite(c).all()


def test_rgb_only_ignores_hsv_and_flow() -> None:
    cfg = from_dict(OnsetConfig, {**to_dict(ONSET_TEST), "rgb_only": True})
    net = OnsetNet(cfg).eval()
    cur, prev, flow, mem, mem_flow = _inputs(cfg)
    a = net.frame_embedding(cur, prev, flow, mem, mem_flow)
    cur2, prev2 = cur.clone(), prev.clone()
    cur2[:, 3:] = 0.123
    b = net.frame_embedding(cur2, prev2, flow * 5, mem, mem_flow * 5)
    assert torch.allclose(a, b)


@pytest.mark.parametrize("deltas, confs, starts, expected", [
    ([0.5, 0.5], [0.1, 0.2], [0, 1], None),               # nothing above 0.5
    ([0.5, 0.9], [0.6, 0.9], [10, 11], 10 + 30),           # earliest window wins, not the most confident
    ([0.999, 0.0], [0.2, 0.7], [3, 4], 4),                 # delta 0 -> window start
    ([1.0], [0.9], [0], 59),                               # delta 1 clamps inside the window
    ([0.51], [0.5], [0], None),                            # threshold is strict (> 0.5)
    ([0.2, 0.1], [0.9, 0.9], [7, 5], 5 + 6),               # order of windows does not matter
])
def test_decode_onset(deltas, confs, starts, expected) -> None:
    assert decode_onset(deltas, confs, starts, 60) == expected


def test_window_targets_floor_lands_on_onset() -> None:
    pos, delta = window_targets([0, 61, 100, 121], onset=120, window=60)
    assert pos.tolist() == [False, True, True, False]
    for s, d in zip([61, 100], delta[1:3]):
        assert s + math.floor(d * 60) == 120


def test_loss_hand_made_cases() -> None:
    n = 60
    # negative window only: BCE(conf, 0) = log(1 + e^c)
    out = onset_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([False]), torch.tensor([0.0]), n)
    assert out["loss"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert out["offset"].item() == 0.0
    # positive window, delta logit 0 -> delta 0.5 -> 30 frames; target 40/60 -> error 10 frames
    out = onset_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([True]), torch.tensor([40 / 60]), n)
    assert out["offset"].item() == pytest.approx(100.0, rel=1e-5)
    assert out["loss"].item() == pytest.approx(math.log(2) + 100.0, rel=1e-5)
    # weighting and averaging: one of each; offset averaged over positives only
    out = onset_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([True, False]),
                     torch.tensor([40 / 60, 0.0]), n, offset_weight=0.5)
    assert out["loss"].item() == pytest.approx(math.log(2) + 50.0, rel=1e-5)
    # confident and right -> near zero
    out = onset_loss(torch.tensor([0.0]), torch.tensor([20.0]), torch.tensor([True]), torch.tensor([0.5]), n)
    assert out["loss"].item() < 1e-6


def test_keyframe_memory_rule() -> None:
    # clean everywhere: frame 0 seeds, then one keyframe every `stride` frames, newest `size` kept
    slots = memory_slots(np.ones(30, bool), size=2, stride=5)
    assert slots[0].tolist() == [0, 0]
    assert slots[7].tolist() == [0, 5]   # frame 5 stored at step 6
    assert slots[29].tolist() == [20, 25]
    # never clean: memory stays at frame 0
    assert memory_slots(np.zeros(30, bool), 2, 5)[-1].tolist() == [0, 0]
    mem = KeyframeMemory(0, 5)
    mem.update(10, True)
    assert mem.slots() == []


def test_metrics_known_answers() -> None:
    m = onset_metrics([120, 125, None, None, 3], [120, 120, 120, None, None], [150] * 5)
    assert m["acc0"] == pytest.approx(1 / 3) and m["acc8"] == pytest.approx(2 / 3)
    assert m["err_avg"] == pytest.approx((0 + 5 + 30) / 3)
    assert m["false_alarm"] == pytest.approx(0.5)


def test_test_preset_matches_yaml() -> None:
    model = load_yaml(ROOT / "src" / "bleedorigin" / "configs" / "onset_test.yaml")["model"]
    assert from_dict(OnsetConfig, model) == ONSET_TEST
