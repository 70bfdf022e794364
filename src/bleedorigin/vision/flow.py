"""Optical-flow building blocks shared by the baselines and the pseudo-labellers:
DIS dense flow, bilinear sampling of a flow field, chaining a point through flows, a robust
similarity fit to sampled motion, and one pyramidal Lucas-Kanade step with a forward-backward
check."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from bleedorigin.errors import InputError

WHOLE_FRAME_PX = 640 * 480  # `lk_refine`: frames up to this size are refined whole, larger ones in windows
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def to_gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def check_preset(preset: str) -> str:
    """`preset` when it names a DIS preset, else an InputError listing them."""
    if preset not in DIS_PRESETS:
        raise InputError(f"unknown DIS preset {preset!r}; expected one of {sorted(DIS_PRESETS)}")
    return preset


def dis_flow(preset: str = "medium") -> cv2.DISOpticalFlow:
    """A DIS optical-flow object; call `.calc(prev_gray, next_gray, None)` -> (H, W, 2) flow."""
    return cv2.DISOpticalFlow_create(DIS_PRESETS[check_preset(preset)])


_POOLS: dict[int, ThreadPoolExecutor] = {}  # one pool per worker count, shared by every caller
_PER_THREAD = threading.local()  # DIS objects hold buffers: one per thread and preset


def dis_flows(pairs: list[tuple[np.ndarray, np.ndarray]], preset: str = "medium", workers: int = 1) -> list[np.ndarray]:
    """DIS flow (H, W, 2) of each (from, to) gray image pair, the same as `dis_flow(preset).calc`
    one after the other. With `workers` > 1 the pairs are spread over that many threads: OpenCV
    releases the GIL, and a flow at a few hundred pixels is too small for its own threading."""
    check_preset(preset)  # here, not inside a worker thread

    def calc(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        objects = getattr(_PER_THREAD, "dis", None)
        if objects is None:
            objects = _PER_THREAD.dis = {}
        if preset not in objects:
            objects[preset] = dis_flow(preset)
        return objects[preset].calc(pair[0], pair[1], None)

    return _spread(calc, pairs, workers)


def _spread(fn, items: list, workers: int) -> list:
    """[fn(item) for item in items], over `workers` threads of one shared pool when there are several."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="flow")
    return list(_POOLS[workers].map(fn, items))


def fit_similarity(xy: np.ndarray, motion: np.ndarray, inlier_px: float, min_inliers: int = 0) -> np.ndarray | None:
    """2x3 similarity transform (shift, rotation, zoom) that moves the points `xy` (N, 2) by
    `motion` (N, 2), fitted with RANSAC (`inlier_px` reprojection threshold); None when no fit
    or fewer than `min_inliers` points agree."""
    src = np.asarray(xy).astype(np.float32)
    transform, inliers = cv2.estimateAffinePartial2D(src, src + motion, method=cv2.RANSAC,
                                                     ransacReprojThreshold=inlier_px)
    if transform is None or inliers is None or inliers.sum() < min_inliers:
        return None
    return transform


def sample_flow(flow: np.ndarray, xy) -> np.ndarray:
    """Bilinear flow (dx, dy) at a sub-pixel point (clamped to the field)."""
    h, w = flow.shape[:2]
    x, y = float(np.clip(xy[0], 0, w - 1)), float(np.clip(xy[1], 0, h - 1))
    x0, y0 = min(int(x), w - 2), min(int(y), h - 2)
    fx, fy = x - x0, y - y0
    top = flow[y0, x0] * (1 - fx) + flow[y0, x0 + 1] * fx
    bot = flow[y0 + 1, x0] * (1 - fx) + flow[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def chain_flows(flows: list[np.ndarray], xy) -> np.ndarray:
    """Follow a point through successive flow fields; (len(flows), 2), NaN once it leaves the image."""
    out = np.full((len(flows), 2), np.nan, np.float64)
    p = np.asarray(xy, np.float64)
    for k, flow in enumerate(flows):
        h, w = flow.shape[:2]
        p = p + sample_flow(flow, p)
        if not (0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1):
            break
        out[k] = p
    return out


def lk_step(prev_gray: np.ndarray, next_gray: np.ndarray, xy, win: int = 21, levels: int = 3,
            fb_max: float = 1.5) -> tuple[np.ndarray, bool, float]:
    """Track one point from prev to next with pyramidal LK, then back again.

    Returns (new xy, ok, forward-backward error in pixels); ok is False when LK fails either way
    or the point does not come back within `fb_max` pixels of where it started.
    """
    p0 = np.asarray(xy, np.float32).reshape(1, 1, 2)
    params = dict(winSize=(win, win), maxLevel=levels,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, next_gray, p0, None, **params)
    if p1 is None or not st1[0, 0] or not np.isfinite(p1).all():
        return np.asarray(xy, np.float64), False, float("inf")
    back, st2, _ = cv2.calcOpticalFlowPyrLK(next_gray, prev_gray, p1, None, **params)
    if back is None or not st2[0, 0] or not np.isfinite(back).all():
        return p1[0, 0].astype(np.float64), False, float("inf")
    fb = float(np.linalg.norm(back[0, 0] - p0[0, 0]))
    return p1[0, 0].astype(np.float64), fb <= fb_max, fb


def sample_flow_points(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear flow (dx, dy) at many sub-pixel points (K, 2) at once (clamped to the field)."""
    maps = np.asarray(xy, np.float32).reshape(-1, 1, 2)
    out = cv2.remap(flow, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 2).astype(np.float64)


def lk_refine(prev_gray: np.ndarray, next_gray: np.ndarray, xy: np.ndarray, guess: np.ndarray,
              win: int = 21, levels: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade from `xy` (K, 2) in prev to next, starting from `guess` (K, 2),
    then back from where it lands. Returns (new xy (K, 2), forward-backward error in pixels (K,),
    ok (K,): both directions converged). Above `WHOLE_FRAME_PX` pixels it works on a window
    around each point (the pyramid reaches `(win // 2 + 2) * 2**levels` px); on smaller frames
    the whole frame's pyramid costs less. Each point's result does not depend on the others."""
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    guess = np.asarray(guess, np.float32).reshape(-1, 2)
    half = (win // 2 + 2) * 2 ** levels
    h, w = prev_gray.shape[:2]
    if w * h <= WHOLE_FRAME_PX:
        return _lk_there_and_back(prev_gray, next_gray, xy, guess, win, levels)
    size = (2 * half + 1, 2 * half + 1)
    q, fb, ok = np.empty((len(xy), 2)), np.empty(len(xy)), np.empty(len(xy), bool)
    for k, (p, g) in enumerate(zip(xy, guess)):
        # integer crop origins keep the pixels exact; getRectSubPix replicates the border outside
        oa, ob = np.round(p) - half, np.round(g) - half
        a = cv2.getRectSubPix(prev_gray, size, (float(oa[0] + half), float(oa[1] + half)))
        b = cv2.getRectSubPix(next_gray, size, (float(ob[0] + half), float(ob[1] + half)))
        qk, fbk, okk = _lk_there_and_back(a, b, (p - oa)[None], (g - ob)[None], win, levels)
        q[k], fb[k], ok[k] = qk[0] + ob, fbk[0], okk[0]
    return q, fb, ok


def lk_refine_many(jobs: list[tuple], workers: int = 1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`lk_refine(*job)` of each job (prev_gray, next_gray, xy, guess, win, levels), in order.
    With `workers` > 1 the jobs are spread over that many threads (the pool `dis_flows` uses):
    each call builds its own pyramids on one core, and OpenCV releases the GIL."""
    return _spread(lambda job: lk_refine(*job), jobs, workers)


def _lk_there_and_back(a: np.ndarray, b: np.ndarray, xy: np.ndarray, guess: np.ndarray, win: int,
                       levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = dict(winSize=(win, win), maxLevel=levels, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01))
    p0 = np.ascontiguousarray(xy, np.float32).reshape(-1, 1, 2)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, np.ascontiguousarray(guess, np.float32).reshape(-1, 1, 2),
                                          **params)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, p0.copy(), **params)
    q = p1.reshape(-1, 2).astype(np.float64)
    fb = np.linalg.norm(back.reshape(-1, 2) - p0.reshape(-1, 2), axis=1).astype(np.float64)
    ok = (st1.ravel() > 0) & (st2.ravel() > 0) & np.isfinite(q).all(1) & np.isfinite(fb)
    return q, np.where(ok, fb, np.inf), ok
