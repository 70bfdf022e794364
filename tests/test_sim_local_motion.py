"""BleedSim local motion: a known pull moves the tissue by its shift, truth and blood move with the
pixels, instruments drag the tissue they hold, and the option changes nothing else."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_sim import _green_centroid

from bleedorigin.sim.generator import ClipSimulator, generate_clip
from bleedorigin.sim.local_motion import LocalMotion, Pull
from bleedorigin.sim.writer import load_gt

SMALL = (256, 192)


def _paint(sim: ClipSimulator, pts: np.ndarray, r: int = 6) -> None:
    for p in pts:
        cv2.circle(sim.tissue.texture, (int(round(p[0] * 16)), int(round(p[1] * 16))), r * 16, (0, 255, 0), -1,
                   cv2.LINE_AA, 4)


def test_a_known_pull_moves_the_tissue_and_its_label_by_the_shift() -> None:
    """One constant Gaussian pull of shift A at a grid node c: the tissue the camera alone shows
    at c - A is shown at c (in the truth and in the pixels); tissue far away does not move."""
    n, t = 8, 5
    off = ClipSimulator("negative", 4, size=SMALL, num_frames=n, scenario="none", num_tracks=0)
    on = ClipSimulator("negative", 4, size=SMALL, num_frames=n, scenario="none", num_tracks=0)
    c = on.warp.nodes[6, 8, :2].copy()
    shift = np.array([9.0, -6.0])
    on.local = LocalMotion([Pull(centre=tuple(c), shift=tuple(shift), sigma=40.0)], n)
    pulled = off._view_to_tex(t, (c - shift)[None])[0]
    far = off._view_to_tex(t, np.array([[c[0] - 120.0, c[1] + 60.0]]))[0]
    for sim in (off, on):
        sim.track_tex = np.stack([pulled, far])
        _paint(sim, sim.track_tex[:1])
    a, b = off.run(), on.run()
    assert np.abs(a.tracks_xy[t, 0] - (c - shift)).max() < 0.05
    assert np.abs(b.tracks_xy[t, 0] - c).max() < 0.05
    assert np.abs(b.tracks_xy[t, 1] - a.tracks_xy[t, 1]).max() < 0.05  # 134 px: 3.4 sigma away
    for clip, where in ((a, c - shift), (b, c)):
        seen = _green_centroid(clip.frames[t], where)
        assert seen is not None and np.linalg.norm(seen - where) < 0.5


@pytest.mark.parametrize("seed", [1, 7])
def test_labels_stay_on_their_tissue_under_pulls_and_grasps(seed: int) -> None:
    """Markers painted at the track points land on their truth in every frame, while the local
    motion moves them well away from where the camera alone would have put them."""
    kw = dict(kind="negative", seed=seed, size=SMALL, num_frames=60, scenario="instrument_interference",
              num_tracks=24)
    sim = ClipSimulator(**kw, local_motion=True)
    pts = sim.track_tex
    isolated = np.array([np.sort(np.linalg.norm(pts - p, axis=1))[1] > 30 for p in pts])
    _paint(sim, pts)
    clip = sim.run()
    cam = ClipSimulator(**kw).run()
    # same frame-0 points (away from the border's half-cell band); later the gap is the local motion alone
    away = ((cam.tracks_xy[0] > 8) & (cam.tracks_xy[0] < np.array(SMALL) - 8)).all(1)
    assert np.abs(clip.tracks_xy[0] - cam.tracks_xy[0])[away].max() < 0.05
    assert np.linalg.norm(clip.tracks_xy - cam.tracks_xy, axis=-1).max() > 4.0
    inner = cv2.erode(sim.optics.fov.astype(np.uint8), np.ones((31, 31), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    errors, moved = [], []
    for t in range(0, clip.num_frames, 2):
        # markers partly under the instrument have a biased centroid
        near = [q.astype(np.float32).reshape(-1, 1, 2) for q in sim.instrument.polygons(t)]
        for k in np.flatnonzero(isolated & clip.tracks_visible[t]):
            xy = clip.tracks_xy[t, k]
            x, y = np.round(xy).astype(int)
            if not inner[y, x] or any(cv2.pointPolygonTest(q, (float(xy[0]), float(xy[1])), True) > -9
                                      for q in near):
                continue
            seen = _green_centroid(clip.frames[t], xy)
            if seen is not None:
                errors.append(np.linalg.norm(seen - xy))
                moved.append(np.linalg.norm(xy - cam.tracks_xy[t, k]))
    assert len(errors) > 30 and np.sum(np.array(moved) > 2.0) > 10
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5


def test_grasped_tissue_follows_the_instrument_tip() -> None:
    """While the instrument is extended, the truth point nearest its tip moves with the tip."""
    sim = ClipSimulator("negative", 3, size=SMALL, num_frames=50, scenario="instrument_interference",
                        num_tracks=0, local_motion=True)
    sim.local.pulls = []  # the grasp alone
    held = [t for t in range(50) if sim.instrument.reach(t) >= 0.9]
    t0, t1 = held[0], held[-1]
    tip0, tip1 = sim.instrument.tip(t0), sim.instrument.tip(t1)
    assert np.linalg.norm(tip1 - tip0) > 3  # the tip moved while holding
    sim.track_tex = sim._view_to_tex(t0, tip0[None])
    clip = sim.run()
    moved = clip.tracks_xy[t1, 0] - clip.tracks_xy[t0, 0]
    cam = ClipSimulator("negative", 3, size=SMALL, num_frames=50, scenario="instrument_interference", num_tracks=0)
    camera_part = cam.warp.to_view(cam._map(t1), cam.path[t1], sim.track_tex) - \
        cam.warp.to_view(cam._map(t0), cam.path[t0], sim.track_tex)
    # what the camera does not explain is the tip's motion (up to the elastic slip limit)
    local = moved - camera_part[0]
    want = tip1 - tip0
    want = want * min(1.0, sim.local.grasp.max_shift / np.linalg.norm(want))
    assert np.linalg.norm(local - want) < 0.25 * np.linalg.norm(want) + 1.0


def test_blood_moves_with_the_tissue_it_lies_on() -> None:
    """Tissue points around the source are under blood in the same frames with and without a pull
    on the source: the blood layer is carried by the same displaced map as the tissue."""
    kw = dict(kind="track_short", seed=11, size=SMALL, num_frames=20, scenario="clear_view", num_tracks=0)
    on, off = ClipSimulator(**kw), ClipSimulator(**kw)
    src = off.warp.to_view(off._map(0), off.path[0], off.source_tex[None])[0]
    on.local = LocalMotion([Pull(centre=tuple(src), shift=(8.0, 5.0), sigma=40.0)], 20)
    grid = np.stack(np.meshgrid(np.linspace(-50, 50, 21), np.linspace(-50, 50, 21)), -1).reshape(-1, 2)
    on.track_tex = off.track_tex = off.source_tex + grid
    a, b = on.run(), off.run()
    gap = np.linalg.norm(a.tracks_xy - b.tracks_xy, axis=-1)
    agree, wet = [], 0
    for t in range(a.num_frames):
        ia, ib = np.round(a.tracks_xy[t]).astype(int), np.round(b.tracks_xy[t]).astype(int)
        ok = ((ia >= 0) & (ia < SMALL) & (ib >= 0) & (ib < SMALL)).all(1) & (gap[t] > 3.0)
        ma, mb = a.blood_mask[t][ia[ok, 1], ia[ok, 0]], b.blood_mask[t][ib[ok, 1], ib[ok, 0]]
        agree += list(ma == mb)
        wet += int(ma.sum())
    # the same tissue is wet although it sits more than 3 px elsewhere in the frame
    assert wet > 200 and len(agree) - wet > 200 and np.mean(agree) > 0.97


def test_local_motion_changes_only_the_tissue_geometry_and_is_deterministic(tmp_path) -> None:
    from test_cli import cli
    kw = dict(kind="track_short", seed=2, size=(128, 96), num_frames=12, num_tracks=8)
    a, b, cam = generate_clip(**kw, local_motion=True), generate_clip(**kw, local_motion=True), generate_clip(**kw)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.tracks_xy, b.tracks_xy)
    assert (a.scenario, a.site, a.onset_frame) == (cam.scenario, cam.site, cam.onset_frame)
    assert not np.array_equal(a.frames, cam.frames)
    # the hook with an empty field renders what the camera alone renders
    sim = ClipSimulator(kw["kind"], kw["seed"], kw["size"], kw["num_frames"], num_tracks=8)
    sim.local = LocalMotion([], kw["num_frames"])
    empty = sim.run()
    assert np.array_equal(empty.frames, cam.frames) and np.array_equal(empty.tracks_xy, cam.tracks_xy)
    # the CLI option reaches the generator
    assert cli("-q", "sim", "--out", tmp_path, "--n", 1, "--seed", 0, "--kind", "track_short",
               "--width", 128, "--height", 96, "--local-motion") == 0
    gt = load_gt(next(tmp_path.glob("clips/*/gt.npz")))
    want = generate_clip("track_short", 0, size=(128, 96), local_motion=True)
    assert np.allclose(gt["tracks_xy"], want.tracks_xy)
