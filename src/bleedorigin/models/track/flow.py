"""Long-term point tracker on classical flow, in the spirit of MFT (Neoral, Šerých, Matas, WACV 2024).

For each new frame t and each reference r in {t-1, t-2, t-4, ..., t-32, start} (`deltas`), a
candidate is the point's stored position at r moved by the DIS flow r->t. Its uncertainty (a
variance, px² at the tracker resolution) is the stored variance at r plus the cost of that
step: a constant (every chained step adds error, so of two equally consistent candidates the
one through fewer steps wins), the squared forward-backward error of the flow pair at the point
(flow r->t, then t->r, should come back to where it started) and the squared photometric
mismatch of the patches around the point in r and t (1 - normalised cross-correlation) over
`photo_scale`: flow can be consistent both ways and still wrong (large motion, repeated texture).

A step is occluded when that error is large for the motion (Sundaram et al. 2010: |f + b|² >
0.01 (|f|² + |b|²) + `fb_occluded`²), when blood covers more than `blood_hidden` of the window
around the candidate, or when it (or the tissue around it) leaves the view; a candidate from an occluded reference stays
occluded. The point's own flow means nothing under occlusion, so an occluded step moves it with
what is around it, one of three ways (`occluded_motion`):
- "visible" (`track_mft_visible`, the default tracker): a similarity fitted to the visible tissue
  in the wide window around it, the window samples that are in the lit view and not blood (nor
  within `EDGE` px of it) in both frames and whose flow comes back along the backward flow;
  RANSAC, then least squares weighted by closeness to the point. A spreading or drifting pool
  over the point cannot drag it along. Where too little such tissue is left, the similarity of
  all the view's visible tissue; where that fails too, the surround median.
- "surround" (`track_mft`): the median flow of the wide window, blood included;
- "scene" (`track_mft_scene`): the view's dominant similarity fitted with RANSAC to the whole
  flow (`vision.motion.scene_motion`; the surround median where the fit fails).
The cost is `occluded_var` plus the squared forward-backward error of that motion (the same
motion computed on the backward flow from where it lands), so a hidden point is carried from the
last frame it was seen in, directly where that motion is consistent. The tracker keeps the unoccluded candidate of
lowest variance (when every candidate is occluded, the lowest variance one, reported not
visible) and stores position, variance and occlusion for frame t: a point hidden for a while
(blood, an instrument, glare) comes back through a reference from before it was hidden.

With `refine` (`track_mft_own`), each point's own motion is also measured at the input's
resolution: pyramidal LK in a window around the point, from the previous frame (started from its
own coarse flow, whatever the coarse occlusion test says) and from the best unoccluded coarse
candidate of another reference. A refined candidate whose LK comes back (forward-backward), lands
in view and off blood and still matches its reference's patch replaces the coarse candidate of
the same reference, so a point on an instrument moving against the tissue follows the instrument;
only a point without such a candidate is carried by its surroundings. With `appear_hidden`
(`track_mft_own_appear`), a step whose patch matches none of the point's kept appearances is
occluded as well.

Confidence: exp(-sigma / `sigma_conf`), sigma the square root of the variance (docs/tracking.md
reports its calibration). Flows are computed once per (r, t) pair and shared by all points;
`add_points` / `drop_points` change the points mid-stream.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.registry import register_model
from bleedorigin.vision.motion import scene_motion
from bleedorigin.types import TrackPoint
from bleedorigin.vision.color import BLOOD_THRESHOLD, field_of_view, red_mask
from bleedorigin.vision.flow import dis_flow, lk_refine, sample_flow_points, to_gray

DELTAS = (1, 2, 4, 8, 16, 32)
WINDOW = 8     # half-width (tracker px) of the window whose blood share hides the point
SURROUND = 48  # half-width of the window whose motion carries an occluded point
SAMPLE_STEP = 3  # "visible": tracker px between the window samples a hidden point's motion is fitted to
MIN_VISIBLE = 30  # "visible": fewest visible, consistent samples for a local fit (else the scene's)
FIT_PX = 1.0   # "visible": RANSAC inlier distance of a sample (tracker px)
EDGE = 3       # "visible": margin (tracker px) around blood whose flow is not used
PATCH = 4      # half-width of the patches compared for the photometric cost
FLAT = 2.0     # gray levels of contrast below which a patch counts as flat
REFINE_WIN = 21  # LK window (input px) of the refinement at the input resolution
REFINE_REACH = 2.0  # tracker px a refinement of another reference's coarse candidate may move it
REFINE_LEVELS = 2  # pyramid levels above the input's of that LK (one more above 3x the tracker size)
APPEAR = 8  # half-width (tracker px) of the patches that keep a point's appearance
APPEAR_MEMORY = 4  # appearances kept per point: the first and the latest three
APPEAR_EVERY = 8  # frames between the appearances kept
OCCLUDED_MOTIONS = ("surround", "scene", "visible")


class MultiFlowTracker(PointTrackerBase):
    """`start(frame, (x, y))` / `step(frame)` for one point, `start_many` / `step_many` for several."""

    name = "track_mft_visible"

    def __init__(self, size: tuple[int, int] = (256, 192), deltas: Sequence[int] = DELTAS, preset: str = "fast",
                 step_var: float = 0.25, photo_scale: float = 0.2, fb_occluded: float = 1.0,
                 occluded_var: float = 4.0, blood_hidden: float = 0.5, sigma_conf: float = 4.0,
                 occluded_motion: str = "visible", refine: bool = False, refine_fb: float = 1.0,
                 photo_hidden: float = 0.5, appear_hidden: float | None = None, appear_half: int = APPEAR,
                 name: str = "track_mft_visible"):
        """Sizes and variances in pixels of the tracker resolution `size`; `fb_occluded`: forward-
        backward error (px) above which a small step is occluded; `blood_hidden`: blood share of
        the window around the point above which it is hidden; `occluded_motion`: what carries an
        occluded point, "surround" (median flow around it), "scene" (the view's similarity) or
        "visible" (a similarity fitted to the visible tissue around it); `refine`: also move each
        point by its own motion at the input resolution (LK in a window), a candidate kept when
        its forward-backward error is within `refine_fb` input px (plus 2 % of the motion) and
        its patch mismatch below `photo_hidden`; `appear_hidden`: a step is occluded where the
        patch at the point matches none of its earlier appearances (1 - NCC above it; None: no
        such test)."""
        if occluded_motion not in OCCLUDED_MOTIONS:
            raise InputError(f"occluded_motion {occluded_motion!r}: expected one of {', '.join(OCCLUDED_MOTIONS)}")
        if not deltas or any(int(d) < 1 for d in deltas):
            raise InputError(f"deltas must be positive frame offsets, got {list(deltas)}")
        self.size, self.deltas = (int(size[0]), int(size[1])), sorted({int(d) for d in deltas})
        self.dis = dis_flow(preset)
        self.step_var, self.photo_scale, self.fb_occluded = step_var, photo_scale, fb_occluded
        self.occluded_var, self.occluded_motion = occluded_var, occluded_motion
        self.blood_hidden, self.sigma_conf = blood_hidden, sigma_conf
        self.refine, self.refine_fb, self.photo_hidden = refine, refine_fb, photo_hidden
        self.appear_hidden, self.appear_half = appear_hidden, appear_half
        # with refinement, callers give frames at the video's own resolution, not resized
        self.native_frames = refine
        self.name = self.model_id = name
        self.mapper: FrameMapper | None = None

    # ------------------------------------------------------------------ API
    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.start_many(frame, [point], frame_index)

    def step(self, frame: np.ndarray) -> TrackPoint:
        return self.step_many(frame)[0]

    def start_many(self, frame: np.ndarray, points: Sequence[tuple[float, float]], frame_index: int = 0) -> None:
        """Start on `frame` (index `frame_index`) with `points` (x, y in its pixels); forgets
        any earlier points."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            raise InputError("start_many: no points given")
        self.mapper = FrameMapper(frame.shape[1::-1], self.size)
        # the refinement runs at the input's resolution, or at the tracker's where that is finer
        fine = frame.shape[1::-1] if frame.shape[1] > self.size[0] else self.size
        self.fine_mapper = FrameMapper(fine, self.size)
        self.t, self.first = 0, int(frame_index)
        self.gray, self.tissue, self.fine = {}, {}, {}
        self.xy, self.var, self.occluded = {0: np.zeros((0, 2))}, {0: np.zeros(0)}, {0: np.zeros(0, bool)}
        self.anchor = np.zeros(0, int)  # frame each point was given on: a reference while it is tracked
        side = 2 * self.appear_half + 1  # appearances of each point: the patch it was given with, then later ones
        self.templates = np.zeros((0, APPEAR_MEMORY, side, side), np.float32)
        self._store_frame(0, frame)
        self.add_points(pts)

    def add_points(self, points: Sequence[tuple[float, float]]) -> list[int]:
        """Add points (x, y in pixels of the frame last given to `start_many` / `step_many`) on
        that frame; they are tracked from the next `step_many` on, after the points already
        there. Returns their indices in `step_many`'s list."""
        if self.mapper is None:
            raise InputError("add_points() called before start_many()")
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        w, h = self.mapper.in_size
        if len(pts) and not ((pts >= -0.5).all() and (pts[:, 0] <= w - 0.5).all() and (pts[:, 1] <= h - 0.5).all()):
            raise InputError(f"add_points: a point lies outside the {w}x{h} frame")
        t, n = self.t, len(self.anchor)
        for r in self.xy:  # on earlier frames the new points have no position: never a usable reference
            here = r == t
            self.xy[r] = np.concatenate([self.xy[r], self.mapper.to_model(pts)])
            self.var[r] = np.concatenate([self.var[r], np.zeros(len(pts)) if here else np.full(len(pts), np.inf)])
            self.occluded[r] = np.concatenate([self.occluded[r], np.full(len(pts), not here)])
        self.anchor = np.concatenate([self.anchor, np.full(len(pts), t)])
        first = _patches(self.gray[t], self.mapper.to_model(pts), self.appear_half)[:, None]
        empty = np.full((len(pts), APPEAR_MEMORY - 1, *first.shape[2:]), np.nan, np.float32)
        self.templates = np.concatenate([self.templates, np.concatenate([first, empty], 1)])
        return list(range(n, n + len(pts)))

    def drop_points(self, indices: Sequence[int]) -> None:
        """Stop tracking the points at `indices` of `step_many`'s list; the later ones move up."""
        drop = np.zeros(len(self.anchor), bool)
        for i in indices:
            if not 0 <= int(i) < len(drop):
                raise InputError(f"drop_points: no point {i} (tracking {len(drop)})")
            drop[int(i)] = True
        for state in (self.xy, self.var, self.occluded):
            for r in state:
                state[r] = state[r][~drop]
        self.anchor, self.templates = self.anchor[~drop], self.templates[~drop]

    def step_many(self, frame: np.ndarray) -> list[TrackPoint]:
        """Track every point into `frame`, the next frame of the stream; one TrackPoint each."""
        if self.mapper is None:
            raise InputError("step() called before start()")
        self.t += 1
        t = self.t
        gray, blood, tissue = self._store_frame(t, frame)
        refs = sorted(({max(0, t - d) for d in self.deltas} | set(self.anchor.tolist())) & set(self.xy))
        coarse = [self._candidate(r, gray, blood, tissue) for r in refs]  # each (K, 4): x, y, var, occluded
        cand = np.stack([c for c, _ in coarse])
        for src, refined in self._refined(refs, coarse, blood):  # a kept refinement replaces its coarse candidate
            good = np.flatnonzero(np.isfinite(refined[:, 2]))
            cand[[refs.index(r) for r in src[good]], good] = refined[good]
        var, occluded = cand[..., 2], cand[..., 3] > 0
        # the unoccluded candidate of lowest variance; when all are occluded, the lowest variance one
        best = np.where((~occluded).any(0), np.argmin(np.where(occluded, np.inf, var), axis=0), np.argmin(var, axis=0))
        chosen = cand[best, np.arange(cand.shape[1])]  # (K, 4)
        self.xy[t], self.var[t], self.occluded[t] = chosen[:, :2], chosen[:, 2], chosen[:, 3] > 0
        self._remember(t, ~self.occluded[t])
        self._forget(t)
        w, h = self.size
        out = self.mapper.to_input(np.clip(chosen[:, :2], [0, 0], [w - 1, h - 1]))
        confidence = np.exp(-np.sqrt(chosen[:, 2]) / self.sigma_conf)
        return [TrackPoint(self.first + t, float(p[0]), float(p[1]), float(c), not bool(o))
                for p, c, o in zip(out, confidence, self.occluded[t])]

    def _store_frame(self, t: int, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Keep what later steps need of frame t: its gray image at the tracker size and at the
        input size, and its visible tissue; return (gray, blood, tissue) at the tracker size."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"expected an RGB frame (H, W, 3), got {getattr(frame, 'shape', None)}")
        assert self.mapper is not None
        if frame.shape[1::-1] != self.mapper.in_size:
            raise InputError(f"frame size changed from {self.mapper.in_size} to {frame.shape[1::-1]} while tracking")
        small = self.mapper.resize(frame)
        gray, blood = to_gray(small), red_mask(small) > BLOOD_THRESHOLD
        tissue = self._tissue(small, blood)
        self.gray[t], self.tissue[t] = gray, tissue
        if self.refine:
            self.fine[t] = to_gray(frame) if self.fine_mapper.in_size != self.size else gray
        return gray, blood, tissue

    def _tissue(self, small: np.ndarray, blood: np.ndarray) -> np.ndarray | None:
        """Pixels of visible tissue (in the lit view, not blood), for the "visible" motion only."""
        if self.occluded_motion != "visible":
            return None
        # flow just outside blood is smoothed across its edge: keep a margin of EDGE px
        near_blood = cv2.dilate(blood.astype(np.uint8), np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)) > 0
        return field_of_view(small) & ~near_blood

    def _candidate(self, r: int, gray: np.ndarray, blood: np.ndarray,
                   tissue: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(K, 4): each point moved from reference r into the new frame, its variance, and
        whether the step (or the reference) is occluded; and (K, 2) where the point's own flow
        takes it, whatever the occlusion test says."""
        fwd = self.dis.calc(self.gray[r], gray, None)
        bwd = self.dis.calc(gray, self.gray[r], None)
        p = self.xy[r]
        f = sample_flow_points(fwd, p)
        b = sample_flow_points(bwd, p + f)
        q, own = p + f, p + f
        fb2 = ((f + b) ** 2).sum(1)
        photo = _patch_mismatch(self.gray[r], p, gray, q)
        w, h = self.size
        # a point whose surroundings leave the view leaves too (its own flow cannot point outside).
        # The surroundings' motion m (a median per window, costly) can only do that near the edge:
        # where no flow of the frame would take the point out, it is not computed
        lo, hi = _flow_range(fwd)
        need = ~(_in_view(p + lo, w, h) & _in_view(p + hi, w, h))
        m, surround_in_view = np.zeros_like(p), np.ones(len(p), bool)
        if need.any():
            m[need] = _surround_motion(fwd, p[need])
            surround_in_view[need] = _in_view(p[need] + m[need], w, h)
        outside = ~(_in_view(q, w, h) & surround_in_view)
        inconsistent = fb2 > 0.01 * ((f ** 2).sum(1) + (b ** 2).sum(1)) + self.fb_occluded ** 2
        step_occluded = outside | inconsistent | (_window_mean(blood, q) > self.blood_hidden) | self._unlike(gray, q)
        step = self.step_var + fb2 + (photo / self.photo_scale) ** 2
        hid = np.flatnonzero(step_occluded)
        if len(hid) and self.occluded_motion == "surround":  # the surroundings' motion carries them
            todo = hid[~need[hid]]
            if len(todo):
                m[todo] = _surround_motion(fwd, p[todo])
        if len(hid):  # no trustworthy flow at these points: move them with the tissue around them
            m, back = self._carry(r, fwd, bwd, tissue, p[hid], m[hid])
            q[hid] = p[hid] + m
            step[hid] = self.step_var + self.occluded_var + ((m + back) ** 2).sum(1)
        occluded = self.occluded[r] | step_occluded
        return np.column_stack([q, self.var[r] + step, occluded]), own

    def _unlike(self, gray: np.ndarray, xy: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """(K,) the patch at `xy` matches none of the earlier appearances of the points (`idx`:
        of those points only): an occluder that moves on consistently, which flow alone follows."""
        if self.appear_hidden is None:
            return np.zeros(len(xy), bool)
        templates = self.templates if idx is None else self.templates[idx]
        return _appearance_mismatch(templates, _patches(gray, xy, self.appear_half)) > self.appear_hidden

    def _remember(self, t: int, visible: np.ndarray) -> None:
        """Every `APPEAR_EVERY` frames, add the patch of each visible point that still looks like
        one of its appearances to them (the oldest one but the first given way to it), so slow
        changes of lighting and shape are followed and an occluder is not learnt."""
        if self.appear_hidden is None or t % APPEAR_EVERY:
            return
        patch = _patches(self.gray[t], self.xy[t], self.appear_half)
        fresh = visible & (_appearance_mismatch(self.templates, patch) < self.appear_hidden / 2)
        slot = 1 + (t // APPEAR_EVERY) % (APPEAR_MEMORY - 1)
        self.templates[fresh, slot] = patch[fresh]

    def _refined(self, refs: list[int], coarse: list[tuple[np.ndarray, np.ndarray]],
                 blood: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Refined candidates, each (source frame (K,), (K, 4)), from each point's own motion at the input resolution
        (pyramidal LK in a window, started where the coarse flow puts it): from the previous
        frame (whatever the coarse occlusion test says there), and from the unoccluded coarse
        candidate of lowest variance of another reference. Where the coarse flow hides every
        candidate of another reference, no LK guess is made from there: started from a wrong
        place, LK can settle on a look-alike."""
        if not self.refine:
            return []
        t, k = self.t, len(self.anchor)
        prev = refs.index(t - 1) if t - 1 in refs else None
        other = [i for i in range(len(refs)) if i != prev]
        src_best, guess_best = np.full(k, -1), np.zeros((k, 2))
        if other:
            c = np.stack([coarse[i][0] for i in other])  # (R', K, 4)
            score = np.where(c[..., 3] > 0, np.inf, c[..., 2])
            best = np.argmin(score, 0)
            found = np.isfinite(score[best, np.arange(k)])
            src_best[found] = np.array(refs)[np.array(other)[best[found]]]
            guess_best[found] = c[best[found], np.flatnonzero(found), :2]
        out = [(src_best, self._own_motion(src_best, guess_best, blood, reach=REFINE_REACH))]
        if prev is not None:
            src_prev = np.full(k, t - 1)
            out.append((src_prev, self._own_motion(src_prev, coarse[prev][1], blood)))
        return out

    def _own_motion(self, src: np.ndarray, guess: np.ndarray, blood: np.ndarray,
                    reach: float = np.inf) -> np.ndarray:
        """(K, 4) candidates: point j moved by LK at the input resolution from its position on
        frame src[j] (-1: none), starting from `guess` (tracker px); a candidate whose LK does
        not come back (forward-backward), lands on blood or out of view, more than `reach`
        tracker px from `guess`, or whose patch no longer matches is left out (infinite
        variance)."""
        t, w, h = self.t, *self.size
        mapper = self.fine_mapper
        out = np.column_stack([np.zeros((len(src), 2)), np.full(len(src), np.inf), np.ones(len(src))])
        to_tracker = float(np.mean(mapper.scale))  # refinement px -> tracker px
        levels = REFINE_LEVELS + (1 if to_tracker < 1 / 3 else 0)  # more reach where the coarse flow is coarser
        for r in np.unique(src[src >= 0]):
            idx = np.flatnonzero(src == r)
            p = self.xy[r][idx]
            start = mapper.to_input(p)
            moved, fb, ok = lk_refine(self.fine[r], self.fine[t], start, mapper.to_input(guess[idx]),
                                      REFINE_WIN, levels)
            q = mapper.to_model(moved)
            motion2 = ((moved - start) ** 2).sum(1)
            consistent = ok & (fb ** 2 <= 0.02 * motion2 + self.refine_fb ** 2)
            photo = _patch_mismatch(self.gray[r], p, self.gray[t], q)
            near = np.hypot(*(q - guess[idx]).T) <= reach
            good = (consistent & near & ~self.occluded[r][idx] & _in_view(q, w, h) & (photo < self.photo_hidden)
                    & (_window_mean(blood, q) <= self.blood_hidden) & ~self._unlike(self.gray[t], q, idx))
            var = self.var[r][idx] + self.step_var + (fb * to_tracker) ** 2 + (photo / self.photo_scale) ** 2
            out[idx] = np.column_stack([q, np.where(good, var, np.inf), ~good])
        return out

    def _carry(self, r: int, fwd: np.ndarray, bwd: np.ndarray, tissue: np.ndarray | None,
               xy: np.ndarray, surround: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Motion (K, 2) that carries occluded points at `xy` from r into the new frame, and the
        same motion on the backward flow from where they land (its consistency); `surround`: the
        median motion around the points, already computed."""
        if self.occluded_motion == "visible":
            m = _visible_motion(fwd, bwd, self.tissue[r], tissue, xy)
            return m, _visible_motion(bwd, fwd, tissue, self.tissue[r], xy + m)
        if self.occluded_motion == "scene":
            m = _scene_motion(fwd, xy)
            return m, _scene_motion(bwd, xy + m)
        return surround, _surround_motion(bwd, xy + surround)

    def _forget(self, t: int) -> None:
        """Keep the start frame and the frames a later step can still reach."""
        oldest, anchors = t + 1 - max(self.deltas), set(self.anchor.tolist())
        for r in [r for r in self.gray if r < oldest and r not in anchors]:
            del self.gray[r], self.tissue[r], self.xy[r], self.var[r], self.occluded[r]
            self.fine.pop(r, None)


def _flow_range(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest (dx, dy) of a flow field; per contiguous channel, since numpy's
    reduction over the interleaved (N, 2) layout costs ~40x more (ms per call on the hot path)."""
    dx, dy = cv2.split(flow)
    return np.array([dx.min(), dy.min()]), np.array([dx.max(), dy.max()])


def _in_view(xy: np.ndarray, w: int, h: int) -> np.ndarray:
    return (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)


def _windows(field: np.ndarray, xy: np.ndarray, half: int = WINDOW):
    h, w = field.shape[:2]
    for x, y in np.round(xy).astype(int):
        x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
        yield field[max(0, y - half):y + half + 1, max(0, x - half):x + half + 1]


def _window_mean(mask: np.ndarray, xy: np.ndarray, half: int = WINDOW) -> np.ndarray:
    """Share of `mask` in the window around each point (K,), the window of `_windows`, from the
    mask's integral image."""
    h, w = mask.shape[:2]
    c = np.round(np.asarray(xy, np.float64).reshape(-1, 2)).astype(int)
    x, y = np.clip(c[:, 0], 0, w - 1), np.clip(c[:, 1], 0, h - 1)
    x0, x1, y0, y1 = np.maximum(0, x - half), np.minimum(w, x + half + 1), np.maximum(0, y - half), np.minimum(h, y + half + 1)
    ii = cv2.integral(mask.astype(np.uint8))
    count = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
    return count / ((x1 - x0) * (y1 - y0))


def _surround_motion(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Median flow (K, 2) of the wide window around each point: the motion of what surrounds it."""
    return np.array([np.median(win.reshape(-1, 2), 0) for win in _windows(flow, xy, SURROUND)], np.float64)


def _scene_motion(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Motion (K, 2) of each point under the view's dominant similarity transform, fitted once
    to the whole flow; the surround median where the fit fails."""
    transform = scene_motion(flow)
    if transform is None:
        return _surround_motion(flow, xy)
    return xy @ transform[:, :2].T + transform[:, 2] - xy


def _visible_motion(flow: np.ndarray, back: np.ndarray, tissue_a: np.ndarray, tissue_b: np.ndarray,
                    xy: np.ndarray) -> np.ndarray:
    """Motion (K, 2) of each point along `flow` (a -> b) under a similarity fitted to the visible
    tissue around it: window samples that are tissue in a, land on tissue in b and come back
    along `back` (b -> a), so blood, the black frame and what the flow cannot follow are left
    out; RANSAC, then a least-squares fit to the inliers weighted by closeness to the point.
    Where too few such samples remain, the similarity of all the view's visible tissue (once per
    flow), and where that fails too, the median flow around the point."""
    h, w = flow.shape[:2]
    scene, scene_fitted = None, False  # the view's fit, made only if some point needs it
    out = []
    for x, y in xy:
        cx, cy = min(max(int(round(x)), 0), w - 1), min(max(int(round(y)), 0), h - 1)
        gy, gx = np.mgrid[max(0, cy - SURROUND):cy + SURROUND + 1:SAMPLE_STEP,
                          max(0, cx - SURROUND):cx + SURROUND + 1:SAMPLE_STEP]
        keep = (gx < w) & (gy < h)
        gx, gy = gx[keep], gy[keep]
        f = flow[gy, gx].astype(np.float64)
        tx, ty = np.round(gx + f[:, 0]).astype(int), np.round(gy + f[:, 1]).astype(int)
        lands = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
        tx, ty = np.clip(tx, 0, w - 1), np.clip(ty, 0, h - 1)
        fb = f + back[ty, tx]
        consistent = (fb ** 2).sum(1) < 0.01 * ((f ** 2).sum(1) + (back[ty, tx] ** 2).sum(1)) + 1.0
        ok = lands & consistent & tissue_a[gy, gx] & tissue_b[ty, tx]
        rel = np.column_stack([gx - x, gy - y])[ok]
        motion = _local_similarity(rel, f[ok]) if ok.sum() >= MIN_VISIBLE else None
        if motion is None:
            if not scene_fitted:
                scene, scene_fitted = scene_motion(flow, tissue_a), True
            if scene is None:
                motion = _surround_motion(flow, np.array([[x, y]]))[0]
            else:
                motion = scene[:, :2] @ [x, y] + scene[:, 2] - [x, y]
        out.append(motion)
    return np.array(out, np.float64).reshape(-1, 2)


def _local_similarity(rel: np.ndarray, f: np.ndarray) -> np.ndarray | None:
    """Translation at the origin of the similarity that moves samples at `rel` (relative to the
    point) by `f`: RANSAC inliers, refitted by least squares weighted by closeness."""
    _, inliers = cv2.estimateAffinePartial2D(rel.astype(np.float32), (rel + f).astype(np.float32),
                                             method=cv2.RANSAC, ransacReprojThreshold=FIT_PX)
    if inliers is None or inliers.sum() < MIN_VISIBLE // 2:
        return None
    keep = inliers.ravel() > 0
    rel, f = rel[keep], f[keep]
    weight = np.exp(-(rel ** 2).sum(1) / (2 * (SURROUND / 2) ** 2))
    # (rel + f) = [[a, -b], [b, a]] rel + t in the unknowns (a, b, tx, ty): weighted normal equations
    x, y = rel[:, 0], rel[:, 1]
    u, v = x + f[:, 0], y + f[:, 1]
    sw, sx, sy = weight.sum(), weight @ x, weight @ y
    sxx = weight @ (x * x + y * y)
    normal = np.array([[sxx, 0, sx, sy], [0, sxx, -sy, sx], [sx, -sy, sw, 0], [sy, sx, 0, sw]])
    rhs = np.array([weight @ (x * u + y * v), weight @ (x * v - y * u), weight @ u, weight @ v])
    return np.linalg.solve(normal, rhs)[2:]


def _patch_mismatch(gray_a: np.ndarray, xy_a: np.ndarray, gray_b: np.ndarray, xy_b: np.ndarray) -> np.ndarray:
    """1 - normalised cross-correlation of the patches around matching points (K,), in [0, 2];
    flat patches (blood, glare) compare by their small contrast, not by noise."""
    size = (2 * PATCH + 1, 2 * PATCH + 1)
    out = []
    for pa, pb in zip(xy_a, xy_b):
        a = cv2.getRectSubPix(gray_a, size, (float(pa[0]), float(pa[1])), patchType=cv2.CV_32F)
        b = cv2.getRectSubPix(gray_b, size, (float(pb[0]), float(pb[1])), patchType=cv2.CV_32F)
        a, b = a - a.mean(), b - b.mean()
        ncc = (a * b).mean() / np.sqrt(((a ** 2).mean() + FLAT ** 2) * ((b ** 2).mean() + FLAT ** 2))
        out.append(1.0 - float(ncc))
    return np.array(out)


def _patches(gray: np.ndarray, xy: np.ndarray, half: int) -> np.ndarray:
    """(K, 2 half + 1, 2 half + 1) float32 patches of `gray` centred on sub-pixel points."""
    offsets = np.arange(-half, half + 1, dtype=np.float32)
    side = len(offsets)
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    mx = np.broadcast_to(xy[:, 0, None, None] + offsets[None, None, :], (len(xy), side, side))
    my = np.broadcast_to(xy[:, 1, None, None] + offsets[None, :, None], (len(xy), side, side))
    out = cv2.remap(gray.astype(np.float32), np.ascontiguousarray(mx.reshape(len(xy), -1)),
                    np.ascontiguousarray(my.reshape(len(xy), -1)), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(xy), side, side)


def _appearance_mismatch(templates: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """(K,) 1 - the best normalised cross-correlation of each patch (K, S, S) with the point's
    kept appearances (K, M, S, S; NaN where none is kept yet); flat patches compare by their
    small contrast, as in `_patch_mismatch`."""
    a = templates - templates.mean(axis=(2, 3), keepdims=True)  # NaN where no appearance is kept
    b = (patches - patches.mean(axis=(1, 2), keepdims=True))[:, None]
    ncc = (a * b).mean(axis=(2, 3)) / np.sqrt(((a ** 2).mean(axis=(2, 3)) + FLAT ** 2) * ((b ** 2).mean(axis=(2, 3)) + FLAT ** 2))
    return 1.0 - np.nanmax(np.where(np.isnan(ncc), -np.inf, ncc), axis=1) if len(ncc) else np.zeros(0)


# Configurations compared in docs/tracking.md; track_mft_visible is the default tracker.
# Presets by registry name; the class defaults are the shipped one (track_mft_visible).
CONFIGS = {
    "track_mft_visible": {},
    "track_mft": {"occluded_motion": "surround"},
    "track_mft512": {"occluded_motion": "surround", "size": (512, 384)},
    "track_mft_scene": {"occluded_motion": "scene"},
    "track_mft_own": {"refine": True},
    "track_mft_own_appear": {"refine": True, "appear_hidden": 0.3},
}


def _register(name: str, settings: dict) -> None:
    @register_model(name)
    def factory(**options: object) -> MultiFlowTracker:
        options.pop("device", None)  # classical flow: always the CPU
        return MultiFlowTracker(**{**settings, **options}, name=name)  # type: ignore[arg-type]


for _name, _settings in CONFIGS.items():
    _register(_name, _settings)
