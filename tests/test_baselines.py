"""Baselines and the colour/flow helpers on frames whose truth is known."""
from __future__ import annotations

import numpy as np
import pytest

from bleedorigin.models import registry
from bleedorigin.vision.color import red_area_ratio, red_mask, rgb_to_hsv
from bleedorigin.vision.flow import chain_flows, sample_flow

W, H = 512, 384


def _texture(seed: int = 0, pad: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 60, (H + 2 * pad, W + 2 * pad)).astype(np.float32)
    import cv2
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0)
    tex = np.stack([185 + noise, 125 + noise, 135 + noise], -1)
    return tex.clip(0, 255).astype(np.uint8)


def _window(tex: np.ndarray, dx: int, dy: int, pad: int = 64) -> np.ndarray:
    """View whose content is the texture moved by (dx, dy)."""
    return np.ascontiguousarray(tex[pad - dy:pad - dy + H, pad - dx:pad - dx + W])


def test_red_mask_separates_blood_from_tissue_glare_and_dark():
    colours = {"blood": (120, 12, 18), "bright blood": (200, 30, 35), "pink mucosa": (215, 140, 150),
               "white submucosa": (235, 225, 220), "glare": (255, 255, 255), "dark": (8, 2, 2),
               "blue dye": (60, 110, 170)}
    img = np.array([list(colours.values())], np.uint8)
    m = dict(zip(colours, red_mask(img)[0]))
    assert m["blood"] > 0.5 and m["bright blood"] > 0.5
    for name in ("pink mucosa", "white submucosa", "glare", "dark", "blue dye"):
        assert m[name] < 0.1, name
    assert red_mask(img).dtype == np.float32


def test_rgb_to_hsv_ranges():
    hsv = rgb_to_hsv(np.array([[[255, 0, 0], [0, 0, 255], [128, 128, 128]]], np.uint8))[0]
    assert hsv[0, 0] == pytest.approx(0, abs=1) and hsv[0, 1] == pytest.approx(1)
    assert hsv[1, 0] == pytest.approx(240, abs=2)
    assert hsv[2, 1] == pytest.approx(0) and hsv[2, 2] == pytest.approx(128 / 255, abs=1e-3)


def test_red_area_ratio():
    img = np.full((10, 10, 3), (215, 140, 150), np.uint8)
    img[:5, :2] = (120, 12, 18)
    assert red_area_ratio(img) == pytest.approx(0.1)


def test_sample_and_chain_flow():
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = np.arange(30)[None, :] * 0.1  # dx grows with x
    assert sample_flow(flow, (10.5, 3))[0] == pytest.approx(1.05)
    path = chain_flows([np.full((20, 30, 2), 2.0, np.float32)] * 20, (5.0, 5.0))
    assert path[0].tolist() == [7.0, 7.0]
    assert np.isnan(path[-1]).all()  # it left the 30x20 field


def _bleed_clip(onset: int | None, n: int = 90, centre=(300, 200)) -> list[np.ndarray]:
    tex = _texture(1)
    yy, xx = np.mgrid[:H, :W]
    frames = []
    for t in range(n):
        img = _window(tex, 0, 0).copy()
        if onset is not None and t >= onset:
            r = 6 + 2.0 * (t - onset)
            img[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= r * r] = (120, 12, 18)
        frames.append(img)
    return frames


def test_hsv_onset_finds_growing_blood_and_stays_quiet_without():
    det = registry.create("onset_hsv")
    found = [s.onset_frame for s in map(det.step, _bleed_clip(60)) if s.onset_frame is not None]
    assert len(found) == 1 and abs(found[0] - 60) <= 2
    det.reset()
    assert all(det.step(f).onset_frame is None for f in _bleed_clip(None))


def test_redmask_source_points_at_the_pool_centre():
    frame = _bleed_clip(60, n=75)[-1]
    p = registry.create("source_redmask").locate(frame)
    assert np.hypot(p.x - 300, p.y - 200) < 3 and p.confidence > 0.5
    empty = registry.create("source_redmask").locate(_bleed_clip(None, n=1)[0])
    assert empty.confidence == 0.0


@pytest.mark.parametrize("name", ["track_lk", "track_dis", "track_scene"])
def test_trackers_follow_known_translation(name):
    tex = _texture(2)
    tracker = registry.create(name)
    start = np.array([200.0, 150.0])
    tracker.start(_window(tex, 0, 0), tuple(start))
    for t in range(1, 31):
        tp = tracker.step(_window(tex, 2 * t // 3, -t // 2))  # ~0.67 px/frame right, 0.5 up
    truth = start + [2 * 30 // 3, -(30 // 2)]
    assert tp.frame == 30 and np.hypot(tp.x - truth[0], tp.y - truth[1]) < 1.0


def test_lk_forward_backward_check_flags_an_occluded_point():
    tex = _texture(3)
    tracker = registry.create("track_lk")
    tracker.start(_window(tex, 0, 0), (256.0, 192.0))
    covered = _window(tex, 3, 0).copy()
    covered[150:240, 210:310] = (120, 12, 18)  # blood pool over the point
    tp = tracker.step(covered)
    assert not tp.visible and tp.confidence == 0.0
    assert (tp.x, tp.y) == pytest.approx((256.0, 192.0))  # holds its last position


def test_field_of_view_excludes_the_black_field_stop_but_not_dark_blood():
    import cv2

    from bleedorigin.vision.color import field_of_view
    img = np.zeros((H, W, 3), np.uint8)
    octagon = np.array([[60, 0], [452, 0], [511, 60], [511, 323], [452, 383], [60, 383], [0, 323], [0, 60]])
    cv2.fillPoly(img, [octagon], (200, 130, 140))
    img[150:230, 200:300] = (10, 1, 2)  # a very dark clot inside the view
    fov = field_of_view(img)
    assert fov[190, 250] and fov[192, 256]  # the clot and the centre are inside
    assert not fov[5, 5] and not fov[378, 506]  # black corners are outside
    assert 0.75 < fov.mean() < 0.95
    assert field_of_view(np.zeros((48, 64, 3), np.uint8)).all()  # nothing lit: exclude nothing


def test_redmask_source_never_lands_on_the_field_stop():
    img = np.zeros((H, W, 3), np.uint8)
    img[:, 40:] = (200, 130, 140)
    img[:, :40] = (0, 0, 0)
    img[100:200, 40:60] = (120, 12, 18)  # blood against the left edge of the view
    p = registry.create("source_redmask").locate(img)
    assert p.x >= 40
