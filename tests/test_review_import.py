"""`bleedorigin data import-review`: reviewed runs become benchmark clips that `data check`
accepts and that onset/source training and tracker fine-tuning read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from review_run import make_run

from bleedorigin.cli import main
from bleedorigin.errors import InputError
from bleedorigin.io.bench import load_bench
from bleedorigin.io.check import check_bench
from bleedorigin.io.video import read_frames
from bleedorigin.review.importer import import_review
from bleedorigin.io.checkpoint import load_checkpoint


def _review(run: Path, onset, source=None, points=None) -> None:
    body = {"onset_frame": onset, "source": source, "points": points or {}}
    (run / "labels.json").write_text(json.dumps(body))


def _cli(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> Path:
    """200 frames, disc from 150, a false alarm at 40, reviewed: onset 150, source, a point at 180."""
    run = make_run(tmp_path_factory.mktemp("long"), n=200, onset=150, alarms=(40,))
    _review(run, 150, [40.0, 24.0], {"180": [[55.0, 24.0]]})
    return run


def test_corrections_become_detect_track_and_negative_clips(tmp_path, long_run):
    out = tmp_path / "bench"
    assert _cli("-q", "data", "import-review", long_run, "--out", out) == 0
    assert check_bench(out) == []
    clips = {c.id: c for c in load_bench(out)}
    assert sorted(clips) == ["run_negative0", "run_onset", "run_track"]
    onset, track, neg = clips["run_onset"], clips["run_track"], clips["run_negative0"]
    # 150 frames with the onset at 120: input frames 30..179
    assert (onset.kind, onset.num_frames, onset.onset_frame) == ("detect", 150, 120)
    assert onset.labels == {120: [(40.0, 24.0)]}
    source = read_frames(json.loads((long_run / "result.json").read_text())["video"])
    got = read_frames(onset.video)
    assert np.abs(got[120].astype(int) - source[150]).mean() < 3  # the cut is at the right place
    # the source at frame 0, the corrected point 30 frames on
    assert (track.kind, track.num_frames) == ("track_short", 31)
    assert track.labels == {0: [(40.0, 24.0)], 30: [(55.0, 24.0)]}
    # the false alarm at 40: the clean frames up to 30 after it
    assert (neg.kind, neg.num_frames, neg.onset_frame, neg.labels) == ("negative", 70, None, {})
    assert len({c.patient for c in clips.values()}) == 1  # one run: never split across train/test


def test_no_bleeding_turns_the_alarm_into_a_negative_clip(tmp_path):
    run = make_run(tmp_path, n=60, onset=20)
    _review(run, None)
    clips = import_review([run], tmp_path / "bench")
    assert [(c.kind, c.num_frames) for c in clips] == [("negative", 50)]
    assert check_bench(tmp_path / "bench") == []


def test_early_onset_keeps_the_clip_inside_the_video(tmp_path):
    run = make_run(tmp_path, n=60, onset=5)
    _review(run, 4, [30.0, 24.0], {"34": [[35.0, 24.0]], "50": [[38.0, 24.0]]})
    clips = {c.id: c for c in import_review([run], tmp_path / "bench")}
    assert (clips["run_onset"].num_frames, clips["run_onset"].onset_frame) == (60, 4)
    assert clips["run_track"].kind == "sparse"  # labels not every 30 frames: kept as they are
    assert sorted(clips["run_track"].labels) == [0, 30, 46]
    assert check_bench(tmp_path / "bench") == []


def test_reimport_replaces_the_runs_clips(tmp_path):
    out = tmp_path / "bench"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run = make_run(tmp_path / "a", n=60, onset=20)
    _review(run, 20, [30.0, 24.0], {"50": [[35.0, 24.0]]})
    other = make_run(tmp_path / "b", n=60, onset=20).rename(tmp_path / "other")
    _review(other, 20)
    import_review([run, other], out)
    assert sorted(c.id for c in load_bench(out)) == ["other_onset", "run_onset", "run_track"]
    _review(run, 20)  # source withdrawn: no track clip any more, the onset clip is kept without it
    import_review([run], out)
    clips = {c.id: c for c in load_bench(out)}
    assert sorted(clips) == ["other_onset", "run_onset"] and clips["run_onset"].kind == "full"
    assert check_bench(out) == []


def test_unreviewed_run_is_a_one_line_error(tmp_path, capsys):
    run = make_run(tmp_path, n=30, onset=10)
    assert _cli("data", "import-review", run, "--out", tmp_path / "bench") == 2
    assert "no labels.json" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a run folder"):
        import_review([tmp_path], tmp_path / "bench")


def test_training_reads_the_imported_clips(tmp_path, long_run):
    from bleedorigin.models.onset.train import BenchOnsetClips
    from bleedorigin.models.source.train import SourceDataConfig, bench_source_items
    out = tmp_path / "bench"
    import_review([long_run], out)
    onset = BenchOnsetClips((str(out),), (64, 48), 16)
    assert sorted((c.kind, c.onset_frame) for c in onset.clips) == [("detect", 120), ("negative", None)]
    items = bench_source_items((str(out),), (64, 48), SourceDataConfig())
    assert len(items) == 1 and np.isfinite(items[0]["gt"][-1]).all()  # the source at the onset
    from test_tracker_finetune import _tiny_checkpoint
    start = _tiny_checkpoint(tmp_path / "start")
    assert _cli("-q", "finetune", "track", out, "--out", tmp_path / "tuned", "--model", start,
                "--steps", 1, "--rank", 2) == 0
    config, _ = load_checkpoint(tmp_path / "tuned")
    assert config["finetune"]["clips"] == ["run_track"]  # the clip with a source and a later point
