"""Streaming onset detector: step() == batch forward, input checks, registry, shipped weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bleedorigin.errors import InputError
from bleedorigin.models.onset import ONSET_TEST, OnsetDetector, OnsetNet
from bleedorigin.models.onset.predictor import embed_clip, prepare_clip, window_logits
from bleedorigin.models.weights import find_weights
from bleedorigin.models.onset.train import evaluate_onset, predict_clip
from conftest import make_tiny_frames

ROOT = Path(__file__).resolve().parents[1]



def _detector() -> OnsetDetector:
    torch.manual_seed(0)
    return OnsetDetector(OnsetNet(ONSET_TEST), "cpu")


def test_streaming_equals_batch() -> None:
    frames, _ = make_tiny_frames(n=40, size=(80, 60), onset=20)
    det = _detector()
    steps = [det.step(f) for f in frames]
    n = ONSET_TEST.window
    assert all(s.score == 0.0 for s in steps[: n - 1])  # no full window yet
    appear, gray, flows = prepare_clip(det.prep, frames)
    with torch.no_grad():
        emb, _ = embed_clip(det.net, det.prep, appear, gray, flows)
        _, c, starts = window_logits(det.net, emb)
    batch = torch.sigmoid(c).numpy()
    stream = np.array([s.score for s in steps[n - 1:]])
    assert starts == list(range(len(frames) - n + 1))
    np.testing.assert_allclose(stream, batch, atol=1e-5)
    raised = [s.onset_frame for s in steps if s.onset_frame is not None]
    assert len(raised) <= 1
    assert (raised[0] if raised else None) == predict_clip(det.net, det.prep, frames)


def test_reset_restarts_the_stream() -> None:
    frames, _ = make_tiny_frames(n=20, size=(64, 48))
    det = _detector()
    first = [det.step(f).score for f in frames]
    det.reset()
    assert det.t == 0
    assert [det.step(f).score for f in frames] == first


@pytest.mark.parametrize("bad", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32),
                                 np.zeros((48, 64, 4), np.uint8), "frame"])
def test_bad_frames_raise_input_error(bad) -> None:
    with pytest.raises(InputError):
        _detector().step(bad)


def test_registry_and_checkpoint_round_trip(tmp_path: Path) -> None:
    from bleedorigin.models.registry import create, list_models
    from bleedorigin.io.checkpoint import save_checkpoint
    assert {"onset_small", "onset_test"} <= set(list_models("onset_*"))
    det = create("onset_test", device="cpu")
    assert isinstance(det, OnsetDetector)
    from bleedorigin.config import to_dict
    save_checkpoint(tmp_path / "ck", det.net.state_dict(), {"stage": "onset", "model": to_dict(ONSET_TEST)}, "# card\n")
    again = OnsetDetector.from_pretrained(str(tmp_path / "ck"), device="cpu", presence=False)  # the network alone
    frames, _ = make_tiny_frames(n=18)
    assert [again.step(f).score for f in frames] == [det.step(f).score for f in frames]
    with pytest.raises(InputError):
        OnsetDetector.from_pretrained(str(tmp_path / "missing"))


def _shipped() -> Path | None:
    try:
        return find_weights("small", "onset_small")
    except InputError:
        return None


@pytest.mark.skipif(_shipped() is None, reason="shipped onset weights absent")
def test_shipped_weights_find_sim_onset() -> None:
    from bleedorigin.sim.generator import generate_clip
    clip = generate_clip("detect", 900_123, size=(512, 384), num_tracks=0)
    det = OnsetDetector.from_pretrained("small", device="cpu")
    m = evaluate_onset(det, [clip])
    assert m["acc8"] == 1.0, m


def test_refine_onset_snaps_to_the_start_of_the_red_area_rise() -> None:
    from bleedorigin.models.onset.predictor import refine_onset
    rng = np.random.default_rng(0)
    areas = 0.01 + 0.0005 * rng.standard_normal(120)
    areas[80:] += 0.005 * np.arange(1, 41)  # blood from frame 80 on
    first = 0
    assert refine_onset(areas, first, 77, 8) == 80
    assert refine_onset(areas, first, 84, 8) == 80
    assert refine_onset(areas[10:], 10, 84, 8) == 80  # areas of frames 10.. only
    assert refine_onset(areas, first, 95, 8) == 95  # already bleeding at 87: keep the network's
    assert refine_onset(areas[:83], first, 70, 8) == 70  # no rise visible yet up to 78: keep
    assert refine_onset(areas[60:], 60, 80, 8) == 80  # too little history: keep
