"""TrackTask through the one Trainer (track_test recipe) and the synthetic training clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bleedorigin.models.track.learned.synth import inside, moving_texture_clip
from bleedorigin.models.track.learned.train import TrackTask

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "bleedorigin" / "configs"



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
    from bleedorigin.models.track.learned.predictor import PointTracker
    tr = PointTracker.from_pretrained(str(tmp_path / "run" / "best"), device="cpu")
    frame = np.zeros((48, 64, 3), np.uint8)
    tr.start(frame, (10.0, 10.0))
    assert np.isfinite(tr.step(frame).x)


def test_motion_mix_trains_one_step_with_the_hint(tmp_path):
    from bleedorigin.training.trainer import train_main
    res = train_main("track", CONFIGS / "track_test.yaml", tmp_path / "run",
                     [f"data.cache_dir={tmp_path / 'cache'}", "model.motion_mix=true"])
    assert res["step"] == 2 and np.isfinite(res["best_score"])
    from bleedorigin.models.track.learned.predictor import PointTracker
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


def test_source_crops_hold_the_bleeding_source_supervised_through_blood(tmp_path):
    # with source_share=1 every BleedSim sample is a crop around the source, which is point 0 and
    # supervised on every frame it is inside the crop (also when blood covers it)
    from bleedorigin.sim import generate_clip
    task = TrackTask({"model": {}, "data": {"source_share": 1.0, "sim_fraction": 1.0, "sim_pool": 1,
                                            "sim_frames": 12, "clip_len": 6, "crop": [128, 96], "points": 4,
                                            "cache_dir": str(tmp_path)}})
    frames, tracks, vis = task._one_clip(np.random.default_rng(0))
    truth = generate_clip("track_long", 0, size=(512, 384), num_frames=12, num_tracks=96).source_xy
    assert frames.shape == (6, 96, 128, 3) and tracks.shape == (6, 4, 2) and vis[:, 0].all()
    found = False
    for t0 in range(12 - 6 + 1):  # point 0 is the source's true path, shifted by the crop origin
        for seg in (truth[t0:t0 + 6], truth[t0:t0 + 6][::-1]):
            off = seg - tracks[:, 0]
            found |= bool(np.allclose(off, off[0], atol=1e-3) and np.allclose(off[0], np.round(off[0]), atol=1e-3))
    assert found


def test_onset_started_crops_watch_the_pool_form_over_the_source(tmp_path):
    # with onset_share=1 every source crop starts 0-4 frames before a fresh onset: little blood
    # around the source on the first frame, clearly more by the last
    from bleedorigin.vision.color import blood_area
    task = TrackTask({"model": {}, "data": {"source_share": 1.0, "onset_share": 1.0, "sim_fraction": 1.0,
                                            "sim_pool": 2, "clip_len": 16, "points": 4,
                                            "cache_dir": str(tmp_path)}})

    def blood_near(frame, xy):
        x, y = np.round(xy).astype(int)
        return blood_area(np.ascontiguousarray(frame[max(0, y - 20):y + 20, max(0, x - 20):x + 20]))

    rng = np.random.default_rng(0)
    for _ in range(4):
        frames, tracks, vis = task._one_clip(rng)
        assert vis[:, 0].all()
        first, last = blood_near(frames[0], tracks[0, 0]), blood_near(frames[-1], tracks[-1, 0])
        assert last > first + 0.1, (first, last)


def test_frame_stride_makes_larger_steps_between_frames(tmp_path):
    # max_stride=3 reads BleedSim clips every 1-3 frames: the points move further per step
    def mean_step(max_stride):
        task = TrackTask({"model": {}, "data": {"sim_fraction": 1.0, "sim_pool": 2, "clip_len": 8, "points": 8,
                                                "max_stride": max_stride, "cache_dir": str(tmp_path)}})
        rng = np.random.default_rng(0)
        steps = []
        for _ in range(12):
            frames, tracks, vis = task._one_clip(rng)
            assert len(frames) == 8 and tracks.shape[0] == 8
            steps.append(np.linalg.norm(np.diff(tracks, axis=0), axis=-1).mean())
        return float(np.mean(steps))
    assert mean_step(3) > 1.4 * mean_step(1)
