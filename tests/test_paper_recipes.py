"""The GPU recipes of the paper presets, parsed and run at toy sizes on the CPU (AMP as bf16)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from bleedorigin.config import load_recipe, load_yaml
from bleedorigin.models.source import SourceConfig
from bleedorigin.models.source.train import SourceDataConfig

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "src" / "bleedorigin" / "configs" / "paper" / "source_paper.yaml"


def test_source_paper_recipe_has_the_paper_settings():
    r = load_recipe(PAPER, "source", [], SourceConfig, SourceDataConfig)
    assert r.model["encoder"] == "vit_pe_spatial_small" and tuple(r.model["input_size"]) == (512, 384)
    assert r.train.amp and r.train.lr == 1e-5 and r.train.min_lr_ratio == 1.0 and r.train.warmup_steps == 0
    assert r.data["samples_per_batch"] == 16


def test_source_paper_recipe_trains_at_toy_size_with_amp(tmp_path):
    """The paper's training section (AMP, fixed lr) on the tiny test model and data."""
    from bleedorigin.training.trainer import train_main
    toy = load_yaml(ROOT / "src" / "bleedorigin" / "configs" / "source_test.yaml")
    paper = load_yaml(PAPER)
    recipe = {"stage": "source", "model": toy["model"], "data": {**toy["data"], "cache_dir": str(tmp_path / "cache")},
              "train": {**paper["train"], "steps": 2, "val_every": 2, "save_every": 2, "log_every": 1,
                        "progress": False, "device": "cpu"}}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(recipe))
    result = train_main("source", tmp_path / "toy.yaml", tmp_path / "run", [])
    assert result["step"] == 2 and np.isfinite(result["best_score"])
    saved = load_yaml(tmp_path / "run" / "config.yaml")
    assert saved["train"]["amp"] is True and saved["train"]["lr"] == 1e-5
