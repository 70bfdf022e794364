"""`bleedorigin data stage-extra`: page-video crops and the deployment clip's overlay removal."""
from __future__ import annotations

import numpy as np
import pytest
from test_cli import cli

from bleedorigin.io import extra_real


def test_crop_dedup_and_deoverlay():
    """Page-video crops keep one copy of each repeated frame; the deployment clean-up blacks the
    label box, crops the alarm border and leaves no green marker pixel."""
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(2))
    kept, fps = extra_real.crop_dedup([a, a, b, b, b, a], 30.0, (10, 5, 40, 30))
    assert len(kept) == 3 and kept[0].shape == (30, 40, 3) and fps == pytest.approx(15.0)
    assert np.array_equal(kept[1], b[5:35, 10:50])
    frame = np.full((200, 400, 3), (150, 60, 70), np.uint8)  # pinkish-red tissue
    frame[100:130, 200:230] = (40, 220, 40)  # green marker
    out, = extra_real.deoverlay([frame])
    border = extra_real.BORDER
    assert out.shape == (200 - 2 * border, 400 - 2 * border, 3)
    rgb = out.astype(int)
    assert not ((rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) > 10).any()
    x, y, w, h = extra_real.LABEL_BOX
    assert (out[: y + h - border, : x + w - border] == 0).all()


def test_stage_extra_bad_input_is_exit_2(tmp_path):
    assert cli("-q", "data", "stage-extra", "--repos", tmp_path / "none", "--out", tmp_path / "o") == 2
    assert cli("-q", "data", "stage-extra", "--repos", tmp_path, "--out", tmp_path / "o", "--only", "nope") == 2
    # a known clip whose repository copy is missing: one error line, nothing staged
    assert cli("-q", "data", "stage-extra", "--repos", tmp_path, "--out", tmp_path / "o",
               "--only", "esd_deployment_1") == 2
