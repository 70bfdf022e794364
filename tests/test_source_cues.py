"""Source cues find a source whose position is known (synthetic frames at the working size)."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.models.source.cues import (CueConfig, outflow_map, persistent_stump_map, refill_map, streak_map,
                                            stump_map)

W, H = 192, 144
FOV = np.ones((H, W), bool)


def mucosa(seed: int = 0) -> np.ndarray:
    """Pale pink tissue with smooth texture (no red of its own)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 3)
    tex = 12 * tex / tex.std()
    base = np.array([215, 160, 150], np.float32)
    return np.clip(base + tex[..., None], 0, 255).astype(np.uint8)


def peak(m: np.ndarray) -> np.ndarray:
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return np.array([x, y], float)


def test_streaks_converge_on_their_common_point():
    src = np.array([70.0, 60.0])
    img = mucosa()
    for ang in (10, 40, 75, 110):  # a fan of thin streaks running off one point, away from the middle
        d = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
        a, b = src + 8 * d, src + 70 * d
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), (170, 20, 25), 3)
    m = streak_map(img, FOV)
    assert m is not None
    assert np.linalg.norm(peak(m) - src) < 8


def test_outflow_points_back_to_where_blood_streams_from():
    src = np.array([60.0, 80.0])
    rng = np.random.default_rng(1)
    ang = rng.uniform(0, 2 * np.pi, 80)
    r0 = rng.uniform(6, 40, 80)
    frames = []
    for t in range(7):  # red droplets moving radially out of `src` at 1.5 px per frame over still tissue
        img = mucosa(2)
        r = r0 + 1.5 * t
        for a, rr in zip(ang, r):
            c = src + rr * np.array([np.cos(a), np.sin(a)])
            cv2.circle(img, (int(round(c[0])), int(round(c[1]))), 3, (175, 25, 30), -1)
        frames.append(img)
    m = outflow_map(frames[-1], frames[:-1], FOV)
    assert m is not None
    assert np.linalg.norm(peak(m) - src) < 12


def test_refill_finds_the_first_place_red_after_a_flush():
    src = np.array([140.0, 40.0])
    frames = []
    for t in range(10):  # a pool covering the middle, flushed at frame 4, refilling from `src`
        img = mucosa(3)
        if t < 4:
            cv2.circle(img, (96, 72), 45, (170, 20, 25), -1)
        else:
            cv2.circle(img, tuple(int(v) for v in src), 4 + 4 * (t - 4), (170, 20, 25), -1)
        frames.append(img)
    m = refill_map(frames[-1], frames[:-1], FOV)
    assert m is not None
    assert np.linalg.norm(peak(m) - src) < 8


def test_stump_is_the_dark_spot_at_the_edge_of_blood():
    img = mucosa(4)
    cv2.circle(img, (100, 70), 22, (170, 25, 30), -1)      # fresh blood
    cv2.circle(img, (118, 64), 3, (60, 15, 15), -1)        # a vessel stump at its edge
    cv2.circle(img, (30, 30), 3, (60, 15, 15), -1)         # a dark spot far from blood
    m = stump_map(img, FOV)
    assert m is not None
    assert np.linalg.norm(peak(m) - np.array([118, 64])) < 5


def test_persistent_stump_wins_over_a_speck_of_the_current_frame():
    """A stump at the pool's edge stays on its tissue point while the camera pans; a darker speck
    appears in the current frame only. The frame alone takes the speck, the aligned history the stump."""
    rng = np.random.default_rng(8)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (H + 40, W + 40)).astype(np.float32), (0, 0), 3)
    scene = np.clip(np.array([215, 160, 150], np.float32) + (12 * tex / tex.std())[..., None], 0, 255).astype(np.uint8)
    cv2.circle(scene, (120, 90), 22, (170, 25, 30), -1)   # blood (scene pixels)
    cv2.circle(scene, (138, 84), 3, (80, 20, 20), -1)     # the stump at its edge
    frames = [scene[20 - 2 * t // 2:20 - 2 * t // 2 + H, 10 + 2 * t:10 + 2 * t + W].copy() for t in range(8)]
    now = frames[-1]
    ox, oy = 10 + 14, 20 - 7                              # the current frame's origin in the scene
    speck = (100 - ox, 105 - oy)                          # at the pool's other edge, darker than the stump
    cv2.circle(now, speck, 3, (40, 10, 10), -1)
    stump = np.array([138 - ox, 84 - oy], float)
    alone = stump_map(now, FOV)
    assert alone is not None and np.linalg.norm(peak(alone) - np.array(speck)) < 5
    m = persistent_stump_map(now, frames[:-1], FOV, CueConfig(stump_history=8))
    assert m is not None and np.linalg.norm(peak(m) - stump) < 5
    same = persistent_stump_map(now, [], FOV, CueConfig(stump_history=8))  # no history: the frame's map
    assert same is not None and np.linalg.norm(peak(same) - np.array(speck)) < 5


def test_cues_without_blood_or_history_say_nothing():
    img = mucosa(5)
    assert streak_map(img, FOV) is None and stump_map(img, FOV) is None
    assert outflow_map(img, [], FOV) is None and refill_map(img, [], FOV) is None


def test_candidates_are_ranked_separated_and_probabilities():
    from bleedorigin.models.source.fusion import candidates
    h, w = H, W
    yy, xx = np.mgrid[:h, :w]
    score = (3.0 * np.exp(-((xx - 50) ** 2 + (yy - 40) ** 2) / 50.0)       # the clearest place
             + 2.0 * np.exp(-((xx - 150) ** 2 + (yy - 100) ** 2) / 50.0)  # a second one
             + 1.0 * np.exp(-((xx - 56) ** 2 + (yy - 44) ** 2) / 50.0))   # a shoulder of the first
    out = candidates(score.astype(np.float32), 3, radius=15.0, temperature=0.3)
    assert len(out) == 3
    assert np.hypot(out[0][0] - 50, out[0][1] - 40) <= 4 and np.hypot(out[1][0] - 150, out[1][1] - 100) <= 2
    assert np.hypot(out[2][0] - 50, out[2][1] - 40) > 30  # the shoulder is not a candidate of its own
    for i in range(3):
        for j in range(i):
            assert np.hypot(out[i][0] - out[j][0], out[i][1] - out[j][1]) > 30  # separated by 2 radii
    probs = [p for _, _, p in out]
    assert probs[0] > probs[1] > probs[2] >= 0 and sum(probs) <= 1 + 1e-6


def test_locate_candidates_starts_at_locate_and_keeps_confidences_in_range():
    from bleedorigin.models.registry import create
    img = mucosa(6)
    cv2.circle(img, (60, 50), 14, (170, 20, 25), -1)
    cv2.circle(img, (140, 100), 8, (170, 20, 25), -1)
    loc = create("source_evidence", device="cpu")
    cands = loc.locate_candidates(img, k=3)
    best = loc.locate(img)
    assert 1 <= len(cands) <= 3
    assert min(np.hypot(c.x - best.x, c.y - best.y) for c in cands) <= 2  # locate's point is one of them
    assert all(0.0 <= c.confidence <= 1.0 for c in cands)
    assert [c.confidence for c in cands] == sorted((c.confidence for c in cands), reverse=True)


def test_default_localizer_takes_the_stump_at_the_pool_edge_not_the_pool_middle():
    """The shipped `source_evidence` on a 512x384 frame: a large fresh pool with a vessel stump at
    its edge; the point is the stump (the red fusion would take the pool's middle)."""
    from bleedorigin.models.loading import load_stage
    img = cv2.resize(mucosa(7), (512, 384))
    cv2.circle(img, (250, 190), 70, (170, 25, 30), -1)
    stump = (305, 150)
    cv2.circle(img, stump, 7, (55, 12, 12), -1)
    p = load_stage("source", "source_evidence", "cpu").locate(img)
    assert np.hypot(p.x - stump[0], p.y - stump[1]) < 12
