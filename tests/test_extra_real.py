"""`bleedorigin data stage-extra`: page-video crops and the deployment clip's overlay removal."""
from __future__ import annotations

import cv2
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


def _tissue(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Pinkish-red tissue with dark and bright patches (dark tissue shows little green through the disk)."""
    rng = np.random.default_rng(seed)
    shade = cv2.resize(rng.uniform(0.3, 1.2, (h // 40, w // 40)), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.array([170, 70, 90]) * shade[..., None] + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def _draw_marker(frame: np.ndarray, centre: tuple[float, float], trail_to: tuple[int, int] | None = None) -> np.ndarray:
    """The deployed system's marker as seen in the deployment video: a semi-transparent green disk
    (radius 42 px) with a bright green centre dot and a thin bright trail to an earlier position."""
    s = 4  # sub-pixel centre via drawing shift
    c = (round(centre[0] * 2 ** s), round(centre[1] * 2 ** s))
    disk = np.zeros(frame.shape[:2], np.uint8)
    cv2.circle(disk, c, 42 << s, 255, -1, cv2.LINE_AA, shift=s)
    alpha = 0.45 * disk[..., None] / 255.0
    out = (frame * (1 - alpha) + np.array([60, 200, 40]) * alpha).astype(np.uint8)
    if trail_to is not None:
        cv2.line(out, (c[0] >> s, c[1] >> s), trail_to, (40, 230, 40), 3)
    cv2.circle(out, c, 9 << s, (30, 235, 50), -1, cv2.LINE_AA, shift=s)
    return out


def test_marker_centre_of_drawn_marker():
    """The disk's centre is found to a pixel although a trail leaves it, the label box is green and
    tissue under the disk is dark; a large green patch without the centre dot (a compression
    fringe) or a bare trail is no marker."""
    frame = _tissue(720, 830)
    frame[0:60, 0:200] = (40, 220, 40)  # the green on-screen label before the alarm
    x, y = extra_real.marker_centre(_draw_marker(frame, (411.3, 302.6), trail_to=(560, 420)))
    assert abs(x - 411.3) < 1.0 and abs(y - 302.6) < 1.0
    assert extra_real.marker_centre(frame) is None
    fringe = frame.copy()
    fringe[300:380, 200:290] = (120, 190, 130)  # green excess 60 over 80x90 px, no bright dot
    assert extra_real.marker_centre(fringe) is None
    trail = frame.copy()
    cv2.line(trail, (100, 500), (400, 650), (40, 230, 40), 3)
    assert extra_real.marker_centre(trail) is None


def test_marker_labels_in_segments():
    """Dense labels on every marked frame, in cropped-frame pixels; sparse labels at each segment's
    first frame and every 30th after it; unmarked frames split segments."""
    base = _tissue(240, 260, seed=1)
    frames = [base, _draw_marker(base, (100, 120)), _draw_marker(base, (104, 118)), base]
    frames += [_draw_marker(base, (140 - k, 110)) for k in range(32)]
    dense, sparse = extra_real.marker_labels(frames, offset=16)
    assert sorted(map(int, dense)) == [1, 2] + list(range(4, 36))
    assert np.allclose(dense["1"][0], (84, 104), atol=1.0) and np.allclose(dense["35"][0], (93, 94), atol=1.0)
    assert sorted(map(int, sparse)) == [1, 4, 34] and sparse["4"] == dense["4"]
    assert extra_real.segments(dense) == [[1, 2], [4, 35]]
