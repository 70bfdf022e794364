"""BleedSim output files: gt.npz round trip, benchmark folder accepted by `data check`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bleedorigin.sim.generator import generate_clip
from bleedorigin.sim.writer import clip_kind, clip_labels, label_frames, load_gt, save_gt


def test_gt_npz_round_trip(tmp_path: Path) -> None:
    clip = generate_clip("detect", 4, size=(128, 96), num_frames=130, num_tracks=6)
    save_gt(tmp_path / "gt.npz", clip)
    gt = load_gt(tmp_path / "gt.npz")
    assert gt["onset_frame"] == clip.onset_frame == 120
    assert np.array_equal(gt["blood_mask"], clip.blood_mask)
    assert np.array_equal(gt["tracks_xy"], clip.tracks_xy) and gt["tracks_xy"].dtype == np.float32
    assert np.array_equal(gt["source_visible"], clip.source_visible)
    assert gt["scenario"] == clip.scenario and gt["site"] == clip.site
    neg = generate_clip("negative", 4, size=(128, 96), num_frames=3, num_tracks=1)
    save_gt(tmp_path / "neg.npz", neg)
    assert load_gt(tmp_path / "neg.npz")["onset_frame"] is None


def test_label_frames_follow_the_benchmark_protocol() -> None:
    det = generate_clip("detect", 1, size=(128, 96), num_tracks=0)
    assert label_frames(det) == [120]
    short = generate_clip("track_short", 1, size=(128, 96), num_tracks=0)
    assert label_frames(short) == [0, 30]
    labels = clip_labels(short)
    assert np.allclose(labels[30][0], short.source_xy[30])
    full = generate_clip("full", 2, size=(128, 96), num_frames=100, num_tracks=0)
    assert label_frames(full)[0] == full.onset_frame and np.all(np.diff(label_frames(full)) == 30)
    assert label_frames(generate_clip("negative", 1, size=(128, 96), num_frames=5, num_tracks=0)) == []
    assert [clip_kind("track", i) for i in range(3)] == ["track_short", "track_long", "track_short"]


def test_written_bench_passes_data_check(tmp_path: Path) -> None:
    from bleedorigin.io import bench
    from bleedorigin.io.check import check_bench
    from bleedorigin.sim.writer import write_bench

    root = tmp_path / "bench"
    clips = write_bench(root, 2, seed=3, kind="detect", size=(128, 96), progress=False)
    write_bench(tmp_path / "neg", 1, seed=3, kind="negative", size=(128, 96), progress=False)
    write_bench(tmp_path / "trk", 1, seed=3, kind="track", size=(128, 96), progress=False)
    assert len(clips) == 2
    for r in (root, tmp_path / "neg", tmp_path / "trk"):
        assert check_bench(r) == []
    loaded = bench.load_bench(root)
    assert {c.onset_frame for c in loaded} == {120}
    assert all(120 in c.labels and c.gt is not None and Path(c.gt).is_file() for c in loaded)
    assert all(c.patient.startswith("simp") and c.scenario and c.site for c in loaded)
