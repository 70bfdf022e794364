"""Realism report: identical inputs give zero distance; BleedSim brackets the real colour/brightness."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bleedorigin.errors import InputError
from bleedorigin.sim.generator import generate_clip
from bleedorigin.sim.realism import clip_stats, format_realism, realism_report


def test_clip_stats_on_known_frames() -> None:
    """A red half-frame has red area 0.5; a static clip has zero motion."""
    frames = np.zeros((6, 112, 112, 3), np.uint8)
    frames[:, :, :56] = (200, 20, 30)
    frames[:, :, 56:] = (220, 170, 170)
    s = clip_stats(frames)["scalars"]
    assert s["red_area"] == pytest.approx(0.5, abs=0.01)
    assert s["motion"] == pytest.approx(0.0, abs=1e-3) and s["red_area_std"] == 0.0


@pytest.mark.real
def test_real_against_itself_is_identical(shared_data: Path) -> None:
    report = realism_report(shared_data / "esd_clips", shared_data / "esd_clips", classifier=False)
    for h in report["histograms"].values():
        assert h["intersection"] == pytest.approx(1.0)
    assert report["scalars"]["value"]["wasserstein"] == pytest.approx(0.0)


@pytest.mark.real
def test_sim_brackets_real_colour(shared_data: Path) -> None:
    clips = [generate_clip("track_short", 300 + i, size=(256, 192), num_tracks=0) for i in range(6)]
    report = realism_report(clips, shared_data / "esd_clips", classifier=False)
    text = format_realism(report)
    assert "hue" in text and "motion" in text
    assert report["histograms"]["hue"]["intersection"] > 0.7
    assert report["scalars"]["value"]["real_inside_frac"] >= 0.5


def test_realism_bad_folder_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        realism_report(tmp_path / "missing", tmp_path)


def test_roc_auc_known_values() -> None:
    from bleedorigin.sim.c2st import roc_auc
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert roc_auc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.625)


def test_classifier_test_tells_different_sets_apart_and_not_identical_ones() -> None:
    """Striped red clips against smooth pink ones: AUC near 1; two draws of the same kind of
    clip: near 0.5."""
    from bleedorigin.sim.c2st import C2STConfig, c2st_realism

    rng = np.random.default_rng(0)

    def clips(striped: bool, n: int) -> dict[str, np.ndarray]:
        out = {}
        for i in range(n):
            f = np.clip(rng.normal((200, 120, 120), 12, (4, 112, 112, 3)), 0, 255).astype(np.uint8)
            if striped:
                f[:, :, ::6] = (120, 10, 20)
            out[f"c{i}"] = f
        return out
    cfg = C2STConfig(epochs=3, repeats=1)
    assert c2st_realism(clips(True, 4), clips(False, 3), cfg)["auc"] > 0.9
    assert abs(c2st_realism(clips(False, 4), clips(False, 3), cfg)["auc"] - 0.5) < 0.2
    # fewer synthetic clips than real ones: every fold still tests on synthetic clips it did not see
    assert c2st_realism(clips(True, 2), clips(False, 3), cfg)["auc"] > 0.9


def test_paired_difference_interval_brackets_a_constant_shift() -> None:
    from bleedorigin.sim.c2st import paired_difference
    a = {"x": 0.7, "y": 0.6, "z": 0.8}
    d = paired_difference({k: v - 0.1 for k, v in a.items()}, a)
    assert d["mean"] == pytest.approx(-0.1) and d["lo"] == pytest.approx(-0.1) and d["hi"] == pytest.approx(-0.1)
    spread = paired_difference({"x": 0.5, "y": 0.9, "z": 0.7}, a)
    assert spread["lo"] < spread["mean"] < spread["hi"]
