"""The paper's metrics on hand-computed cases, including the edge cases of the missed rule."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bleedorigin.eval.metrics import (ONSET_TOLERANCES, PIXEL_THRESHOLDS, false_alarm_rate, onset_summary,
                                      point_errors, point_summary)


def test_onset_accuracy_counts_tolerance_inclusively():
    s = onset_summary([120, 121, 118, 124, 136, 137], [120] * 6)
    # differences 0, 1, 2, 4, 16, 17
    assert s["acc"] == {0: 1 / 6, 1: 2 / 6, 2: 3 / 6, 4: 4 / 6, 8: 4 / 6, 16: 5 / 6}
    assert s["err_avg"] == pytest.approx((0 + 1 + 2 + 4 + 16 + 17) / 6)
    assert s["missed"] == 0 and s["n"] == 6


def test_missed_onset_is_wrong_everywhere_and_outside_err_avg():
    s = onset_summary([120, None, 125], [120, 120, 121])
    assert s["missed"] == 1
    assert s["acc"][0] == pytest.approx(1 / 3) and s["acc"][4] == pytest.approx(2 / 3)
    assert s["acc"][16] == pytest.approx(2 / 3)  # the miss never counts as correct
    assert s["err_avg"] == pytest.approx(2.0)


def test_all_missed_and_empty():
    s = onset_summary([None, None], [5, 9])
    assert s["err_avg"] is None and s["missed"] == 2 and all(v == 0 for v in s["acc"].values())
    empty = onset_summary([], [])
    assert empty["n"] == 0 and empty["err_avg"] is None
    with pytest.raises(ValueError):
        onset_summary([1], [1, 2])


def test_false_alarm_rate():
    assert false_alarm_rate([None, None, 40, None]) == 0.25
    assert false_alarm_rate([0]) == 1.0  # an onset on frame 0 is still an alarm
    assert false_alarm_rate([]) == 0.0


def test_point_errors_scale_to_512x384():
    # 1024x768 input: every error halves; 256x384: x doubles, y unchanged.
    assert point_errors([[30, 40]], [[0, 0]], (1024, 768))[0] == pytest.approx(25.0)
    assert point_errors([[3, 4]], [[0, 0]], (256, 384))[0] == pytest.approx(math.hypot(6, 4))
    assert point_errors([[3, 4]], [[0, 0]], (512, 384))[0] == pytest.approx(5.0)


def test_point_accuracy_is_strictly_below_threshold():
    errs = [0.0, 10.0, 24.9, 50.0, 99.0, 150.0]
    s = point_summary(errs)
    assert s["acc"] == {10: 1 / 6, 25: 3 / 6, 50: 3 / 6, 75: 4 / 6, 100: 5 / 6}
    assert s["err_avg"] == pytest.approx(np.mean(errs))


def test_missing_point_prediction_is_a_miss():
    errs = point_errors([[np.nan, np.nan], [3, 4]], [[10, 10], [0, 0]], (512, 384))
    assert np.isinf(errs[0]) and errs[1] == pytest.approx(5.0)
    s = point_summary(errs)
    assert s["missed"] == 1 and s["acc"][10] == 0.5 and s["err_avg"] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        point_errors([[0, 0]], [[np.nan, 1]], (512, 384))


def test_paper_thresholds():
    assert ONSET_TOLERANCES == (0, 1, 2, 4, 8, 16)
    assert PIXEL_THRESHOLDS == (10, 25, 50, 75, 100)
