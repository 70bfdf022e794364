"""PointTracker: pixel mapping, API errors, loading, and following a known translation."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bleedorigin.errors import InputError
from bleedorigin.models.track.learned.predictor import TEST_MODEL, PointTracker
from bleedorigin.models.weights import find_weights
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "bleedorigin" / "weights" / "track_small"



def translated_clip(n: int = 16, size=(512, 384), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tissue-coloured texture moving along a known smooth path; returns frames and the
    position of the texture point that starts at (200, 150)."""
    rng = np.random.default_rng(seed)
    w, h = size
    big = cv2.resize(rng.integers(0, 255, ((h + 200) // 8, (w + 200) // 8, 3), dtype=np.uint8), (w + 200, h + 200),
                     interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big += rng.normal(0, 12, big.shape)
    big = cv2.GaussianBlur(np.clip(big * [0.9, 0.5, 0.5] + [60, 20, 20], 0, 255).astype(np.uint8), (0, 0), 1.0)
    t = np.arange(n, dtype=np.float64)
    path = np.stack([3.0 * t + 4 * np.sin(t / 3), 1.5 * t - 2 * np.sin(t / 4)], -1)  # content offset
    frames = [cv2.warpAffine(big, np.float32([[1, 0, dx - 100], [0, 1, dy - 100]]), (w, h), flags=cv2.INTER_LINEAR)
              for dx, dy in path]
    return np.stack(frames), np.array([200.0, 150.0]) + path - path[0]


def test_track_test_structure_and_pixel_mapping():
    tr = PointTracker.tiny()
    frames, truth = translated_clip(6, size=(160, 120))
    tr.start(frames[0], (50.0, 40.0), frame_index=10)
    pts = [tr.step(f) for f in frames[1:]]
    assert [p.frame for p in pts] == [11, 12, 13, 14, 15]
    for p in pts:
        assert -0.5 <= p.x <= 159.5 and -0.5 <= p.y <= 119.5
        assert 0.0 <= p.confidence <= 1.0 and isinstance(p.visible, bool)
    # model <-> input mapping is an exact inverse
    xy = np.array([[0.0, 0.0], [159.0, 119.0], [37.3, 80.2]])
    assert np.allclose(tr._to_input(tr._to_model(xy)), xy)


def test_many_points_are_tracked_independently_of_order():
    frames, _ = translated_clip(4, size=(128, 96))
    runs = []
    for pts in ([(30.0, 40.0), (90.0, 20.0), (30.0, 40.0)], [(90.0, 20.0), (30.0, 40.0), (30.0, 40.0)]):
        tr = PointTracker.tiny()
        tr.start_many(frames[0], pts)
        runs.append([tr.step_many(f) for f in frames[1:]])
    for a, b in zip(*runs):
        assert len(a) == 3
        # the same start point gives the same track, wherever it sits in the list
        assert (a[0].x, a[0].y) == pytest.approx((a[2].x, a[2].y), abs=1e-4)
        assert (a[0].x, a[0].y) == pytest.approx((b[1].x, b[1].y), abs=1e-4)
        assert (a[1].x, a[1].y) == pytest.approx((b[0].x, b[0].y), abs=1e-4)


def test_api_errors():
    tr = PointTracker.tiny()
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(InputError):
        tr.step(frame)
    with pytest.raises(InputError):
        tr.start(frame, (100.0, 10.0))
    with pytest.raises(InputError):
        tr.start(np.zeros((48, 64), np.uint8), (10.0, 10.0))
    tr.start(frame, (10.0, 10.0))
    with pytest.raises(InputError):
        tr.step(np.zeros((96, 128, 3), np.uint8))  # size changed mid-track


def test_from_pretrained_loads_a_checkpoint_folder(tmp_path, monkeypatch):
    from bleedorigin.config import to_dict
    from bleedorigin.io.checkpoint import save_checkpoint
    torch.manual_seed(3)
    net = TrackOnSmall(TrackerConfig(**TEST_MODEL))
    save_checkpoint(tmp_path / "track_small", net.state_dict(), {"stage": "track", "model": to_dict(net.cfg)}, "card")
    monkeypatch.setenv("BLEEDORIGIN_WEIGHTS", str(tmp_path))
    assert find_weights(tmp_path / "track_small", "track_small") == tmp_path / "track_small"
    a = PointTracker.from_pretrained(str(tmp_path / "track_small"), device="cpu")
    b = PointTracker(net, "cpu")
    frames, _ = translated_clip(3, size=(96, 72))
    for tr in (a, b):
        tr.start(frames[0], (40.0, 30.0))
    for f in frames[1:]:
        pa, pb = a.step(f), b.step(f)
        assert pa.x == pytest.approx(pb.x, abs=1e-3) and pa.y == pytest.approx(pb.y, abs=1e-3)
    with pytest.raises(InputError):
        PointTracker.from_pretrained(str(tmp_path / "missing"))


def test_registry_names():
    import bleedorigin.models.track.learned  # noqa: F401  (registers the presets)
    from bleedorigin.models import registry
    assert {"track_small", "track_test"} <= set(registry.list_models("track_*"))
    assert isinstance(registry.create("track_test"), PointTracker)


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped track_small weights")
def test_shipped_weights_follow_a_known_translation():
    tr = PointTracker.from_pretrained(str(SHIPPED), device="cpu")
    frames, truth = translated_clip(16)
    pts = tr.run(frames, tuple(truth[0]))
    err = np.linalg.norm(np.array([(p.x, p.y) for p in pts]) - truth[1:], axis=1)
    assert np.median(err) < 3.0 and err.max() < 8.0, err
    assert np.mean([p.confidence for p in pts]) > 0.5


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped track_small weights")
def test_onnx_step_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    tr = PointTracker.from_pretrained(str(SHIPPED), device="cpu")
    frames, truth = translated_clip(2)
    from bleedorigin.export import _TrackStep
    (_, _, x0), (_, _, x1) = tr._prepare(frames[0]), tr._prepare(frames[1])
    start = torch.tensor([[[200.0, 150.0], [300.0, 100.0]]])
    state = tr.net.start(x0, start)
    inputs = (x1, start + 4.0, *state) if tr.cfg.motion_mix else (x1, *state)  # the hint, when trained with it
    with torch.no_grad():
        torch.onnx.export(_TrackStep(tr.net), inputs, str(tmp_path / "t.onnx"), opset_version=17, dynamo=False)
        ref = _TrackStep(tr.net)(*inputs)
    sess = ort.InferenceSession(str(tmp_path / "t.onnx"))
    names = [i.name for i in sess.get_inputs()]
    out = sess.run(None, dict(zip(names, [t.detach().numpy() for t in inputs])))
    assert len(out) == len(ref)
    for a, b in zip(out, ref):
        assert np.abs(a - b.numpy()).max() < 1e-2


def _labelled_errors(tracker, folder) -> np.ndarray:
    """Errors (512x384 px) on every later labelled frame of the clip folders below `folder`,
    each point started from its first label (the evaluation protocol of `bleedorigin evaluate`)."""
    from bleedorigin.eval.protocol import eval_track
    from bleedorigin.io.bench import discover_clips
    records = [eval_track(tracker, c) for c in discover_clips(folder)]
    return np.array([row["error"] for r in records for p in r["points"] for row in p["labelled"]])


@pytest.mark.real
@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped track_small weights")
def test_shipped_weights_on_real_esd_clip(shared_data):
    err = _labelled_errors(PointTracker.from_pretrained(str(SHIPPED), device="cpu"),
                           shared_data / "esd_clips" / "clear_view_001")
    assert len(err) == 6 and err.mean() < 37.0  # paper-scale pixels (512x384); measured 13.4


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped track_small weights")
def test_shipped_weights_beat_lk_on_vlsurgpt(shared_data):
    from bleedorigin.models.baselines.lk import LKTracker
    ours = _labelled_errors(PointTracker.from_pretrained(str(SHIPPED), device="cpu"), shared_data / "vlsurgpt")
    lk = _labelled_errors(LKTracker(), shared_data / "vlsurgpt")
    assert (ours < 25).mean() > (lk < 25).mean()  # measured 0.922 vs 0.896 (n = 77 labels)


def test_flow_fallback_follows_the_camera_when_the_network_is_unsure():
    # the tiny random network knows nothing; with every answer below the fallback threshold the
    # tracker must still follow the texture through the DIS motion hint
    tr = PointTracker.tiny(motion_hint=True, flow_fallback=1.01)
    frames, truth = translated_clip(16)
    pts = tr.run(frames, tuple(truth[0]))
    err = np.linalg.norm(np.array([(p.x, p.y) for p in pts]) - truth[1:], axis=1)
    assert err.max() < 6.0, err
    blind = PointTracker.tiny().run(frames, tuple(truth[0]))
    blind_err = np.linalg.norm(np.array([(p.x, p.y) for p in blind]) - truth[1:], axis=1)
    assert blind_err.mean() > 2 * err.mean()


def test_variants_are_registered_with_their_settings():
    from bleedorigin.models import registry
    tr = registry.create("track_small_refresh30", device="cpu") if (SHIPPED / "model.safetensors").is_file() \
        else None
    if tr is not None:
        assert tr.cfg.refresh_every == 30 and tr.motion is None
        assert registry.create("track_small_flow", device="cpu").motion_hint
        adaptive = registry.create("track_small_adaptive", device="cpu").cfg
        assert adaptive.refresh_every == 0 and adaptive.adaptive_drop > 0
        guided = registry.create("track_small_guided", device="cpu")
        assert guided.motion_hint and guided.flow_fallback == 0.5 and guided.cfg.motion_sigma == 16.0
        assert guided.motion.mode == "window"
        assert registry.create("track_small_scene", device="cpu").motion.mode == "scene"


def test_motion_hint_carries_points_with_the_scene():
    from bleedorigin.vision.motion import MotionHint
    frames, truth = translated_clip(8)
    hint = MotionHint()
    p = hint.carry(frames[0], truth[:1])
    assert np.allclose(p, truth[:1])  # nothing to compare with on the first frame
    for f, gt in zip(frames[1:], truth[1:]):
        p = hint.carry(f, p)
    assert np.linalg.norm(p[0] - truth[-1]) < 3.0, (p, truth[-1])


def test_scene_hint_is_not_dragged_by_an_instrument_over_the_point():
    # a textured "instrument" covers the point's flow window and moves its own way; the window
    # median follows the instrument, the scene's dominant motion follows the tissue
    from bleedorigin.vision.motion import MotionHint
    frames, truth = translated_clip(8)
    tool = np.random.default_rng(1).integers(60, 200, (100, 140, 3), dtype=np.uint8)
    tool = cv2.GaussianBlur(cv2.resize(tool[::8, ::8], (140, 100), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)
    covered = frames.copy()
    for t in range(len(covered)):  # stays over the point (truth) while sliding 5 px/frame against it
        x0, y0 = int(truth[t, 0] - 70 - 5 * t), int(truth[t, 1] - 50 + 3 * t)
        covered[t, y0:y0 + 100, x0:x0 + 140] = tool
    ends = {}
    for mode in ("window", "scene"):
        hint, p = MotionHint(mode), truth[:1]
        for f in covered:
            p = hint.carry(f, p)
        ends[mode] = np.linalg.norm(p[0] - truth[-1])
    assert ends["scene"] < 5.0 and ends["window"] > 4 * ends["scene"], ends


def test_unknown_hint_mode_is_a_config_error():
    from bleedorigin.errors import ConfigError
    with pytest.raises(ConfigError, match="hint_mode 'global'"):
        PointTracker.tiny(hint_mode="global")


def test_motion_mix_network_gets_the_hint_as_second_prior_centre():
    # a tiny random network configured with motion_mix: the tracker builds the hint and the
    # prior (so the answer) changes when the hint centre moves
    tr = PointTracker.tiny(motion_mix=True)
    assert tr.motion is not None and not tr.motion_hint
    frames, truth = translated_clip(3)
    pts = tr.run(frames, tuple(truth[0]))
    assert len(pts) == 2 and all(np.isfinite([p.x, p.y]).all() for p in pts)
    _, _, x = tr._prepare(frames[1])
    st = tr.net.start(x, torch.tensor([[[200.0, 150.0]]]))
    near = tr.net.step(x, st, torch.tensor([[[200.0, 150.0]]]))[0]
    far = tr.net.step(x, st, torch.tensor([[[450.0, 340.0]]]))[0]
    assert not torch.allclose(near, far)


def test_blood_share_counts_blood_pixels_around_each_point():
    from bleedorigin.models.track.learned.predictor import blood_share
    mask = np.zeros((100, 100), np.float32)
    mask[:, 50:] = 1.0  # right half is blood
    share = blood_share(mask, np.array([[20.0, 50.0], [80.0, 50.0], [50.0, 50.0]]), half=10)
    assert share[0] == 0.0 and share[1] == 1.0 and share[2] == pytest.approx(11 / 21)


def test_under_a_pool_the_point_follows_the_scene():
    """A blood pool stays where the bleeding began and grows while the tissue under it moves on:
    with `blood_fallback` the point is carried by the scene's motion and stays on its tissue."""
    frames, truth = translated_clip(12)
    pooled = frames.copy()
    for t in range(len(pooled)):
        cv2.circle(pooled[t], (200, 150), 45 + 2 * t, (120, 12, 16), -1)

    def errors(**kw) -> np.ndarray:
        pts = PointTracker.tiny(hint_mode="scene", **kw).run(pooled, tuple(truth[0]))
        return np.array([np.hypot(p.x - truth[i + 1, 0], p.y - truth[i + 1, 1]) for i, p in enumerate(pts)])
    gated, free = errors(blood_fallback=0.5), errors()
    assert gated.max() < 3.0 and free.mean() > 5 * gated.mean()
