"""SourceLocator: pixel mapping, checkpoints, registry; SourceTask: batch, loss, train + reload."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bleedorigin.config import load_yaml
from bleedorigin.errors import InputError
from bleedorigin.models import registry
from bleedorigin.eval.locate import evaluate_source
from bleedorigin.models.source import SourceLocator
from bleedorigin.models.source.predictor import to_input, to_model
from bleedorigin.vision.color import red_mask

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "bleedorigin" / "weights" / "source_small"


def _register() -> None:
    import bleedorigin.models.source  # noqa: F401  (until registry._load_all imports it)


def test_registry_names():
    _register()
    assert {"source_small", "source_paper", "source_test"} <= set(registry.list_models("source_*"))


def test_pixel_mapping_round_trip():
    xy = np.array([[0.0, 0.0], [111.0, 111.0], [33.3, 70.2]])
    m = to_model(xy, (112, 112), (192, 144))
    assert np.allclose(to_input(m, (112, 112), (192, 144)), xy)
    assert np.allclose(to_model([[-0.5, -0.5]], (112, 112), (192, 144)), [[-0.5, -0.5]])  # pixel edges align


def test_red_mask_prefers_blood_over_mucosa_and_glare():
    img = np.array([[[120, 10, 15], [200, 110, 80], [250, 245, 240], [5, 0, 0]]], np.uint8)
    m = red_mask(img)
    assert m.dtype == np.float32 and m.shape == (1, 4)
    assert m[0, 0] > 0.8 and m[0, 1] < 0.2 and m[0, 2] == 0 and m[0, 3] == 0


def test_locate_returns_input_pixels_for_any_size():
    _register()
    loc = registry.create("source_test")
    for w, h in [(64, 48), (112, 112), (300, 97)]:
        p = loc.locate(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
        assert 0 <= p.x <= w - 1 and 0 <= p.y <= h - 1 and 0 <= p.confidence <= 1
    assert loc.last_heatmap is not None and loc.last_heatmap.shape == (48, 64)


@pytest.mark.parametrize("bad", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32), "frame.png"])
def test_bad_frames_raise_input_error(bad):
    _register()
    with pytest.raises(InputError):
        registry.create("source_test").locate(bad)


def test_missing_weights_folder():
    with pytest.raises(InputError, match="no such checkpoint"):
        SourceLocator.from_pretrained("/nonexistent/source_ckpt")


def test_paper_preset_loads_encoder_from_local_file(tmp_path, caplog):
    _register()
    from safetensors.torch import save_file
    from bleedorigin.models.backbones.vit import create_encoder
    enc = create_encoder("vit_test")
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(tmp_path / "enc.safetensors"))
    loc = registry.create("source_paper", device="cpu", pretrained=str(tmp_path / "enc.safetensors"),
                          encoder="vit_test", input_size=(64, 48), dim=8, heads=2)
    assert torch.equal(loc.net.encoder.pos_embed, enc.pos_embed)
    # only the encoder is released: an untrained head is said at load and in result.json
    assert "no trained head" in caplog.text
    from bleedorigin.models.loading import model_id, model_warnings
    assert "untrained" in model_warnings({"source": model_id(loc)})[0]
    p = loc.locate(np.zeros((48, 64, 3), np.uint8))
    assert 0 <= p.x <= 63
    with pytest.raises(InputError, match="not found"):
        registry.create("source_paper", pretrained=str(tmp_path / "missing.pth"), encoder="vit_test")


def test_task_batch_loss_train_and_reload(tmp_path):
    """Two trainer steps on the test preset, then the predictor rebuilds the model from the folder."""
    from bleedorigin.training.trainer import train_main
    recipe = REPO / "src" / "bleedorigin" / "configs" / "source_test.yaml"
    out = tmp_path / "run"
    result = train_main("source", recipe, out, [f"data.cache_dir={tmp_path / 'cache'}"])
    assert result["step"] == 2 and np.isfinite(result["best_score"])
    loc = SourceLocator.from_pretrained(str(out / "best"), device="cpu")
    assert loc.cfg.input_size == (64, 48)
    frame = np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    res = evaluate_source(loc, [(frame, (10.0, 20.0)), {"frame": frame, "xy": (60.0, 40.0), "scenario": "x"}])
    assert res["n"] == 2 and 0 <= res["acc_100"] <= 1 and res["per_scenario"].keys() == {"", "x"}

    from bleedorigin.models.source.train import SourceTask
    cfg = load_yaml(recipe)
    task = SourceTask({"model": cfg["model"], "data": {**cfg["data"], "cache_dir": str(tmp_path / "cache")}})
    batch = task.sample_batch(np.random.default_rng(0))
    n = len(batch["image"])
    assert batch["image"].shape == (n, 3, 48, 64) and batch["red"].shape == (n, 1, 48, 64)
    assert float(batch["weight"].sum()) == pytest.approx(1.0)  # 0.5 real + 0.5 pseudo per sample
    loss, logs = task.loss(task.build_model(), batch)
    assert torch.isfinite(loss) and {"heat", "coord", "err_px"} <= logs.keys()


def test_evaluate_source_known_answers():
    class Fixed:
        def locate(self, frame, history=None):
            from bleedorigin.types import Point
            return Point(10.0, 20.0)
    frame = np.zeros((112, 112, 3), np.uint8)
    res = evaluate_source(Fixed(), [(frame, (10.0, 20.0)), (frame, (10.0 + 112 / 512 * 30, 20.0))])
    assert res["err_avg"] == pytest.approx(15.0) and res["acc_10"] == 0.5 and res["acc_50"] == 1.0
    with pytest.raises(InputError):
        evaluate_source(Fixed(), [])


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped source weights")
def test_shipped_weights_find_the_sim_source():
    from bleedorigin.sim import generate_clip
    loc = SourceLocator.from_pretrained("small", device="cpu")
    errs = []
    for seed in (900000, 900001, 900002):  # test split, never trained on
        clip = generate_clip("detect", seed)
        p = loc.locate(clip.frames[clip.onset_frame])
        errs.append(np.hypot(p.x - clip.source_xy[clip.onset_frame, 0], p.y - clip.source_xy[clip.onset_frame, 1]))
    assert np.median(errs) < 50


def test_own_labelled_clips_become_training_items(tmp_path, tiny_clip):
    """A sparse clip folder (video.mp4 + labels.json, one point) feeds the source trainer: the
    labelled frame with its label, predecessors with flow pseudo-labels that follow the drift."""
    import json
    import shutil
    from bleedorigin.models.source.train import SourceDataConfig, SourceTask, bench_source_items
    clip = tmp_path / "own" / "clip_a"
    clip.mkdir(parents=True)
    shutil.copy(tiny_clip.path, clip / "video.mp4")
    t = 20
    (clip / "labels.json").write_text(json.dumps({"0": [list(tiny_clip.path_xy[0])], str(t): [list(tiny_clip.path_xy[t])]}))
    data = SourceDataConfig(pseudo_n=3)
    items = bench_source_items((str(tmp_path / "own"),), (64, 48), data)
    assert len(items) == 2  # frames 0 and 20
    last = items[-1]
    assert last["frames"].shape == (4, 48, 64, 3)
    assert np.allclose(last["gt"][-1], tiny_clip.path_xy[t], atol=1e-6)  # 64x48 video: same pixels
    assert np.isnan(last["gt"][:-1]).all()
    # the background drifts right by 0.5 px per frame: pseudo-labels step back left
    assert np.allclose(last["pseudo"][-1][:, 0], tiny_clip.path_xy[t - 1:t - 4:-1, 0], atol=1.1)
    cfg = load_yaml(REPO / "src" / "bleedorigin" / "configs" / "source_test.yaml")
    task = SourceTask({"model": cfg["model"], "data": {**cfg["data"], "cache_dir": str(tmp_path / "cache"),
                                                       "bench_dirs": [str(tmp_path / "own")], "bench_fraction": 1.0}})
    batch = task.sample_batch(np.random.default_rng(0))
    assert batch["xy"].shape[1] == 2 and bool(batch["real"].any())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="bleeding-source labels"):
        bench_source_items((str(tmp_path / "empty"),), (64, 48), data)


def test_own_clip_with_dense_labels_trains_on_every_stride_th_frame(tmp_path, tiny_clip):
    """A clip folder like the shared ESD ones (labels.json sparse + labels_dense.json every frame):
    every `bench_stride`-th labelled frame becomes a training item, and its predecessors' labels
    are the dense labels themselves, not flow."""
    import json
    import shutil
    from bleedorigin.models.source.train import SourceDataConfig, bench_source_items
    clip = tmp_path / "own" / "clip_a"
    clip.mkdir(parents=True)
    shutil.copy(tiny_clip.path, clip / "video.mp4")
    n = len(tiny_clip.frames)
    (clip / "labels.json").write_text(json.dumps({"0": [list(tiny_clip.path_xy[0])], "20": [list(tiny_clip.path_xy[20])]}))
    moved = {str(t): [[float(tiny_clip.path_xy[t][0]) + 3.0, float(tiny_clip.path_xy[t][1])]] for t in range(n)}
    (clip / "labels_dense.json").write_text(json.dumps(moved))  # dense labels 3 px right of the sparse ones
    items = bench_source_items((str(tmp_path / "own"),), (64, 48), SourceDataConfig(pseudo_n=3, bench_stride=10))
    wanted = sorted({*range(0, n, 10), 0, 20})
    assert len(items) == len(wanted)
    last = items[wanted.index(20)]
    assert np.allclose(last["gt"][-1], tiny_clip.path_xy[20], atol=1e-6)  # the sparse label wins on its frame
    assert np.allclose(last["pseudo"][-1][:, 0], tiny_clip.path_xy[19:16:-1, 0] + 3.0, atol=1e-5)  # dense, not flow
