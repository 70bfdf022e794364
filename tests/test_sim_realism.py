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
    report = realism_report(shared_data / "esd_clips", shared_data / "esd_clips")
    for h in report["histograms"].values():
        assert h["intersection"] == pytest.approx(1.0)
    assert report["scalars"]["value"]["wasserstein"] == pytest.approx(0.0)


@pytest.mark.real
def test_sim_brackets_real_colour(shared_data: Path) -> None:
    clips = [generate_clip("track_short", 300 + i, size=(256, 192), num_tracks=0) for i in range(6)]
    report = realism_report(clips, shared_data / "esd_clips")
    text = format_realism(report)
    assert "hue" in text and "motion" in text
    assert report["histograms"]["hue"]["intersection"] > 0.7
    assert report["scalars"]["value"]["real_inside_frac"] >= 0.5


def test_realism_bad_folder_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        realism_report(tmp_path / "missing", tmp_path)
