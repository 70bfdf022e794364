"""TAP-Vid / STIR metrics (eval.tap) on hand-made cases with known answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_eval_protocol import StillTracker, make_clip

from bleedorigin.eval import protocol, runner
from bleedorigin.eval.tap import (
    STIR_THRESHOLDS,
    TAPVID_THRESHOLDS,
    average_over_clips,
    jaccard_metrics,
    reappearances,
    redetection_metrics,
)


def test_perfect_tracker_scores_one_and_all_wrong_scores_zero():
    n = 7
    perfect = jaccard_metrics(np.zeros(n), np.ones(n, bool), np.ones(n, bool), TAPVID_THRESHOLDS)
    assert (perfect["aj"], perfect["delta_avg"], perfect["oa"]) == (1.0, 1.0, 1.0)
    wrong = jaccard_metrics(np.full(n, 40.0), np.ones(n, bool), np.ones(n, bool), STIR_THRESHOLDS)
    assert (wrong["aj"], wrong["delta_avg"], wrong["oa"]) == (0.0, 0.0, 1.0)  # visibility was right
    blind = jaccard_metrics(np.zeros(n), np.zeros(n, bool), np.ones(n, bool), TAPVID_THRESHOLDS)
    assert (blind["aj"], blind["delta_avg"], blind["oa"]) == (0.0, 1.0, 0.0)  # right place, called hidden


def test_known_fractions_per_threshold():
    # distances 0.5, 3, 10, 100 px, all visible and predicted visible
    m = jaccard_metrics([0.5, 3.0, 10.0, 100.0], [True] * 4, [True] * 4, TAPVID_THRESHOLDS)
    assert m["delta"] == pytest.approx({"1": 1 / 4, "2": 1 / 4, "4": 2 / 4, "8": 2 / 4, "16": 3 / 4})
    # Jaccard = TP / (visible + FP): a far prediction is a miss and a false positive
    assert m["jaccard"] == pytest.approx({"1": 1 / 7, "2": 1 / 7, "4": 2 / 6, "8": 2 / 6, "16": 3 / 5})
    assert m["delta_avg"] == pytest.approx(0.45)
    assert m["aj"] == pytest.approx((2 / 7 + 2 / 3 + 3 / 5) / 5)
    assert m["visible"] == 4 and m["n"] == 4


def test_hidden_points_count_for_jaccard_and_occlusion_accuracy():
    said_visible = jaccard_metrics([0.0, np.inf], [True, True], [True, False], TAPVID_THRESHOLDS)
    assert (said_visible["aj"], said_visible["delta_avg"], said_visible["oa"]) == (0.5, 1.0, 0.5)
    said_hidden = jaccard_metrics([0.0, np.inf], [True, False], [True, False], TAPVID_THRESHOLDS)
    assert (said_hidden["aj"], said_hidden["delta_avg"], said_hidden["oa"]) == (1.0, 1.0, 1.0)
    nothing_visible = jaccard_metrics([np.inf], [False], [False], TAPVID_THRESHOLDS)
    assert nothing_visible["aj"] is None and nothing_visible["delta_avg"] is None and nothing_visible["oa"] == 1.0
    with pytest.raises(ValueError):
        jaccard_metrics([1.0, 2.0], [True], [True], TAPVID_THRESHOLDS)


def test_tapvid_from_track_records_at_256x256(tmp_path: Path) -> None:
    """The zero-motion tracker on a 64x48 clip: point 0 is off by 1 px in y at frame 10 (5.33 px at
    256x256) and 2.5 px in x at frame 23 (10 px); point 1 is hidden (null label) at frame 10 but
    said visible, and exact at 23."""
    labels = {0: [(20.0, 24.0), (30.0, 10.0)], 10: [(20.0, 25.0), None], 23: [(22.5, 24.0), (30.0, 10.0)]}
    record = protocol.eval_track(StillTracker(), make_clip(tmp_path, "trk", "track_short", None, labels))
    assert record["points"][1]["hidden"] == [10]
    dist, pred_vis, gt_vis = runner.tapvid_pairs(record, "labelled")
    assert sorted(dist) == pytest.approx([0.0, 16 / 3, 10.0, np.inf])
    assert all(pred_vis) and sorted(gt_vis) == [False, True, True, True]
    block = runner.tapvid_block([record], "labelled")["overall"]
    assert block["clips"] == 1
    assert block["delta_avg"] == pytest.approx(8 / 15)
    assert block["aj"] == pytest.approx((3 / 6 + 2 / 5 + 3 / 4) / 5)
    assert block["oa"] == pytest.approx(3 / 4)


def test_clip_average_skips_undefined_values():
    out = average_over_clips([{"aj": 1.0, "delta_avg": 1.0, "oa": 1.0}, {"aj": None, "delta_avg": None, "oa": 0.5}])
    assert out == {"clips": 2, "aj": 1.0, "delta_avg": 1.0, "oa": 0.75}


def test_reappearances_count_only_a_longer_absence_than_before():
    vis = [True, False, False, True, False, True, False, False, False, True]
    assert reappearances(vis) == [(3, 2), (9, 3)]  # the 1-frame gap at 4 is shorter than the first
    assert reappearances([False, False, True]) == [(2, 2)]  # hidden from the first frame
    assert reappearances([True, True]) == []


def test_redetection_jaccard_from_the_reappearance_to_the_end():
    # hidden for 2 frames, back at frame 3: 0.5 px off there, 3 px off at frame 4, both said visible
    track = ([0.0, np.inf, np.inf, 0.5, 3.0], [True, False, False, True, True], [True, False, False, True, True])
    m = redetection_metrics([track])
    # D = 1, 2: one hit and one visible miss that is also a false positive: 1 / (2 + 1); D >= 4: 2 / 2
    assert m["by_min_hidden"]["1"] == pytest.approx((1 / 3 + 1 / 3 + 1 + 1 + 1) / 5)
    assert m["by_min_hidden"]["4"] is None and m["events"] == 1
    assert m["aj_rd"] == pytest.approx(11 / 15)


def test_redetection_pools_events_by_how_long_the_point_was_hidden():
    found = ([0.0] * 5 + [np.inf] * 5 + [0.0] * 5, [True] * 15, [True] * 5 + [False] * 5 + [True] * 5)
    lost = ([0.0] * 2 + [np.inf] * 20 + [50.0] * 3, [True] * 25, [True] * 2 + [False] * 20 + [True] * 3)
    m = redetection_metrics([found, lost])
    assert m["events_by_min_hidden"] == {"1": 2, "4": 2, "16": 1, "64": 0, "256": 0}
    # the point found again after 5 hidden frames scores 1 (its hidden frames are before the event),
    # the one lost after 20 scores 0
    assert m["by_min_hidden"]["1"] == m["by_min_hidden"]["4"] == pytest.approx(0.5)
    assert m["by_min_hidden"]["16"] == 0.0 and m["by_min_hidden"]["64"] is None
    assert m["aj_rd"] == pytest.approx(1 / 3)
    called_hidden = ([0.0] * 4, [True, False, False, False], [True, False, True, True])
    assert redetection_metrics([called_hidden])["aj_rd"] == 0.0  # at the right place but never said visible
    assert redetection_metrics([([0.0] * 3, [True] * 3, [True] * 3)]) == {
        "aj_rd": None, "by_min_hidden": dict.fromkeys(("1", "4", "16", "64", "256")), "events": 0,
        "events_by_min_hidden": dict.fromkeys(("1", "4", "16", "64", "256"), 0)}


def test_redetection_block_reads_the_dense_truth_of_a_track_record():
    """A record as `protocol.eval_track` writes it: the point hidden at frames 2-3 (BleedSim's
    `source_visible`), said hidden at 2 and visible from 3; back at frame 4, 0.5 px off at 256x256."""
    pred = [[10.0, 10.0, 1.0, 1.0], [10.0, 10.0, 1.0, 1.0], [10.0, 10.0, 0.2, 0.0], [10.0, 10.0, 0.5, 1.0],
            [10.0, 10.0, 0.9, 1.0]]
    dense = {"frames": [1, 2, 3, 4], "errors": [0.0] * 4, "errors_tapvid": [0.0, 9.0, 9.0, 0.5],
             "visible": [True, False, False, True]}
    record = {"clip": "c", "start": 0, "image_size": [256, 256], "points": [{"pred": pred, "dense": dense}]}
    rd = runner.redetection_block([record])
    # from frame 4 on: one visible frame, said visible, 0.5 px off: Jaccard 1 at every threshold
    assert rd["events"] == 1 and rd["events_by_min_hidden"]["1"] == 1 and rd["aj_rd"] == 1.0
    record["points"][0]["dense"] = dict(dense, visible=None)  # imported dense labels: no visibility
    assert runner.redetection_block([record]) is None
