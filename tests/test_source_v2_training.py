"""Source training on BleedSim v2: the real-footage degradation and the v2 data options."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bleedorigin.config import load_yaml
from bleedorigin.errors import InputError
from bleedorigin.models.source.train import SourceTask, is_v2
from bleedorigin.vision.degrade import Degrade

RECIPE = "src/bleedorigin/configs/source_test.yaml"


def _detail(img: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image: fine texture."""
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)).mean())


def _scene() -> np.ndarray:
    """Fine checkerboard texture with a red disk at (130, 60) on a 192x144 frame."""
    yy, xx = np.mgrid[:144, :192]
    img = np.where(((xx // 2 + yy // 2) % 2)[..., None] == 1, 170, 90).astype(np.uint8).repeat(3, axis=2)
    cv2.circle(img, (130, 60), 14, (200, 20, 30), -1)
    return img


def _red_centroid(img: np.ndarray) -> np.ndarray:
    f = img.astype(int)
    ys, xs = np.nonzero((f[..., 0] > 120) & (f[..., 1] < 90) & (f[..., 2] < 100))
    return np.array([xs.mean(), ys.mean()])


def test_degrade_removes_detail_and_keeps_geometry():
    img = _scene()
    out = Degrade(height=112, width_ratio=1.0, blur_sigma=0.8, jpeg_quality=40).frame(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert _detail(out) < 0.3 * _detail(img)  # the 2-px checkerboard does not survive 112x112 + blur
    assert np.linalg.norm(_red_centroid(out) - _red_centroid(img)) < 1.5  # labels need no transform


def test_degrade_white_balance_scales_channels():
    img = np.full((48, 64, 3), 100, np.uint8)
    out = Degrade(channel_gain=(1.2, 1.0, 0.8)).frame(img)
    assert tuple(out[0, 0]) == (120, 100, 80)


def test_random_degrade_stays_near_the_real_resolution():
    rng = np.random.default_rng(0)
    looks = [Degrade.random(rng) for _ in range(200)]
    assert all(84 <= d.height <= 144 and 1.0 <= d.width_ratio <= 4 / 3 for d in looks)
    assert 0.6 < np.mean([d.jpeg_quality > 0 for d in looks]) < 0.95


def test_v2_share_is_fixed_per_seed():
    picks = [is_v2(s, 0.75) for s in range(400)]
    assert 0.68 < np.mean(picks) < 0.82
    assert picks == [is_v2(s, 0.75) for s in range(400)]  # a cached clip keeps its look
    assert not any(is_v2(s, 0.0) for s in range(50))


def test_trainer_options_take_effect(tmp_path):
    cfg = load_yaml(RECIPE)
    data = {**cfg["data"], "cache_dir": str(tmp_path / "cache"), "appearance": 1.0, "degrade": 1.0,
            "val_appearance": True, "max_shift": 0.0}
    task = SourceTask({"model": {**cfg["model"], "input_size": [192, 144]}, "data": data})
    assert task._cache_path("train", 3).parent.name.endswith("_v2-" + "+".join(task.appearance.enabled))
    assert "BleedSim v2 appearance (dark_pools, bubbles)" in task.data_description()  # names its features
    with pytest.raises(InputError, match="appearance_features"):
        SourceTask({"model": cfg["model"], "data": {**data, "appearance_features": "fog"}})
    img = _scene()
    pts = np.array([[130.0, 60.0]])
    degraded = [task._augment(np.random.default_rng(s), img, pts)[0] for s in range(6)]
    plain = SourceTask({"model": {**cfg["model"], "input_size": [192, 144]}, "data": {**data, "degrade": 0.0}})
    kept = [plain._augment(np.random.default_rng(s), img, pts)[0] for s in range(6)]
    assert np.mean([_detail(d) for d in degraded]) < 0.5 * np.mean([_detail(k) for k in kept])


@pytest.mark.parametrize("v2", [False, True])
def test_validation_clips_follow_val_appearance(tmp_path, monkeypatch, v2):
    from types import SimpleNamespace

    import bleedorigin.models.source.train as train
    asked = []

    def fake_clip(kind, seed, frames, vary_blood=False, appearance=None):  # the simulator is tested elsewhere
        asked.append(appearance is not None)
        return SimpleNamespace(onset_frame=0, frames=np.zeros((1, 384, 512, 3), np.uint8), scenario="x",
                               source_xy=np.array([[10.0, 20.0]]), source_visible=np.array([True]))

    monkeypatch.setattr(train, "_sim_clip", fake_clip)
    cfg = load_yaml(RECIPE)
    task = SourceTask({"model": cfg["model"], "data": {**cfg["data"], "cache_dir": str(tmp_path / "c"),
                                                       "val_clips": 2, "val_appearance": v2}})
    assert len(task.eval_items("val")) == 2 and asked == [v2, v2]
    folder = next((tmp_path / "c").iterdir()).name
    assert folder == ("val_detect_onset" + task.v2_tag if v2 else "val_detect_onset")  # v1 and v2 never mix


def test_without_degradation_the_augmentation_draws_are_unchanged(tmp_path):
    """degrade = 0 draws nothing extra, so source training without it repeats exactly (the
    shipped recipes keep their weights)."""
    cfg = load_yaml(RECIPE)
    data = {**cfg["data"], "cache_dir": str(tmp_path / "cache"), "degrade": 0.0}
    task = SourceTask({"model": {**cfg["model"], "input_size": [192, 144]}, "data": data})
    img, pts = _scene(), np.array([[130.0, 60.0]])
    rng = np.random.default_rng(5)
    task._augment(rng, img, pts)
    expected = np.random.default_rng(5)
    # flips (2), shift (2), gain (1 + 3), contrast (1), gamma (1): nothing drawn for degradation
    expected.random(2), expected.uniform(-1, 1, 2), expected.uniform(0.75, 1.25), expected.uniform(0.92, 1.08, 3)
    expected.uniform(0.8, 1.2), expected.uniform(0.8, 1.25)
    assert rng.random() == expected.random()
