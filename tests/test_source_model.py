"""Source network: shapes, gradients, attention and peak extraction (paper Fig. 6, Eq. 3)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bleedorigin.models.source import TEST_MODEL
from bleedorigin.models.source.model import (SourceConfig, SourceNet, local_attention, refined_peak,
                                             soft_argmax)
from bleedorigin.models.source.pseudo_labels import gaussian_heatmaps


def test_forward_backward_full_resolution_heatmap():
    torch.manual_seed(0)
    net = SourceNet(SourceConfig(**TEST_MODEL))
    img, red = torch.rand(2, 3, 48, 64), torch.rand(2, 1, 48, 64)
    out = net(img, red)
    assert out.shape == (2, 1, 48, 64)  # heat-map at the input resolution H
    assert torch.isfinite(out).all()
    out.mean().backward()
    for name in ("encoder", "heatmap", "attn.0", "attn.3", "head"):  # every stage receives gradient
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name


def test_odd_sizes_are_handled():
    net = SourceNet(SourceConfig(**{**TEST_MODEL, "input_size": (70, 50)})).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 50, 70), torch.rand(1, 1, 50, 70)).shape == (1, 1, 50, 70)


def test_red_mask_changes_the_output():
    torch.manual_seed(0)
    net = SourceNet(SourceConfig(**TEST_MODEL)).eval()
    img = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        a = net(img, torch.zeros(1, 1, 48, 64))
        b = net(img, torch.ones(1, 1, 48, 64))
    assert not torch.allclose(a, b)  # K comes from the Red-Mask at every scale


def test_local_attention_matches_brute_force():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 4, 5, 6).unbind(0)
    out = local_attention(q, k, v, heads=2, window=3)
    hd = 2
    ref = torch.zeros_like(out)
    kp = torch.nn.functional.pad(k, (1, 1, 1, 1))
    vp = torch.nn.functional.pad(v, (1, 1, 1, 1))
    for h in range(2):
        c = slice(h * hd, (h + 1) * hd)
        for y in range(5):
            for x in range(6):
                keys = kp[0, c, y:y + 3, x:x + 3].reshape(hd, 9)
                vals = vp[0, c, y:y + 3, x:x + 3].reshape(hd, 9)
                w = ((q[0, c, y, x, None] * keys).sum(0) / hd ** 0.5).softmax(0)
                ref[0, c, y, x] = (vals * w).sum(1)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("xy", [(10.3, 7.6), (40.0, 20.5), (0.4, 46.2)])
def test_refined_peak_is_sub_pixel(xy):
    heat = gaussian_heatmaps(torch.tensor([xy]), (64, 48), 2.0).clamp(1e-4, 1 - 1e-4)
    logits = torch.log(heat / (1 - heat))
    found, conf = refined_peak(logits, radius=2)
    border = xy[0] < 2 or xy[1] > 45  # a window clipped at the border biases the centroid inwards
    assert np.allclose(found[0].numpy(), xy, atol=0.8 if border else 0.25)
    assert 0.8 < float(conf[0]) <= 1.0
    soft = soft_argmax(logits * 5)
    assert np.allclose(soft[0].numpy(), xy, atol=0.5 if not border else 1.0)
