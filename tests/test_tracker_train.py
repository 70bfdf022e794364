"""TrackTask through the one Trainer (track_test recipe) and the synthetic training clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bleedorigin.models.tracker.synth import inside, moving_texture_clip
from bleedorigin.models.tracker.train import TrackTask

CONFIGS = Path(__file__).resolve().parents[1] / "configs"



def test_moving_texture_tracks_follow_the_content():
    rng = np.random.default_rng(0)
    frames, tracks, vis = moving_texture_clip(rng, (128, 96), 6, 32)
    assert frames.shape == (6, 96, 128, 3) and tracks.shape == (6, 32, 2) and vis.shape == (6, 32)
    assert vis[0].mean() > 0.7
    # the colour under a visible track changes little from frame to frame (tracks move with content)
    ok = vis[0] & vis[1] & inside(tracks[1], (128, 96), 3)
    c0 = frames[0][tracks[0, ok, 1].round().astype(int), tracks[0, ok, 0].round().astype(int)].astype(float)
    c1 = frames[1][tracks[1, ok, 1].round().astype(int), tracks[1, ok, 0].round().astype(int)].astype(float)
    shuffled = c1[np.random.default_rng(1).permutation(len(c1))]
    assert np.abs(c0 - c1).mean() < 0.5 * np.abs(c0 - shuffled).mean()


def test_trainer_runs_the_track_test_recipe(tmp_path):
    from bleedorigin.training.trainer import train_main
    res = train_main("track", CONFIGS / "track_test.yaml", tmp_path / "run",
                     [f"data.cache_dir={tmp_path / 'cache'}"])
    assert res["step"] == 2 and np.isfinite(res["best_score"])
    from bleedorigin.models.tracker.predictor import PointTracker
    tr = PointTracker.from_pretrained(str(tmp_path / "run" / "best"), device="cpu")
    frame = np.zeros((48, 64, 3), np.uint8)
    tr.start(frame, (10.0, 10.0))
    assert np.isfinite(tr.step(frame).x)


def test_motion_mix_trains_one_step_with_the_hint(tmp_path):
    from bleedorigin.training.trainer import train_main
    res = train_main("track", CONFIGS / "track_test.yaml", tmp_path / "run",
                     [f"data.cache_dir={tmp_path / 'cache'}", "model.motion_mix=true"])
    assert res["step"] == 2 and np.isfinite(res["best_score"])
    from bleedorigin.models.tracker.predictor import PointTracker
    assert PointTracker.from_pretrained(str(tmp_path / "run" / "best"), device="cpu").cfg.motion_mix


def test_validate_reports_score_in_unit_range(tmp_path):
    task = TrackTask({"model": {"dim": 32, "heads": 2, "layers": 1, "ffn": 64, "memory": 4, "topk": 4, "c4": 8,
                                "c8": 16, "c16": 16, "feat_dim": 16, "corr_dim": 16, "red_dim": 4,
                                "red_mask_source": "fallback"},
                      "data": {"val_clips": 1, "val_frames": 4, "val_points": 4, "cache_dir": str(tmp_path)}})
    m = task.build_model().eval()
    with torch.no_grad():
        res = task.validate(m)
    assert 0.0 <= res["score"] <= 1.0 and res["err_avg"] >= 0
