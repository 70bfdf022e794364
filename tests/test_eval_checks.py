"""evaluate's checks: onset threshold replay, confidence calibration tables, leave-one-out input."""
from __future__ import annotations

import json

import pytest
from test_cli import cli

from bleedorigin.eval import calibration, onset_threshold
from bleedorigin.eval.protocol import eval_onset
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.onset.predictor import REFINE_RADIUS, OnsetDetector
from bleedorigin.sim.writer import write_bench


def test_onset_threshold_replay_matches_the_streaming_detector(tmp_path):
    write_bench(tmp_path, n=1, seed=9, kind="detect")
    clip = discover_clips(tmp_path)[0]
    streaming = OnsetDetector.from_pretrained("small", device="cpu")  # threshold 0.5, refinement on
    expected = eval_onset(streaming, clip)["pred"]
    assert expected is not None and abs(expected - clip.onset_frame) <= 8
    det = OnsetDetector.from_pretrained("small", device="cpu", refine_radius=0)
    trace = onset_threshold.clip_trace(det, clip)
    assert onset_threshold.decide(trace, 0.5, REFINE_RADIUS, det.cfg.window) == expected
    assert onset_threshold.decide(trace, 1.0, REFINE_RADIUS, det.cfg.window) is None  # no window is that sure
    out = tmp_path / "eval"
    assert cli("-q", "evaluate", tmp_path, "--out", out, "--stages", "onset", "--no-baselines", "--onset-thresholds") == 0
    table = json.loads((out / "onset_thresholds.json").read_text())
    assert table["model"] == "onset_small" and (table["onsets"], table["negatives"]) == (1, 0)
    row = next(r for r in table["rows"] if (r["radius"], r["threshold"]) == (REFINE_RADIUS, 0.5))
    assert row["missed"] == 0 and row["err_avg"] == abs(expected - clip.onset_frame)


def test_source_calibration_ranks_confidence_against_error():
    records = [{"confidence": c, "error": e} for c, e in [(0.9, 5.0), (0.8, 10.0), (0.3, 40.0), (0.1, 80.0)]]
    c = calibration.source_calibration(records + [{"failed": "broken clip"}])
    assert c["n"] == 4 and c["spearman"] == pytest.approx(-1.0)
    assert (c["err_low_conf"], c["err_high_conf"]) == (60.0, 7.5)


def test_track_calibration_bins_scored_frames():
    # one point from frame 10: predictions [x, y, confidence, visible]; labelled frames 11 and 12
    record = {"start": 10, "points": [{"pred": [[0, 0, 1.0, 1], [0, 0, 0.9, 1], [0, 0, 0.1, 0]], "dense": None,
                                       "labelled": [{"frame": 11, "error": 4.0}, {"frame": 12, "error": 60.0}]}]}
    rows = calibration.track_calibration([record])
    assert [(r["low"], r["n"], r["err_avg"], r["acc_25"], r["visible"]) for r in rows] == [
        (0.0, 1, 60.0, 0.0, 0.0), (0.8, 1, 4.0, 1.0, 1.0)]
    block = calibration.calibration_block({("track", "t"): [record], ("source", "s"): [
        {"confidence": 0.5, "error": 1.0}]})
    assert "Tracking error by confidence: t" in calibration.to_markdown(block)


def test_leave_one_out_bad_input_is_exit_2(tmp_path):
    out = tmp_path / "out"
    assert cli("-q", "evaluate", tmp_path / "missing", "--out", out, "--leave-one-out", "track") == 2
    (tmp_path / "one").mkdir()
    assert cli("-q", "evaluate", tmp_path / "one", "--out", out, "--leave-one-out", "track") == 2  # < 2 clips
    assert cli("-q", "evaluate", tmp_path, "--out", out, "--leave-one-out", "onset") == 2
    assert cli("-q", "evaluate", tmp_path, "--out", out, "--leave-one-out", "track", "--set", "bogus=1") == 2
