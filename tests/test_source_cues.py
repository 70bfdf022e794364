"""Source cues find a source whose position is known (synthetic frames at the working size)."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.models.source.cues import outflow_map, refill_map, streak_map, stump_map

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


def test_cues_without_blood_or_history_say_nothing():
    img = mucosa(5)
    assert streak_map(img, FOV) is None and stump_map(img, FOV) is None
    assert outflow_map(img, [], FOV) is None and refill_map(img, [], FOV) is None
