"""The one Trainer: logs, checkpoint folders, resume continuity, train_main, torchrun (DDP)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bleedorigin.config import ConfigError, TrainConfig
from bleedorigin.training import TASKS, StageTask, load_task
from bleedorigin.io.checkpoint import load_checkpoint, load_trainer_state
from bleedorigin.training.trainer import lr_factor, train_main

ROOT = Path(__file__).resolve().parents[1]

CONFIG = ROOT / "src" / "bleedorigin" / "configs" / "onset_test.yaml"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onset_cache")  # sim clips shared by the tests of this file


def _sets(cache: Path, steps: int = 4) -> list[str]:
    return [f"data.cache_dir={cache}", f"train.steps={steps}", "train.val_every=100", "train.num_threads=1",
            "train.save_every=100"]


def _losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_train_saves_checkpoint_folders(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "run"
    result = train_main("onset", CONFIG, out, _sets(cache, 2))
    assert result["step"] == 2
    for name in ("last", "best"):
        config, state = load_checkpoint(out / name)
        assert config["stage"] == "onset" and config["model"]["window"] == 16 and state
        assert len(config["checksum"]) == 64
        card = (out / name / "MODEL_CARD.md").read_text()
        assert "## Command" in card and "BleedSim" in card and "acc8" in card
    assert not (out / "best" / "trainer_state.pt").exists()
    assert load_trainer_state(out / "last")["step"] == 2
    assert (out / "config.yaml").is_file()
    val = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if "val" in line]
    assert val and "score" in val[-1]["val"]


def test_resume_continues_step_and_loss(tmp_path: Path, cache: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    train_main("onset", CONFIG, full, _sets(cache))
    from bleedorigin.config import load_recipe
    from bleedorigin.models.onset.train import OnsetDataConfig, OnsetTask
    from bleedorigin.config import OnsetConfig
    from bleedorigin.training.trainer import Trainer
    recipe = load_recipe(CONFIG, "onset", _sets(cache), OnsetConfig, OnsetDataConfig)
    task = OnsetTask({"model": recipe.model, "data": recipe.data})
    Trainer(task, recipe.train, part, recipe).fit(stop_at=2)
    assert load_trainer_state(part / "last")["step"] == 2
    train_main("onset", CONFIG, part, _sets(cache), resume=True)
    a, b = _losses(full), _losses(part)
    assert sorted(b) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        assert b[step] == pytest.approx(a[step], rel=1e-4, abs=1e-5)


def test_resume_without_checkpoint_fails(tmp_path: Path, cache: Path) -> None:
    from bleedorigin.errors import InputError
    with pytest.raises(InputError):
        train_main("onset", CONFIG, tmp_path / "none", _sets(cache), resume=True)


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    assert lr_factor(55, cfg) == pytest.approx(0.55)


def test_task_registry() -> None:
    assert set(TASKS) == {"onset", "source", "track"}
    task = load_task("onset", {"model": {"window": 8}})
    assert isinstance(task, StageTask) and task.stage == "onset"
    with pytest.raises(ConfigError, match="did you mean 'onset'"):
        load_task("onste")


def test_torchrun_two_processes(tmp_path: Path, cache: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "bleedorigin.training.trainer", "onset", "--config", str(CONFIG), "--out", str(tmp_path / "ddp"),
           *sum((["--set", s] for s in _sets(cache, 1)), [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_trainer_state(tmp_path / "ddp" / "last")
    assert state["step"] == 1 and state["world_size"] == 2


def test_init_from_starts_a_fresh_run_from_other_weights(tmp_path: Path, cache: Path) -> None:
    import torch
    first = tmp_path / "first"
    train_main("onset", CONFIG, first, _sets(cache, 2))
    tuned = tmp_path / "tuned"
    train_main("onset", CONFIG, tuned, _sets(cache, 1) + [f"train.init_from={first / 'last'}", "train.lr=0"])
    _, a = load_checkpoint(first / "last")
    _, b = load_checkpoint(tuned / "last")
    learned = [k for k in a if "running" not in k and "num_batches" not in k]
    assert learned and all(torch.equal(a[k], b[k]) for k in learned)  # lr 0: weights kept as loaded
    from bleedorigin.errors import InputError
    bad = tmp_path / "bad"
    (bad / "x").mkdir(parents=True)
    with pytest.raises(InputError):
        train_main("onset", CONFIG, tmp_path / "none", _sets(cache, 1) + [f"train.init_from={bad / 'x'}"])


def test_onset_training_draws_your_own_clips_with_augmentation(tmp_path: Path, cache: Path) -> None:
    from bleedorigin.io.bench import Clip, write_bench_clip, write_manifest
    from bleedorigin.models.onset.train import OnsetTask
    from conftest import make_tiny_frames
    root = tmp_path / "own"
    frames, _ = make_tiny_frames(n=40, onset=25)
    stored = write_bench_clip(root, Clip(id="a", video=root, kind="detect", onset_frame=25, split="train"), frames)
    neg, _ = make_tiny_frames(n=40, onset=99)
    held = write_bench_clip(root, Clip(id="b", video=root, kind="negative", split="test"), neg)
    write_manifest(root, [stored, held])
    sets = _sets(cache, 1) + [f"data.bench_dirs=[{root}]", "data.bench_fraction=1.0", "data.augment=1.0"]
    result = train_main("onset", CONFIG, tmp_path / "run", sets)
    assert result["step"] == 1
    task = OnsetTask({"model": {"window": 16, "internal_size": [32, 24]},
                      "data": {"bench_dirs": [str(root)], "bench_fraction": 1.0, "cache_dir": str(cache)}})
    assert [c.id for c in task.bench.clips] == ["a"]  # the test split is never trained on
    clip_frames, onset = task.bench.get(0)
    assert onset == 25 and clip_frames.shape[0] == 40
    assert "own" in task.data_description()


def test_onset_focus_scenario_draws_that_scenario(tmp_path: Path) -> None:
    import numpy as np

    from bleedorigin.errors import InputError
    from bleedorigin.models.onset.train import OnsetTask
    from bleedorigin.sim.generator import generate_clip
    cache = tmp_path / "cache"
    data = {"cache_dir": str(cache), "train_pool": 3, "kinds": ["detect"], "kind_weights": [1.0],
            "sim_size": [64, 48], "clip_frames": 70, "max_drop": 0,
            "focus_scenario": "water_flushing", "focus_share": 1.0}
    task = OnsetTask({"model": {"window": 16, "internal_size": [32, 24]}, "data": data})
    task.sample_batch(np.random.default_rng(0))
    cached = sorted(p.name for p in cache.glob("*.npz"))
    assert cached and all("water_flushing" in name for name in cached)
    seed = int(cached[0].rsplit("_", 1)[1].split(".")[0])
    with np.load(cache / cached[0]) as z:  # the cached frames are that scenario's clip of the seed
        expected = generate_clip("detect", seed, size=(64, 48), num_frames=70, scenario="water_flushing",
                                 num_tracks=0).frames
        assert np.array_equal(z["frames"], expected)
    with pytest.raises(InputError, match="focus_scenario"):
        OnsetTask({"model": {"window": 16}, "data": {**data, "focus_scenario": "fog"}})


def test_onset_appearance_share_trains_on_bleedsim_v2_clips(tmp_path: Path) -> None:
    import numpy as np

    from bleedorigin.errors import InputError
    from bleedorigin.models.onset.train import OnsetTask
    from bleedorigin.sim.appearance import Appearance
    from bleedorigin.sim.generator import generate_clip
    data = {"train_pool": 2, "kinds": ["detect"], "kind_weights": [1.0], "sim_size": [64, 48],
            "clip_frames": 70, "max_drop": 0}
    names = {}
    for share in (0.0, 1.0):
        cache = tmp_path / f"cache{share}"
        task = OnsetTask({"model": {"window": 16, "internal_size": [32, 24]},
                          "data": {**data, "cache_dir": str(cache), "appearance": share}})
        task.sample_batch(np.random.default_rng(0))
        names[share] = sorted(p.name for p in cache.glob("*.npz"))
    assert names[0.0] and not any("_v2" in n for n in names[0.0])
    assert names[1.0] and all("_v2" in n for n in names[1.0])  # v1 and v2 clips never share a cache file
    seed = int(names[1.0][0].rsplit("_", 1)[1].split(".")[0])
    with np.load(tmp_path / "cache1.0" / names[1.0][0]) as z:
        v2 = generate_clip("detect", seed, size=(64, 48), num_frames=70, num_tracks=0,
                           appearance=Appearance.all()).frames
        v1 = generate_clip("detect", seed, size=(64, 48), num_frames=70, num_tracks=0).frames
        assert np.array_equal(z["frames"], v2) and not np.array_equal(z["frames"], v1)
    assert "v2 appearance" in task.data_description()
    # A named feature set is rendered and cached under its own names, apart from "all".
    cache = tmp_path / "cache_named"
    task = OnsetTask({"model": {"window": 16, "internal_size": [32, 24]},
                      "data": {**data, "cache_dir": str(cache), "appearance": 1.0,
                               "appearance_features": "blood_colour,degrade"}})
    task.sample_batch(np.random.default_rng(0))
    named = sorted(p.name for p in cache.glob("*.npz"))
    assert named and all("_v2-blood_colour+degrade_" in n for n in named)
    seed = int(named[0].rsplit("_", 1)[1].split(".")[0])
    with np.load(cache / named[0]) as z:
        expected = generate_clip("detect", seed, size=(64, 48), num_frames=70, num_tracks=0,
                                 appearance=Appearance.parse("blood_colour,degrade")).frames
        assert np.array_equal(z["frames"], expected)
    assert "blood_colour, degrade" in task.data_description()
    with pytest.raises(InputError, match="appearance_features"):
        OnsetTask({"model": {"window": 16}, "data": {**data, "appearance_features": "fog"}})
