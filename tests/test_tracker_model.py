"""TrackOnSmall (track_test preset): shapes, finiteness, explicit state, memory refresh."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.models.track.learned.predictor import TEST_MODEL
from bleedorigin.models.track.learned.train import TrackTask



def tiny(**over) -> TrackOnSmall:
    torch.manual_seed(0)
    return TrackOnSmall(TrackerConfig(**{**TEST_MODEL, **over})).eval()


def frames(n: int = 3, size=(64, 48)) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 4, size[1], size[0], generator=g)


def test_step_shapes_and_finite():
    m = tiny()
    x = frames()
    xy = torch.tensor([[[10.0, 12.0], [40.0, 30.0], [63.0, 47.0]]])
    st = m.start(x[0], xy)
    for t in range(1, 3):
        pts, vis, conf, st = m.step(x[t], st)
        assert pts.shape == (1, 3, 2) and vis.shape == (1, 3) and conf.shape == (1, 3)
        for v in (pts, vis, conf, *st):
            assert torch.isfinite(v).all()
        assert (pts[..., 0] >= 0).all() and (pts[..., 0] <= 63).all()
        assert (pts[..., 1] >= 0).all() and (pts[..., 1] <= 47).all()
        assert ((vis >= 0) & (vis <= 1)).all() and ((conf >= 0) & (conf <= 1)).all()


def test_step_is_a_pure_function_of_frame_and_state():
    m = tiny()
    x = frames()
    st = m.start(x[0], torch.tensor([[[20.0, 20.0], [33.0, 9.0]]]))
    before = [s.clone() for s in st]
    with torch.no_grad():
        a = m.step(x[1], st)
        b = m.step(x[1], st)
    for u, v in zip(a[:3], b[:3]):
        assert torch.equal(u, v)
    for u, v in zip(a[3], b[3]):
        assert torch.equal(u, v)
    for u, v in zip(before, st):  # the input state is not modified in place
        assert torch.equal(u, v)


def test_training_loss_backward_is_finite(tmp_path):
    task = TrackTask({"model": TEST_MODEL, "data": {"clip_len": 4, "batch_clips": 1, "points": 4, "crop": [64, 48],
                                                    "sim_fraction": 0.0, "cache_dir": str(tmp_path)}})
    m = task.build_model().train()
    batch = task.sample_batch(np.random.default_rng(0))
    assert batch["frames"].shape == (4, 1, 4, 48, 64)
    loss, logs = task.loss(m, batch)
    assert torch.isfinite(loss) and set(logs) >= {"ce", "huber", "vis", "conf", "rerank"}
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("every", [3, 5])
def test_memory_refresh_at_configured_period(every):
    m = tiny(refresh_every=every, adaptive_drop=0.0)
    x = frames(2 * every + 2)
    st = m.start(x[0], torch.tensor([[[30.0, 20.0]]]))
    ctx_counts, since = [], []
    with torch.no_grad():
        for t in range(1, len(x)):
            _, _, _, st = m.step(x[t], st)
            ctx_counts.append(int(st.ctx_valid.sum()))
            since.append(int(st.since_refresh.sum()))
    # context memory fills one slot per frame, and is emptied on frames every, 2*every
    refreshed = [i + 1 for i, c in enumerate(ctx_counts) if c == 0]
    assert refreshed == [every, 2 * every]
    assert since[every - 1] == 0 and since[every] == 1
    assert int(st.sp_valid[0, 0, -1 - (len(x) - 1 - 2 * every)]) == 1  # re-seeded spatial slot


def test_no_refresh_when_disabled():
    m = tiny(refresh_every=0, adaptive_drop=0.0)
    x = frames(8)
    st = m.start(x[0], torch.tensor([[[30.0, 20.0]]]))
    with torch.no_grad():
        for t in range(1, 8):
            _, _, _, st = m.step(x[t], st)
    assert int(st.ctx_valid.sum()) == min(7, m.cfg.memory)


def test_adaptive_refresh_triggers_on_confidence_drop():
    from bleedorigin.models.track.learned.memory import refresh_due
    since = torch.tensor([[20.0, 20.0, 3.0]])
    ema = torch.tensor([[0.9, 0.9, 0.9]])
    conf = torch.tensor([[0.2, 0.85, 0.1]])
    due = refresh_due(since, ema, conf, every=60, adaptive_drop=0.3, min_gap=15)
    assert due.tolist() == [[1.0, 0.0, 0.0]]  # third: too soon after the last refresh
