"""The multi-reference flow tracker on known motion: a textured plane moved by a known homography."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bleedorigin.models.track.flow import MultiFlowTracker
from bleedorigin.models.loading import load_stage

SIZE = (512, 384)


def _texture(seed: int = 0) -> np.ndarray:
    """Pinkish mucosa with structure at several scales, as tissue has (folds, vessels, grain)."""
    rng = np.random.default_rng(seed)
    shape = (SIZE[1] * 2, SIZE[0] * 2)
    img = np.full(shape, 0.75, np.float32)
    for sigma, amp in ((24, 0.15), (6, 0.1), (1.5, 0.05)):
        layer = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
        img += amp * (layer - layer.mean()) / layer.std()
    tissue = np.array([200, 140, 120], np.float32)
    return np.clip(img[..., None] * tissue, 0, 255).astype(np.uint8)


def _homography(t: int, shift: tuple[float, float] = (1.5, 0.8)) -> np.ndarray:
    """Plane (texture pixels) -> frame t: a slow pan, rotation and zoom about the view centre."""
    angle, scale = np.deg2rad(0.15 * t), 1.0 + 0.002 * t
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    centre = np.array([SIZE[0] / 2, SIZE[1] / 2])
    offset = np.array([SIZE[0] / 2, SIZE[1] / 2])  # texture pixel shown at the frame centre at t = 0
    rot = np.array([[c, -s], [s, c]])
    h = np.eye(3)
    h[:2, :2] = rot
    h[:2, 2] = centre - rot @ (offset + [0, 0]) + np.array(shift) * t
    h[2, :2] = [2e-6 * t, -1e-6 * t]  # a little perspective
    return h


def _apply(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = h @ np.array([xy[0], xy[1], 1.0])
    return p[:2] / p[2]


def _frames(n: int, shift: tuple[float, float] = (1.5, 0.8), pool: tuple[int, int] | None = None,
            pool_at: np.ndarray | None = None) -> list[np.ndarray]:
    """`pool` = (first, last) frames a dark-red pool of blood covers the plane point `pool_at`."""
    tex = _texture()
    out = []
    for t in range(n):
        h = _homography(t, shift)
        img = cv2.warpPerspective(tex, h, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if pool is not None and pool[0] <= t <= pool[1]:
            x, y = _apply(h, pool_at)
            rng = np.random.default_rng(t)
            blob = np.zeros(img.shape[:2], np.uint8)
            cv2.ellipse(blob, (int(x), int(y)), (34, 28), 20.0 * t, 0, 360, 255, -1)
            red = np.clip(np.array([120, 10, 15]) + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            img = np.where(blob[..., None] > 0, red, img)
        out.append(img)
    return out


def _truth(plane_xy: np.ndarray, n: int, shift: tuple[float, float] = (1.5, 0.8)) -> np.ndarray:
    return np.array([_apply(_homography(t, shift), plane_xy) for t in range(n)])


@pytest.mark.parametrize("name", ["track_mft", "track_mft_visible"])
def test_point_returns_after_a_pool_covers_it_for_20_frames(name):
    plane = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    n, pool = 64, (20, 39)
    frames = _frames(n, pool=pool, pool_at=plane)
    truth = _truth(plane, n)
    tracker = load_stage("track", name, "cpu")
    tracker.start(frames[0], tuple(truth[0]))
    out = [tracker.step(f) for f in frames[1:]]
    err = np.array([np.hypot(p.x - truth[p.frame, 0], p.y - truth[p.frame, 1]) for p in out])
    hidden = [p.visible for p in out if pool[0] <= p.frame <= pool[1]]
    assert not any(hidden[2:]), "a point under the pool is reported visible"
    assert err[pool[1] + 5:].max() < 5.0, f"did not come back: errors after the pool {err[pool[1] + 5:].round(1)}"
    assert all(p.visible for p in out[pool[1] + 5:])
    assert err[:pool[0] - 1].max() < 2.0


@pytest.mark.parametrize("name", ["track_mft", "track_mft_visible"])
def test_point_leaving_the_view_is_not_visible(name):
    shift = (6.0, 0.0)  # the plane pans right: a point near the right edge leaves the view
    n = 30
    frames = _frames(n, shift=shift)
    start = np.array([SIZE[0] - 40.0, SIZE[1] / 2])
    plane = np.linalg.solve(_homography(0, shift), np.array([*start, 1.0]))
    truth = _truth(plane[:2] / plane[2], n, shift)
    tracker = load_stage("track", name, "cpu")
    tracker.start(frames[0], tuple(start))
    out = [tracker.step(f) for f in frames[1:]]
    assert all(p.visible for p in out if truth[p.frame, 0] < SIZE[0] - 12)
    # out of view for the next 12 frames (the point leaves after ~6 frames at 6 px a frame)
    gone = [p for p in out if truth[p.frame, 0] > SIZE[0] + 10 and p.frame < 20]
    assert len(gone) >= 10 and not any(p.visible for p in gone)


def test_several_points_track_as_each_alone_through_the_registry():
    frames = _frames(12)
    points = [(200.0, 150.0), (330.0, 240.0)]
    together = load_stage("track", "track_mft_own", "cpu")
    together.start_many(frames[0], points)
    both = [together.step_many(f) for f in frames[1:]]
    for k, p in enumerate(points):
        alone = MultiFlowTracker()  # the class defaults: the shipped track_mft_own
        alone.start(frames[0], p)
        single = [alone.step(f) for f in frames[1:]]
        assert np.allclose([(s.x, s.y) for s in single], [(b[k].x, b[k].y) for b in both], atol=1e-6)
    assert both[-1][0].frame == 11


def test_bad_deltas_are_rejected():
    from bleedorigin.errors import InputError
    with pytest.raises(InputError):
        MultiFlowTracker(deltas=(0, 2))


def _drifting_pool_frames(n: int, plane_xy: np.ndarray, pool: tuple[int, int],
                          drift: tuple[float, float] = (-3.0, 2.0)) -> list[np.ndarray]:
    """The panning plane with a large textured pool of blood that covers `plane_xy` for the
    frames `pool` while it drifts on its own, against the plane's motion, by `drift` px a frame."""
    frames, truth = _frames(n), _truth(plane_xy, n)
    rng = np.random.default_rng(5)
    grain = cv2.GaussianBlur(rng.random((SIZE[1], SIZE[0])).astype(np.float32), (0, 0), 3)
    grain = (grain - grain.mean()) / grain.std()
    relative = np.array(drift) - (truth[pool[1]] - truth[pool[0]]) / (pool[1] - pool[0])
    centre0 = truth[pool[0]] - relative * (pool[1] - pool[0]) / 2  # the point crosses the pool's middle
    for t in range(pool[0], pool[1] + 1):
        shift = np.array(drift) * (t - pool[0])
        centre = centre0 + shift
        moved = cv2.warpAffine(grain, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), SIZE,
                               borderMode=cv2.BORDER_REFLECT)
        red = np.clip(np.array([130, 12, 18]) + moved[..., None] * np.array([25, 4, 5]), 0, 255).astype(np.uint8)
        blob = np.zeros((SIZE[1], SIZE[0]), np.uint8)
        cv2.ellipse(blob, (int(centre[0]), int(centre[1])), (120, 100), 0.0, 0, 360, 255, -1)
        frames[t] = np.where(blob[..., None] > 0, red, frames[t])
    return frames


@pytest.mark.parametrize("name, bound", [("track_mft_scene", 5.0), ("track_mft_visible", 10.0)])
def test_hidden_point_is_carried_past_a_drifting_pool(name, bound):
    """Under a pool larger than the window drifting against the tissue, the median flow around the
    point follows the pool (track_mft is tens of px off while the point is hidden on this clip);
    the scene's similarity, and the similarity of the view's visible tissue (too little is left
    around the point), follow the tissue."""
    plane = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    n, pool = 50, (20, 39)
    out, err = _track(name, _drifting_pool_frames(n, plane, pool), _truth(plane, n))
    assert not any(p.visible for p in out if pool[0] + 2 <= p.frame <= pool[1]), "hidden point reported visible"
    assert err.max() < bound and err[pool[1] + 1:].max() < 5.0, f"errors {err.round(1)}"
    assert all(p.visible for p in out if p.frame > pool[1] + 2)


def _track(name: str, frames: list[np.ndarray], truth: np.ndarray):
    """Track truth[0] through `frames` with the registered tracker `name`: the steps and their errors."""
    tracker = load_stage("track", name, "cpu")
    tracker.start(frames[0], tuple(truth[0]))
    out = [tracker.step(f) for f in frames[1:]]
    return out, np.array([np.hypot(p.x - truth[p.frame, 0], p.y - truth[p.frame, 1]) for p in out])


def _spreading_pool_frames(n: int, plane_xy: np.ndarray, pool: tuple[int, int], offset=(45.0, 30.0),
                           drift=(-2.5, 1.5)) -> list[np.ndarray]:
    """The panning plane with a pool of blood beside `plane_xy` that, for the frames `pool`,
    grows over it (radius 70 -> 184 px), its textured surface spreading out from its centre
    while the centre drifts against the plane by `drift` px a frame."""
    frames, truth = _frames(n), _truth(plane_xy, n)
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.random((SIZE[1], SIZE[0])).astype(np.float32), (0, 0), 3)
    grain = (grain - grain.mean()) / grain.std()
    for t in range(pool[0], pool[1] + 1):
        k = t - pool[0]
        centre = truth[t] + np.array(offset) + np.array(drift) * k
        radius = 70.0 + 6.0 * k
        scale = radius / 70.0
        spread = np.float32([[scale, 0, centre[0] - scale * SIZE[0] / 2], [0, scale, centre[1] - scale * SIZE[1] / 2]])
        moved = cv2.warpAffine(grain, spread, SIZE, borderMode=cv2.BORDER_REFLECT)
        red = np.clip(np.array([130, 12, 18]) + moved[..., None] * np.array([25, 4, 5]), 0, 255).astype(np.uint8)
        blob = np.zeros((SIZE[1], SIZE[0]), np.uint8)
        cv2.circle(blob, (int(centre[0]), int(centre[1])), int(radius), 255, -1)
        frames[t] = np.where(blob[..., None] > 0, red, frames[t])
    return frames


def test_visible_tissue_carries_a_hidden_point_past_a_spreading_pool():
    """A pool spreads over the point for 20 frames: its moving surface fills the window around the
    point, so the median flow there drags track_mft tens of px off; track_mft_visible fits the
    motion to the tissue left visible around the point and stays within a few px, then takes
    the point up again when the pool is gone."""
    plane = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    n, pool = 50, (20, 39)
    frames, truth = _spreading_pool_frames(n, plane, pool), _truth(plane, n)
    errors = {}
    for name in ("track_mft", "track_mft_visible"):
        out, errors[name] = _track(name, frames, truth)
        assert not any(p.visible for p in out if pool[0] + 2 <= p.frame <= pool[1]), f"{name}: hidden point visible"
        assert all(p.visible for p in out if p.frame > pool[1] + 2)
    hidden = slice(pool[0] - 1, pool[1])  # out[i] is frame i + 1
    assert errors["track_mft"][hidden].max() > 20.0, "the surround median is not dragged: the test shows nothing"
    assert errors["track_mft_visible"][hidden].max() < 10.0, f"errors {errors['track_mft_visible'].round(1)}"
    assert errors["track_mft_visible"][pool[1] + 1:].max() < 5.0, "did not come back within 5 px"


def test_unknown_occluded_motion_is_rejected():
    from bleedorigin.errors import InputError
    with pytest.raises(InputError):
        MultiFlowTracker(occluded_motion="pool")


def test_flow_ranges_bound_every_window_median():
    """The surroundings' median is skipped where the flow ranges of the window show it cannot
    take the point out of view: those ranges must hold every flow of the window."""
    from bleedorigin.models.track.flow import SURROUND, _window_flow_range

    rng = np.random.default_rng(1)
    flow = cv2.GaussianBlur(rng.normal(0, 3, (192, 256, 2)).astype(np.float32), (0, 0), 4) * 8
    xy = rng.uniform(-3, 259, (300, 2))
    lo, hi = _window_flow_range(flow, xy)
    for (x, y), low, high in zip(np.clip(np.round(xy).astype(int), 0, [255, 191]), lo, hi):
        window = flow[max(0, y - SURROUND):y + SURROUND + 1, max(0, x - SURROUND):x + SURROUND + 1].reshape(-1, 2)
        assert (window.min(0) >= low).all() and (window.max(0) <= high).all()
    assert (hi - lo).mean() < (flow.reshape(-1, 2).max(0) - flow.reshape(-1, 2).min(0)).mean()  # tighter than the frame's


def test_flow_ranges_of_a_few_points_are_those_of_many():
    """Up to FEW_RANGES points the ranges are read window by window: the same bounds as from the
    whole flow's filtered blocks, also where the frame is no multiple of the block."""
    from bleedorigin.models.track.flow import FEW_RANGES, _window_flow_range

    rng = np.random.default_rng(2)
    flow = cv2.GaussianBlur(rng.normal(0, 3, (190, 250, 2)).astype(np.float32), (0, 0), 4) * 8
    xy = rng.uniform(-3, 253, (60, 2)) * [1, 190 / 250]
    lo, hi = _window_flow_range(flow, xy)
    for j in range(0, len(xy), FEW_RANGES):
        few_lo, few_hi = _window_flow_range(flow, xy[j:j + FEW_RANGES])
        np.testing.assert_array_equal(few_lo, lo[j:j + FEW_RANGES])
        np.testing.assert_array_equal(few_hi, hi[j:j + FEW_RANGES])


def test_flows_on_two_threads_are_those_of_one():
    from bleedorigin.vision.flow import dis_flow, dis_flows

    a, b = (cv2.cvtColor(f[::2, ::2].copy(), cv2.COLOR_RGB2GRAY) for f in _frames(4)[::3])
    pairs = [(a, b), (b, a), (a, a), (b, b)]
    alone = [dis_flow("fast").calc(x, y, None) for x, y in pairs]
    for one, two in zip(alone, dis_flows(pairs, "fast", workers=2)):
        np.testing.assert_array_equal(one, two)


def test_point_hidden_longer_than_the_references_reach_is_found_again():
    """A pool covers the point for 42 frames, longer than the 32-frame references reach: every
    candidate then comes from a hidden frame (or from the start frame, 60 frames of pan and zoom
    away), so without re-detection the point stays hidden, carried; with it, its kept appearances
    find it again once the pool has gone."""
    plane = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    n, pool = 76, (20, 61)
    frames, truth = _frames(n, pool=pool, pool_at=plane), _truth(plane, n)
    out, _ = _track("track_mft_visible", frames, truth)
    assert not any(p.visible for p in out[pool[1] + 2:]), "found again without re-detection: the test shows nothing"
    out, err = _track("track_mft_redetect", frames, truth)
    assert not any(p.visible for p in out if pool[0] + 2 <= p.frame <= pool[1]), "a point under the pool is reported visible"
    after = [p for p in out if p.frame > pool[1] + 2]
    assert all(p.visible for p in after), "not found again"
    assert err[pool[1] + 2:].max() < 3.0, f"errors after the pool {err[pool[1]:].round(1)}"


@pytest.mark.parametrize("pool_frames", [_drifting_pool_frames, _spreading_pool_frames])
def test_hidden_point_at_the_mean_of_its_carried_candidates_does_not_jump(pool_frames):
    """While the pool hides the point, each reference carries it by its own fit of the visible
    tissue; the lowest-variance candidate changes from frame to frame and the point jumps between
    them (5-6 px here). Their inverse-variance mean (`hidden_estimate="mean"`) jumps less and
    stays closer to the truth."""
    plane = np.array([SIZE[0] / 2 + 30.0, SIZE[1] / 2 - 20.0])
    n, pool = 50, (20, 39)
    frames, truth = pool_frames(n, plane, pool), _truth(plane, n)
    hidden = slice(pool[0] - 1, pool[1])  # out[i] is frame i + 1
    jumps, errors = {}, {}
    for name in ("track_mft_own", "track_mft_own_mean"):
        out, errors[name] = _track(name, frames, truth)
        off = np.array([[p.x, p.y] for p in out]) - truth[1:]
        jumps[name] = np.hypot(*np.diff(off[hidden], axis=0).T).max()
        assert errors[name][pool[1] + 1:].max() < 1.0, f"{name} did not come back"
    best, mean = "track_mft_own", "track_mft_own_mean"
    assert jumps[best] > 4.5, "the best candidate does not jump: the test shows nothing"
    assert jumps[mean] < 0.75 * jumps[best], f"jumps {jumps}"
    assert errors[mean][hidden].max() < 0.8 * errors[best][hidden].max(), f"errors {errors[mean].round(1)}"
    assert errors[mean][hidden].mean() < errors[best][hidden].mean()


def test_unknown_hidden_estimate_is_rejected():
    from bleedorigin.errors import InputError
    with pytest.raises(InputError):
        MultiFlowTracker(hidden_estimate="median")
