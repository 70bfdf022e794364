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
- "visible" (`track_mft_visible`, `track_mft_own` and its variants, the shipped `track_mft_own_agree_mean` among them): a similarity fitted to the visible tissue
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

With `refine` (`track_mft_own` and its variants), each point's own motion is also measured at the input's
resolution (at most twice the tracker's size, so LK's window sees the same part of the scene as
on BleedSim): pyramidal LK in a window around the point, from the previous frame (started from its
own coarse flow, whatever the coarse occlusion test says) and from the best unoccluded coarse
candidate of another reference. A refined candidate whose LK comes back (forward-backward), lands
in view and off blood and still matches its reference's patch replaces the coarse candidate of
the same reference, so a point on an instrument moving against the tissue follows the instrument;
only a point without such a candidate is carried by its surroundings. The candidate a point would
choose is refined from its reference until the choice falls on a confirmed one; an unconfirmed
candidate far from it (a long reference's, where the coarse flow blended a thin jaw into the
tissue behind it) competes with a hidden step's cost added. Own motion overrules the
coarse flow's inconsistency, not blood: a point whose coarse landing is covered stays hidden. An
input no wider than the tracker is not refined (the flow already sees each of its pixels). With
`match_first` (`track_mft_own_match`), a coarse candidate whose patch does not match its reference's (the
refinement's own patch test) is chosen only where no unoccluded candidate matches: a long reference's
flow, consistent both ways, can land on a look-alike in weak texture or glare, and would take the
point from a chain of matched steps whose variance has grown. With `appear_hidden`
(`track_mft_own_appear`), a step whose patch matches none of the point's kept appearances is
occluded as well. With `redetect` (`track_mft_redetect`), a hidden point in view and off blood
is searched for by those appearances around its carried position and taken where one matches.
The variants of docs/tracking-choices.md "Candidates LK does not confirm" change how the choice weighs
candidates LK did not confirm (`own_anchor`), refine a lagging long reference
again beyond the reach where its LK lands on the confirmed candidate (`agree`,
`track_mft_own_agree`), or keep a confirmed own motion against a jump whose landing looks no more
like the point from that reference (`own_look`).

Confidence: exp(-sigma / `sigma_conf`), sigma the square root of the variance (docs/tracking.md
reports its calibration). Flows are computed once per (r, t) pair and shared by all points,
the per-point work runs on arrays of all points, and a hidden step is carried only where the
choice can fall on it; `add_points` / `drop_points` change the points mid-stream.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.registry import register_model
from bleedorigin.vision.motion import scene_motion
from bleedorigin.types import TrackPoint
from bleedorigin.vision.color import BLOOD_THRESHOLD, field_of_view, red_mask
from bleedorigin.utils.threads import threads
from bleedorigin.vision.flow import check_preset, dis_flows, lk_refine_many, sample_flow_points, to_gray

DELTAS = (1, 2, 4, 8, 16, 32)
WINDOW = 8     # half-width (tracker px) of the window whose blood share hides the point
SURROUND = 48  # half-width of the window whose motion carries an occluded point
SAMPLE_STEP = 3  # "visible": tracker px between the window samples a hidden point's motion is fitted to
MIN_VISIBLE = 30  # "visible": fewest visible, consistent samples for a local fit (else the scene's)
FIT_PX = 1.0   # "visible": RANSAC inlier distance of a sample (tracker px)
RANGE_BLOCK = 8  # block (tracker px) of the flow ranges that bound a window's median
FEW_RANGES = 4  # up to this many points, the flow ranges are read window by window (cheaper)
EDGE = 3       # "visible": margin (tracker px) around blood whose flow is not used
PATCH = 4      # half-width of the patches compared for the photometric cost
PATCH_CHUNK = 512  # most points whose patches are taken in one pass (larger passes outgrow the cache)
FLAT = 2.0     # gray levels of contrast below which a patch counts as flat
REFINE_WIN = 21  # LK window (input px) of the refinement at the input resolution
REFINE_REACH = 2.0  # tracker px a refinement of another reference's coarse candidate may move it
REFINE_LEVELS = 2  # pyramid levels above the refinement's frame of that LK
REFINE_SCALE = 2  # the refinement's frames are at most this many tracker sizes (BleedSim's 512x384)
DOUBT_SIGMAS = 2.0  # an unconfirmed candidate this many sigmas of the confirmed one away is in doubt
KNOWN_SIGMA = REFINE_WIN / 4  # tracker px (one sigma) a point's last position must be known to for own motion
APPEAR = 8  # half-width (tracker px) of the patches that keep a point's appearance
APPEAR_MEMORY = 4  # appearances kept per point: the first and the latest three
APPEAR_EVERY = 8  # frames between the appearances kept
APPEAR_FRESH = 0.15  # 1 - NCC below which a visible point's patch still looks like it: kept as an appearance
SEARCH_MIN, SEARCH_MAX = 24, 96  # re-detection: half-width (tracker px) of the search, 3 sigma between these
UNIQUE = 0.1  # re-detection: NCC by which the best match must beat every other place (no look-alike)
OCCLUDED_MOTIONS = ("surround", "scene", "visible")
HIDDEN_ESTIMATES = ("best", "mean")
MEAN_REFS = 3  # hidden_estimate "mean": references of lowest variance bound always carried (cost: 3, not all 7)


@dataclass
class _FlowStep:
    """One reference's coarse step for all points: the flow pair, where each point's own flow
    takes it, the surroundings' median (NaN where not taken) and the candidates (K, 4)."""
    ref: int
    fwd: np.ndarray
    bwd: np.ndarray
    p: np.ndarray  # (K, 2) positions on the reference
    own: np.ndarray  # (K, 2) moved by the point's own flow
    surround: np.ndarray  # (K, 2)
    candidate: np.ndarray  # (K, 4) x, y, var, occluded
    hidden: np.ndarray  # (K,) the step is hidden: carried by the surroundings
    covered: np.ndarray  # (K,) blood covers where the point's own flow takes it
    unmatched: np.ndarray  # (K,) the patch where it lands does not match the reference's (1 - NCC >= photo_hidden)


class _Refined:
    """A frame's refinements at the input resolution (`_refinements`, the reach not applied) by
    (reference row, point): the start each LK began from (NaN: none yet) and its candidate."""

    def __init__(self, refs: list[int], k: int):
        self.refs = np.asarray(refs)  # sorted
        self.start = np.full((len(refs), k, 2), np.nan)
        self.cand = np.zeros((len(refs), k, 4))


class MultiFlowTracker(PointTrackerBase):
    """`start(frame, (x, y))` / `step(frame)` for one point, `start_many` / `step_many` for several."""

    name = "track_mft_own"

    def __init__(self, size: tuple[int, int] = (256, 192), deltas: Sequence[int] = DELTAS, preset: str = "fast",
                 step_var: float = 0.25, photo_scale: float = 0.2, fb_occluded: float = 1.0,
                 occluded_var: float = 4.0, blood_hidden: float = 0.5, sigma_conf: float = 4.0,
                 occluded_motion: str = "visible", refine: bool = True, refine_fb: float = 1.0,
                 photo_hidden: float = 0.5, appear_hidden: float | None = None, appear_half: int = APPEAR,
                 redetect: float | None = None, hidden_estimate: str = "best", match_first: bool = False,
                 own_anchor: bool = False, agree: bool = False,
                 own_look: bool = False, name: str = "track_mft_own"):
        """Sizes and variances in pixels of the tracker resolution `size`; `fb_occluded`: forward-
        backward error (px) above which a small step is occluded; `blood_hidden`: blood share of
        the window around the point above which it is hidden; `occluded_motion`: what carries an
        occluded point, "surround" (median flow around it), "scene" (the view's similarity) or
        "visible" (a similarity fitted to the visible tissue around it); `refine`: also move each
        point by its own motion at the input resolution (LK in a window), a candidate kept when
        its forward-backward error is within `refine_fb` input px (plus 2 % of the motion) and
        its patch mismatch below `photo_hidden`; `appear_hidden`: a step is occluded where the
        patch at the point matches none of its earlier appearances (1 - NCC above it; None: no
        such test); `redetect`: a hidden point in view and off blood is searched for by its
        kept appearances and taken where one matches with at least this NCC (None: no search);
        `hidden_estimate`: where a point has no unoccluded candidate, "best" takes the carried
        candidate of lowest variance, "mean" the inverse-variance weighted mean of those
        carried from the `MEAN_REFS` references of lowest variance bound and any other that could win;
        `match_first`: a coarse step whose patch does not match its reference's (1 - NCC at least
        `photo_hidden`, the refinement's own test) is taken only where no unoccluded candidate
        matches; `own_anchor`: where the point's own motion from the previous frame is confirmed, it is the
        confirmed candidate the others are measured from, and one further from it, confirmed or
        not, competes with that cost added; `agree`: a candidate LK did not confirm within the
        refinement's reach is refined again from its reference without it, and replaces its coarse
        candidate where it lands within `refine_fb` (refinement px) of the confirmed one; `own_look`:
        another reference takes a point from its confirmed own motion only where its landing looks
        more like that reference's patch of the point than the own motion's position does."""
        if occluded_motion not in OCCLUDED_MOTIONS:
            raise InputError(f"occluded_motion {occluded_motion!r}: expected one of {', '.join(OCCLUDED_MOTIONS)}")
        if hidden_estimate not in HIDDEN_ESTIMATES:
            raise InputError(f"hidden_estimate {hidden_estimate!r}: expected one of {', '.join(HIDDEN_ESTIMATES)}")
        if not deltas or any(int(d) < 1 for d in deltas):
            raise InputError(f"deltas must be positive frame offsets, got {list(deltas)}")
        self.size, self.deltas = (int(size[0]), int(size[1])), sorted({int(d) for d in deltas})
        self.preset = check_preset(preset)
        self.step_var, self.photo_scale, self.fb_occluded = step_var, photo_scale, fb_occluded
        self.occluded_var, self.occluded_motion = occluded_var, occluded_motion
        self.blood_hidden, self.sigma_conf = blood_hidden, sigma_conf
        self.refine, self.refine_fb, self.photo_hidden = refine, refine_fb, photo_hidden
        self.appear_hidden, self.appear_half = appear_hidden, appear_half
        self.redetect, self.hidden_estimate = redetect, hidden_estimate
        self.match_first, self.own_anchor, self.agree = match_first, own_anchor, agree
        self.own_look = own_look
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
        # the refinement runs at the input's resolution, where that is finer than the flow's: on a
        # smaller input the flow already sees every pixel, and LK on the upsampled frame only adds noise
        self.refining = self.refine and frame.shape[1] > self.size[0]
        # LK's window sees the same part of the scene as on BleedSim's frames (twice the tracker's size),
        # where the refinement was validated: on a 1920 px frame a 21 px window sees only the blurred
        # inside of a thin, fast instrument part (a jaw), so a larger input is reduced first
        w, h = frame.shape[1::-1]
        fine = (w, h) if w <= REFINE_SCALE * self.size[0] else (REFINE_SCALE * self.size[0], REFINE_SCALE * self.size[1])
        self.to_fine = FrameMapper((w, h), fine)  # input -> refinement frames
        self.fine_mapper = FrameMapper(fine, self.size)  # refinement frames <-> tracker
        self.t, self.first = 0, int(frame_index)
        self.gray, self.fine = {}, {}
        self.patches: dict[int, np.ndarray] = {}  # frame r's patches at the points' positions there (`_ref_patches`)
        self.small, self.blood, self.tissue = {}, {}, {}  # the tissue of a frame only once a hidden step needs it
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
        self.patches.clear()  # the points changed: kept patches would not match them
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
        self.patches.clear()

    def step_many(self, frame: np.ndarray) -> list[TrackPoint]:
        """Track every point into `frame`, the next frame of the stream; one TrackPoint each."""
        if self.mapper is None:
            raise InputError("step() called before start()")
        self.t += 1
        t = self.t
        gray, blood = self._store_frame(t, frame)
        if len(self.anchor) == 0:  # every point dropped: keep the frame, so points can be added on it
            self.xy[t], self.var[t], self.occluded[t] = np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool)
            self._forget(t)
            return []
        blood_ii = cv2.integral(blood.astype(np.uint8))  # blood share of any window, for every point
        refs = sorted(({max(0, t - d) for d in self.deltas} | set(self.anchor.tolist())) & set(self.xy))
        # one flow pair per reference, shared by all points, computed on the thread budget's cores
        flows = dis_flows([pair for r in refs for pair in ((self.gray[r], gray), (gray, self.gray[r]))],
                          self.preset, threads())
        steps = self._flow_steps(refs, flows, gray, blood_ii)
        self.refined = _Refined(refs, len(self.anchor))
        cand = np.stack([s.candidate for s in steps])  # (R, K, 4): x, y, var, occluded
        carry = np.stack([s.hidden for s in steps])  # (R, K): still to be carried by the surroundings
        confirmed = np.zeros(carry.shape, bool)  # replaced by a refinement kept at the input's resolution
        tried = np.zeros(carry.shape, bool)  # a refinement was tried
        for src, refined in self._refined(refs, steps, blood_ii):  # a kept refinement replaces its coarse candidate
            row = np.searchsorted(refs, src)  # refs is sorted; meaningful where src >= 0
            some = np.flatnonzero(src >= 0)
            tried[row[some], some] = True
            good = np.flatnonzero(np.isfinite(refined[:, 2]))
            cand[row[good], good], carry[row[good], good], confirmed[row[good], good] = refined[good], False, True
        doubt = self._doubt(refs, cand, carry, confirmed, tried, blood_ii) if self.refining else 0.0
        self._carry_hidden(refs, steps, cand, carry)
        var, occluded = cand[..., 2], cand[..., 3] > 0
        if self.match_first:
            # a long flow can be consistent both ways and land on a look-alike (weak texture, glare): where the
            # point does not look like itself on that reference, the candidate waits for one that does
            # (refined candidates passed the same patch test)
            waits = np.stack([s.unmatched for s in steps]) & ~confirmed
            occluded = occluded | (waits & (~occluded & ~waits).any(0))
        # the unoccluded candidate of lowest variance (plus its doubt); when all are occluded, the lowest variance one
        seen = (~occluded).any(0)
        best = np.where(seen, np.argmin(np.where(occluded, np.inf, var + doubt), axis=0), np.argmin(var, axis=0))
        if self.own_look and self.refining and t - 1 in refs:
            self._keep_own_look(refs, cand, best, confirmed[refs.index(t - 1)] & seen, gray)
        chosen = cand[best, np.arange(cand.shape[1])]  # (K, 4)
        if self.hidden_estimate == "mean":
            _mean_of_hidden(chosen, cand, ~seen)
        if self.redetect is not None:
            self._redetect(chosen, blood_ii)
        self.xy[t], self.var[t], self.occluded[t] = chosen[:, :2], chosen[:, 2], chosen[:, 3] > 0
        self._remember(t, ~self.occluded[t])
        self._forget(t)
        w, h = self.size
        out = self.mapper.to_input(np.clip(chosen[:, :2], [0, 0], [w - 1, h - 1]))
        confidence = np.exp(-np.sqrt(chosen[:, 2]) / self.sigma_conf)
        return [TrackPoint(self.first + t, float(p[0]), float(p[1]), float(c), not bool(o))
                for p, c, o in zip(out, confidence, self.occluded[t])]

    def _store_frame(self, t: int, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep what later steps need of frame t: its gray image at the tracker size and at the
        input size, and what its visible tissue is found from; return (gray, blood) at the tracker size."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"expected an RGB frame (H, W, 3), got {getattr(frame, 'shape', None)}")
        assert self.mapper is not None
        if frame.shape[1::-1] != self.mapper.in_size:
            raise InputError(f"frame size changed from {self.mapper.in_size} to {frame.shape[1::-1]} while tracking")
        small = self.mapper.resize(frame)
        gray, blood = to_gray(small), red_mask(small) > BLOOD_THRESHOLD
        self.gray[t] = gray
        if self.occluded_motion == "visible":
            # a copy where no resize made one: the caller may reuse or draw on its frame
            self.small[t], self.blood[t] = small if small is not frame else small.copy(), blood
        if self.refining:
            self.fine[t] = to_gray(self.to_fine.resize(frame))
        return gray, blood

    def _tissue(self, t: int) -> np.ndarray:
        """Pixels of visible tissue of frame t (in the lit view, not blood), for the "visible"
        motion; found the first time a hidden step needs them (while no point is hidden, never)."""
        if t not in self.tissue:
            # flow just outside blood is smoothed across its edge: keep a margin of EDGE px
            near_blood = cv2.dilate(self.blood[t].astype(np.uint8), np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)) > 0
            self.tissue[t] = field_of_view(self.small[t]) & ~near_blood
        return self.tissue[t]

    def _flow_steps(self, refs: list[int], flows: list[np.ndarray], gray: np.ndarray,
                    blood_ii: np.ndarray) -> list["_FlowStep"]:
        """Each point moved from each reference refs[i] into the new frame by its own flow
        (flows[2 i], checked along flows[2 i + 1]), the step's variance and whether it (or the
        reference) is occluded; a point whose step is hidden only gets the lower bound of its
        variance here (`_carry_hidden` moves it). The tests that need no flow run once on the
        points of all references together (rows reference after reference): per reference,
        their fixed cost outweighed the work on a few points."""
        k, w, h = len(self.anchor), *self.size
        fwd, bwd = flows[0::2], flows[1::2]
        p = np.concatenate([self.xy[r] for r in refs])  # (R K, 2)
        f = np.concatenate([sample_flow_points(flow, self.xy[r]) for flow, r in zip(fwd, refs)])
        q = p + f
        b = np.concatenate([sample_flow_points(flow, q[i * k:(i + 1) * k]) for i, flow in enumerate(bwd)])
        fb2 = ((f + b) ** 2).sum(1)
        photo = _ncc_mismatch(np.concatenate([self._ref_patches(r) for r in refs]),
                              _patches(gray, q, PATCH))
        # a point whose surroundings leave the view leaves too (its own flow cannot point outside).
        # The surroundings' motion m (a median per window, costly) can only do that near the edge:
        # where no flow of the window around the point would take it out, it is not computed
        m, surround_in_view = np.full_like(p, np.nan), np.ones(len(p), bool)
        for i, flow in enumerate(fwd):
            rows = np.arange(i * k, (i + 1) * k)
            lo, hi = _window_flow_range(flow, p[rows])
            need = rows[~(_in_view(p[rows] + lo, w, h) & _in_view(p[rows] + hi, w, h))]
            if len(need):
                m[need] = _surround_motion(flow, p[need])
                surround_in_view[need] = _in_view(p[need] + m[need], w, h)
        outside = ~(_in_view(q, w, h) & surround_in_view)
        inconsistent = fb2 > 0.01 * ((f ** 2).sum(1) + (b ** 2).sum(1)) + self.fb_occluded ** 2
        covered = _window_share(blood_ii, q) > self.blood_hidden
        hidden = outside | inconsistent | covered | self._unlike(gray, q, np.tile(np.arange(k), len(refs)))
        step = np.where(hidden, self.step_var + self.occluded_var, self.step_var + fb2 + (photo / self.photo_scale) ** 2)
        var, occluded = (np.concatenate([state[r] for r in refs]) for state in (self.var, self.occluded))
        candidate = np.column_stack([q, var + step, occluded | hidden])
        unmatched = photo >= self.photo_hidden
        return [_FlowStep(r, fwd[i], bwd[i], self.xy[r], *(a[i * k:(i + 1) * k] for a in (q, m, candidate, hidden, covered, unmatched)))
                for i, r in enumerate(refs)]

    def _ref_patches(self, r: int) -> np.ndarray:
        """Patches (K, S, S) of frame r around the points' positions there, which every later
        step compares with: taken once (until points are added or dropped)."""
        if r not in self.patches:
            self.patches[r] = _patches(self.gray[r], self.xy[r], PATCH)
        return self.patches[r]

    def _carry_hidden(self, refs: list[int], steps: list["_FlowStep"], cand: np.ndarray, carry: np.ndarray) -> None:
        """Move the hidden steps of `cand` (R, K, 4; rows `carry`) with what surrounds the point,
        where the choice can fall on them: only points with no unoccluded candidate, and for
        those only references whose variance bound (stored variance + the hidden step's
        constant) does not exceed the best candidate found so far, lowest bound first. The
        choice is the one all candidates would give; the others are left out (infinite variance).
        For `hidden_estimate` "mean" the `MEAN_REFS` references of lowest bound are carried too.
        The steps of one round (a rank; for "mean", the first `MEAN_REFS` ranks, which go
        whatever the best is) are carried together, all references in one pass."""
        var, occluded = cand[..., 2], cand[..., 3] > 0
        todo_points = np.flatnonzero(~(~occluded).any(0))
        bound = np.where(carry, var, np.inf)[:, todo_points]
        best = np.where(carry, np.inf, var)[:, todo_points].min(0)
        order = np.argsort(bound, axis=0, kind="stable")  # (R, K'): each point's references by bound
        every = np.arange(len(todo_points))
        ref_xy = np.stack([s.p for s in steps])  # (R, K, 2) the points on each reference, and their variances
        ref_var = np.stack([self.var[s.ref] for s in steps])
        # the mean weighs the MEAN_REFS most certain references whether or not they can win: one round for them
        together = min(MEAN_REFS, len(refs)) if self.hidden_estimate == "mean" else 0
        rounds = ([range(together)] if together else []) + [[rank] for rank in range(together, len(refs))]
        for ranks in rounds:
            rows, cols = [], []  # (reference, position in todo_points) of the steps this round carries
            for rank in ranks:
                lower = bound[order[rank], every]
                go = np.isfinite(lower) & ((lower <= best) | (rank < together))
                rows.append(order[rank][go])
                cols.append(every[go])
            row, col = np.concatenate(rows), np.concatenate(cols)
            if not len(row):
                break
            idx = todo_points[col]
            xy = ref_xy[row, idx]
            m, back = self._carry(steps, row, idx, xy)
            cand[row, idx, :2] = xy + m
            cand[row, idx, 2] = ref_var[row, idx] + (self.step_var + self.occluded_var + ((m + back) ** 2).sum(1))
            carry[row, idx] = False
            np.minimum.at(best, col, cand[row, idx, 2])
        cand[..., 2][carry] = np.inf  # not carried: never the choice

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
        if (self.appear_hidden is None and self.redetect is None) or t % APPEAR_EVERY:
            return
        patch = _patches(self.gray[t], self.xy[t], self.appear_half)
        fresh = visible & (_appearance_mismatch(self.templates, patch) < APPEAR_FRESH)
        slot = 1 + (t // APPEAR_EVERY) % (APPEAR_MEMORY - 1)
        self.templates[fresh, slot] = patch[fresh]

    def _redetect(self, chosen: np.ndarray, blood_ii: np.ndarray) -> None:
        """Find again each hidden point whose carried position is in view and not under blood: its
        kept appearances are searched for by normalised cross-correlation around that position
        (3 sigma either way, at least `SEARCH_MIN` tracker px); a match of at least `redetect`
        that beats every other place of the search by `UNIQUE` takes the point (`chosen` (K, 4)
        is changed): visible, with the variance of one hidden step. Without it a point hidden for
        longer than the references reach stays hidden: its candidates all come from hidden frames."""
        gray = self.gray[self.t].astype(np.float32)
        h, w = gray.shape
        half = self.appear_half
        search = (chosen[:, 3] > 0) & _in_view(chosen[:, :2], w, h) & (_window_share(blood_ii, chosen[:, :2]) <= self.blood_hidden)
        for j in np.flatnonzero(search):
            kept = [m for m in self.templates[j] if np.isfinite(m).all()]
            reach = int(np.clip(3 * np.sqrt(chosen[j, 2]), SEARCH_MIN, SEARCH_MAX))
            cx, cy = np.clip(np.round(chosen[j, :2]).astype(int), 0, [w - 1, h - 1])
            x0, y0 = max(0, cx - reach - half), max(0, cy - reach - half)
            region = gray[y0:min(h, cy + reach + half + 1), x0:min(w, cx + reach + half + 1)]
            if not kept or min(region.shape) <= 2 * (2 * half + 1):
                continue
            score = np.max([cv2.matchTemplate(region, m, cv2.TM_CCOEFF_NORMED) for m in kept], axis=0)
            by, bx = np.unravel_index(np.argmax(score), score.shape)
            best = score[by, bx]
            score[max(0, by - half):by + half + 1, max(0, bx - half):bx + half + 1] = -1  # the rest of the search
            at = np.array([[x0 + bx + half, y0 + by + half]], np.float64)
            if best >= self.redetect and best - score.max() >= UNIQUE and _window_share(blood_ii, at)[0] <= self.blood_hidden:
                chosen[j] = [at[0, 0], at[0, 1], self.step_var + self.occluded_var, 0.0]

    def _refined(self, refs: list[int], steps: list["_FlowStep"],
                 blood_ii: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Refined candidates, each (source frame (K,), (K, 4)), from each point's own motion at the input resolution
        (pyramidal LK in a window, started where the coarse flow puts it): from the previous
        frame (whatever the coarse occlusion test says there), and from the unoccluded coarse
        candidate of lowest variance of another reference. Where the coarse flow hides every
        candidate of another reference, no LK guess is made from there: started from a wrong
        place, LK can settle on a look-alike."""
        if not self.refining:
            return []
        t, k = self.t, len(self.anchor)
        prev = refs.index(t - 1) if t - 1 in refs else None
        other = [i for i in range(len(refs)) if i != prev]
        src_best, guess_best = np.full(k, -1), np.zeros((k, 2))
        if other:
            c = np.stack([steps[i].candidate for i in other])  # (R', K, 4)
            score = np.where(c[..., 3] > 0, np.inf, c[..., 2])
            best = np.argmin(score, 0)
            found = np.isfinite(score[best, np.arange(k)])
            src_best[found] = np.array(refs)[np.array(other)[best[found]]]
            guess_best[found] = c[best[found], np.flatnonzero(found), :2]
        src, guess, reach = [src_best], [guess_best], [np.full(k, REFINE_REACH)]
        if prev is not None:
            # only where the point's last position is known to within half the LK window on a frame twice
            # the tracker's size: LK follows what its window sees, which for a point placed only roughly
            # (found again after a long occlusion) can be an object passing beside it
            src.append(np.where(np.sqrt(self.var[t - 1]) <= KNOWN_SIGMA, t - 1, -1))
            guess.append(steps[prev].own)
            reach.append(np.full(k, np.inf))
        own = self._own_motion(np.concatenate(src), np.concatenate(guess), blood_ii, np.concatenate(reach))
        if prev is not None:
            # own motion overrules the coarse flow's inconsistency, not blood: where blood covers the
            # point's coarse landing it is hidden, and LK, free to slide, would carry it along the pool's edge
            own[k:][steps[prev].covered] = [0.0, 0.0, np.inf, 1.0]
        return [(s, own[i * k:(i + 1) * k]) for i, s in enumerate(src)]

    def _doubt(self, refs: list[int], cand: np.ndarray, carry: np.ndarray, confirmed: np.ndarray,
               tried: np.ndarray, blood_ii: np.ndarray) -> np.ndarray:
        """(R, K) variance the choice adds to candidates in doubt. The coarse flow (256x192) blends a thin,
        fast part of an instrument into the tissue behind it, consistently both ways: a jaw's long
        references keep finding it where it was, on the tissue, as certain as its own motion. So the
        unoccluded candidate each point would choose is refined from its reference (LK within
        `REFINE_REACH`, as the best other reference's is), then the next one, until the choice falls
        on a candidate confirmed at the input's resolution; an unconfirmed candidate further from the
        best confirmed one than `DOUBT_SIGMAS` of its sigma (and `REFINE_REACH`) is another
        hypothesis, which competes with a hidden step's cost (`occluded_var`) added. Not near blood: LK on a pool's moving edge confirms
        nothing. With `own_anchor`, a point whose own motion from the previous frame is confirmed is
        measured from it, and a far candidate LK confirmed elsewhere (a long flow that landed on a
        look-alike of a textured instrument, consistently both ways) is in doubt as well.
        With `agree`, a candidate whose refinement was not kept is refined again from its reference
        beyond the reach: where that LK lands on the confirmed candidate (within `refine_fb`), two
        references agree where the point is, and the coarse candidate (the coarse flow lagging a
        fast jaw) is replaced by the refined one. `cand`, `carry` and `confirmed` are updated."""
        k = cand.shape[1]
        every = np.arange(k)
        failed = tried & ~confirmed
        for _ in range(len(refs)):
            var = np.where((cand[..., 3] > 0) | failed, np.inf, cand[..., 2])
            best = np.argmin(var, 0)
            todo = np.isfinite(var[best, every]) & ~confirmed[best, every]
            if not todo.any():
                break
            # every point from its own reference in one pass (LK per reference inside): a pass per
            # reference cost more than its few points
            self._refine_ahead(refs, cand, var, confirmed, best, todo, blood_ii)
            src = np.where(todo, np.asarray(refs)[best], -1)
            refined = self._own_motion(src, cand[best, every, :2], blood_ii, np.full(k, REFINE_REACH))
            good = np.flatnonzero(todo & np.isfinite(refined[:, 2]))
            cand[best[good], good], carry[best[good], good], confirmed[best[good], good] = refined[good], False, True
            bad = np.flatnonzero(todo & ~np.isfinite(refined[:, 2]))
            failed[best[bad], bad] = True
        if self.agree:
            self._agree(refs, cand, carry, confirmed, failed & (cand[..., 3] == 0), blood_ii)
        held = np.where(confirmed, cand[..., 2], np.inf)
        anchor = np.argmin(held, 0)
        own = np.zeros(k, bool)
        if self.own_anchor and self.t - 1 in refs:
            prev = refs.index(self.t - 1)
            own = confirmed[prev]
            anchor = np.where(own, prev, anchor)
        sure = cand[anchor, every, :2]
        limit = np.maximum(REFINE_REACH, DOUBT_SIGMAS * np.sqrt(np.where(confirmed.any(0), held[anchor, every], 0.0)))
        apart = np.hypot(*(cand[..., :2] - sure).transpose(2, 0, 1)) > limit
        clear = _window_share(blood_ii, sure) == 0
        doubt = (confirmed.any(0) & ~confirmed | own & confirmed) & clear & (cand[..., 3] == 0) & apart
        return np.where(doubt, self.occluded_var, 0.0)

    def _refine_ahead(self, refs: list[int], cand: np.ndarray, var: np.ndarray, confirmed: np.ndarray,
                      best: np.ndarray, todo: np.ndarray, blood_ii: np.ndarray) -> None:
        """Refine, with this pass of `_doubt` (points `todo` from their `best` references), the
        candidates a later pass could refine from the same references: unconfirmed, of variance
        `var` (R, K; infinite where none can be refined) no higher than the point's best
        confirmed one. A later pass finds them in `_refinements`; an LK call per reference and
        pass costs more than a few more points in it."""
        held = np.where(confirmed, var, np.inf).min(0)
        these = np.isin(np.arange(len(refs)), best[todo])[:, None]
        ahead = these & todo & ~confirmed & np.isfinite(var) & (var <= held)
        if ahead.sum() > todo.sum():  # more than this pass's own candidates (which it holds)
            src = np.where(ahead, np.asarray(refs)[:, None], -1).ravel()
            self._refinements(src, cand[..., :2].reshape(-1, 2), blood_ii)

    def _keep_own_look(self, refs: list[int], cand: np.ndarray, best: np.ndarray, own: np.ndarray,
                       gray: np.ndarray) -> None:
        """Where a point's own motion from the previous frame is confirmed (`own`, K) and another
        reference's candidate further than the refinement's reach from it was chosen (`best`, K, is
        changed: a jump, not a correction LK could make), compare both positions with that
        reference's patch of the point: the own motion is kept where it looks at least as much
        like it. A long reference's low variance is one step's; seen from the same reference, a
        landing on a look-alike (the textured instrument's own texture, weak texture) is no better
        than the point's own consistent motion."""
        prev = refs.index(self.t - 1)
        k = cand.shape[1]
        jump = own & (best != prev) & (np.hypot(*(cand[best, np.arange(k), :2] - cand[prev, :, :2]).T) > REFINE_REACH)
        for i in np.unique(best[jump]):
            pts = np.flatnonzero(jump & (best == i))
            patch = self._ref_patches(refs[i])[pts]
            theirs = _ncc_mismatch(patch, _patches(gray, cand[i, pts, :2], PATCH))
            mine = _ncc_mismatch(patch, _patches(gray, cand[prev, pts, :2], PATCH))
            best[pts[mine <= theirs]] = prev

    def _agree(self, refs: list[int], cand: np.ndarray, carry: np.ndarray, confirmed: np.ndarray,
               retry: np.ndarray, blood_ii: np.ndarray) -> None:
        """Refine the candidates `retry` (R, K) again from their references without the reach; one
        that lands within `refine_fb` (refinement px) of the point's confirmed candidate of lowest
        variance replaces its coarse candidate (`cand`, `carry`, `confirmed` are updated). Each retry
        starts from the coarse candidate its failed refinement started from: `_refinements` has it
        already, so no LK runs here."""
        k = cand.shape[1]
        retry = retry & confirmed.any(0)
        if not retry.any():
            return
        held = np.where(confirmed, cand[..., 2], np.inf)
        sure = cand[np.argmin(held, 0), np.arange(k), :2]
        tolerance = self.refine_fb * float(np.mean(self.fine_mapper.scale))  # refinement px -> tracker px
        rows = np.flatnonzero(retry.any(1))
        # every reference's retries in one pass (all points for each reference in turn)
        src = np.concatenate([np.where(retry[i], refs[i], -1) for i in rows])
        refined = self._own_motion(src, np.concatenate(cand[rows, :, :2]), blood_ii, np.full(len(src), np.inf))
        for n, i in enumerate(rows):
            again = refined[n * k:(n + 1) * k]
            good = retry[i] & np.isfinite(again[:, 2]) & (np.hypot(*(again[:, :2] - sure).T) <= tolerance)
            cand[i, good], carry[i, good], confirmed[i, good] = again[good], False, True

    def _own_motion(self, src: np.ndarray, guess: np.ndarray, blood_ii: np.ndarray, reach: np.ndarray) -> np.ndarray:
        """(N, 4) candidates, N a multiple of the points (all points for one list of sources,
        then all for the next: one pass for both kinds of refinement): the point of row j moved
        by LK at the input resolution from its position on frame src[j] (-1: none), starting
        from guess[j] (tracker px); a candidate whose LK does
        not come back (forward-backward), lands on blood or out of view, more than reach[j]
        tracker px from its guess, or whose patch no longer matches is left out (infinite
        variance)."""
        out = self._refinements(src, guess, blood_ii)
        far = np.hypot(*(out[:, :2] - guess).T) > reach
        out[far, 2:] = [np.inf, 1.0]
        return out

    def _refinements(self, src: np.ndarray, guess: np.ndarray, blood_ii: np.ndarray) -> np.ndarray:
        """`_own_motion` without the reach test. Each (source frame, point, guess) is refined once
        per frame (`self.refined`): the agreement asks again, without the reach, for the
        refinements that failed in `_refined` and `_doubt`, from the same coarse candidates."""
        done = self.refined
        out = np.column_stack([np.zeros((len(src), 2)), np.full(len(src), np.inf), np.ones(len(src))])
        idx = np.flatnonzero(src >= 0)
        point, row = idx % len(self.anchor), np.searchsorted(done.refs, src[idx])
        known = (done.start[row, point] == guess[idx]).all(1)
        out[idx[known]] = done.cand[row[known], point[known]]
        new, point, row = idx[~known], point[~known], row[~known]
        if len(new):
            out[new] = self._refine_rows(src[new], point, guess[new], blood_ii)
            done.start[row, point], done.cand[row, point] = guess[new], out[new]
        return out

    def _refine_rows(self, src: np.ndarray, point: np.ndarray, guess: np.ndarray, blood_ii: np.ndarray) -> np.ndarray:
        """(n, 4) candidates of the points `point` (n,) moved by LK from frame src[n], starting
        from guess[n]; the tests of `_own_motion` but the reach."""
        t, w, h = self.t, *self.size
        mapper = self.fine_mapper
        to_tracker = float(np.mean(mapper.scale))  # refinement px -> tracker px
        n, side = len(src), 2 * PATCH + 1
        p, moved, fb, ok = np.empty((n, 2)), np.empty((n, 2)), np.empty(n), np.empty(n, bool)
        var, hidden, ref_patches = np.empty(n), np.empty(n, bool), np.empty((n, side, side), np.float32)
        groups, jobs = [], []
        for r in np.unique(src):  # LK per source frame (on the thread budget's cores); the tests below once on all points
            rows = np.flatnonzero(src == r)
            j = point[rows]
            p[rows], var[rows], hidden[rows], ref_patches[rows] = self.xy[r][j], self.var[r][j], self.occluded[r][j], self._ref_patches(r)[j]
            groups.append(rows)
            jobs.append((self.fine[r], self.fine[t], mapper.to_input(p[rows]), mapper.to_input(guess[rows]),
                         REFINE_WIN, REFINE_LEVELS))
        for rows, (q_rows, fb_rows, ok_rows) in zip(groups, lk_refine_many(jobs, threads())):
            moved[rows], fb[rows], ok[rows] = q_rows, fb_rows, ok_rows
        q = mapper.to_model(moved)
        motion2 = ((moved - mapper.to_input(p)) ** 2).sum(1)
        consistent = ok & (fb ** 2 <= 0.02 * motion2 + self.refine_fb ** 2)
        photo = _ncc_mismatch(ref_patches, _patches(self.gray[t], q, PATCH))
        good = (consistent & ~hidden & _in_view(q, w, h) & (photo < self.photo_hidden)
                & (_window_share(blood_ii, q) <= self.blood_hidden) & ~self._unlike(self.gray[t], q, point))
        var = var + self.step_var + (fb * to_tracker) ** 2 + (photo / self.photo_scale) ** 2
        return np.column_stack([q, np.where(good, var, np.inf), ~good])

    def _carry(self, steps: list["_FlowStep"], row: np.ndarray, idx: np.ndarray,
               xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Motion (N, 2) that carries point idx[n], at xy[n] on steps[row[n]].ref, into the new
        frame, and the same motion on the backward flow from where it lands (its consistency)."""
        used = np.unique(row)
        if self.occluded_motion == "visible":
            # one pass over the steps of every reference: the fixed cost of a pass outweighed its few points
            tissue = self._tissue(self.t)
            pairs = [(steps[i], self._tissue(steps[i].ref)) for i in used]
            which = np.searchsorted(used, row)
            m = _visible_motion([(s.fwd, s.bwd, ref_tissue, tissue) for s, ref_tissue in pairs], which, xy)
            return m, _visible_motion([(s.bwd, s.fwd, tissue, ref_tissue) for s, ref_tissue in pairs], which, xy + m)
        m, back = np.empty((len(row), 2)), np.empty((len(row), 2))
        for i in used:
            n = np.flatnonzero(row == i)
            m[n], back[n] = self._carry_by_flow(steps[i], idx[n], xy[n])
        return m, back

    def _carry_by_flow(self, s: "_FlowStep", idx: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_carry` of the points `idx`, at `xy` on s.ref, by the "scene" or "surround" motion."""
        if self.occluded_motion == "scene":
            m = _scene_motion(s.fwd, xy)
            return m, _scene_motion(s.bwd, xy + m)
        m = s.surround[idx]  # the median around the point, already taken near the view's edge
        missing = np.isnan(m[:, 0])
        if missing.any():
            m[missing] = _surround_motion(s.fwd, xy[missing])
        return m, _surround_motion(s.bwd, xy + m)

    def _forget(self, t: int) -> None:
        """Keep the start frame and the frames a later step can still reach."""
        oldest, anchors = t + 1 - max(self.deltas), set(self.anchor.tolist())
        for r in [r for r in self.gray if r < oldest and r not in anchors]:
            del self.gray[r], self.xy[r], self.var[r], self.occluded[r]
            for kept in (self.fine, self.small, self.blood, self.tissue, self.patches):
                kept.pop(r, None)


def _mean_of_hidden(chosen: np.ndarray, cand: np.ndarray, hidden: np.ndarray) -> None:
    """Each `hidden` point (K,: no unoccluded candidate) placed at the inverse-variance weighted
    mean of its carried candidates (`cand` (R, K, 4); `chosen` (K, 4) is changed, its variance
    stays the lowest one's). References carried by different tissue fits err apart, so their mean
    wanders less than whichever one has the lowest variance from frame to frame."""
    var = cand[..., 2]
    for j in np.flatnonzero(hidden & (np.isfinite(var).sum(0) > 1)):
        ok = np.isfinite(var[:, j])
        w = 1.0 / np.maximum(var[ok, j], 1e-9)
        chosen[j, :2] = (cand[ok, j, :2] * w[:, None]).sum(0) / w.sum()


def _window_flow_range(flow: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (K, 2) and (K, 2) of the flow (dx, dy) in the `SURROUND` window around each point:
    the least and largest flow over the blocks of `RANGE_BLOCK` px the window touches, so the
    window's median lies between them. OpenCV's filters on both channels at once: numpy's
    reduction over the interleaved (N, 2) layout costs ~40x more. For up to `FEW_RANGES` points
    each window's blocks are read directly (the same least and largest), cheaper than filtering
    the whole flow."""
    h, w = flow.shape[:2]
    reach = 2 * (SURROUND // RANGE_BLOCK) + 1  # blocks the window can touch, around the point's block
    block, around = np.ones((RANGE_BLOCK, RANGE_BLOCK), np.uint8), np.ones((reach, reach), np.uint8)
    cx, cy = _centres(xy, w, h)
    bx, by = cx // RANGE_BLOCK, cy // RANGE_BLOCK
    lo, hi = np.empty((len(cx), 2)), np.empty((len(cx), 2))
    if len(cx) <= FEW_RANGES:
        side = SURROUND // RANGE_BLOCK
        for j in range(len(cx)):
            y0, x0 = max(0, by[j] - side) * RANGE_BLOCK, max(0, bx[j] - side) * RANGE_BLOCK
            region = flow[y0:(by[j] + side + 1) * RANGE_BLOCK, x0:(bx[j] + side + 1) * RANGE_BLOCK]
            for k in range(2):  # per channel: a strided 2-D view reduces fast
                lo[j, k], hi[j, k] = region[..., k].min(), region[..., k].max()
        return lo, hi
    # erode / dilate anchored at the block's corner: the least / largest of each block (outside: ignored)
    least = cv2.erode(flow, block, anchor=(0, 0))[::RANGE_BLOCK, ::RANGE_BLOCK]
    largest = cv2.dilate(flow, block, anchor=(0, 0))[::RANGE_BLOCK, ::RANGE_BLOCK]
    lo[:] = cv2.erode(np.ascontiguousarray(least), around)[by, bx]
    hi[:] = cv2.dilate(np.ascontiguousarray(largest), around)[by, bx]
    return lo, hi


def _centres(xy: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's pixel, x (K,) and y (K,): rounded and clipped to the w x h frame (np.minimum /
    np.maximum: np.clip's overhead outweighs the work on a few points)."""
    c = np.minimum(np.maximum(np.round(np.asarray(xy, np.float64).reshape(-1, 2)).astype(int), 0), [w - 1, h - 1])
    return c[:, 0], c[:, 1]


def _in_view(xy: np.ndarray, w: int, h: int) -> np.ndarray:
    return (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)


def _window_share(integral: np.ndarray, xy: np.ndarray, half: int = WINDOW) -> np.ndarray:
    """Share of a mask in the (2 half + 1)² window around each point (K,), clipped to the frame,
    from the mask's integral image (`cv2.integral`)."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    x, y = _centres(xy, w, h)
    x0, x1, y0, y1 = np.maximum(0, x - half), np.minimum(w, x + half + 1), np.maximum(0, y - half), np.minimum(h, y + half + 1)
    count = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return count / ((x1 - x0) * (y1 - y0))


def _grid(xy: np.ndarray, w: int, h: int, half: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample positions (K, S) every `step` px of the window of half-width `half` around each
    point (its centre rounded, the window clipped to the frame, rows outer), and which are real:
    windows clipped at the border hold fewer samples."""
    cx, cy = _centres(xy, w, h)
    offsets = np.arange(0, 2 * half + 1, step)
    gx = np.maximum(0, cx - half)[:, None] + offsets  # (K, n)
    gy = np.maximum(0, cy - half)[:, None] + offsets
    vx, vy = gx < np.minimum(w, cx + half + 1)[:, None], gy < np.minimum(h, cy + half + 1)[:, None]
    k, n = len(cx), len(offsets)
    gx, gy = np.broadcast_to(gx[:, None, :], (k, n, n)), np.broadcast_to(gy[:, :, None], (k, n, n))
    valid = vy[:, :, None] & vx[:, None, :]
    return np.minimum(gx, w - 1).reshape(k, -1), np.minimum(gy, h - 1).reshape(k, -1), valid.reshape(k, -1)


def _surround_motion(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Median flow (K, 2) of the wide window around each point: the motion of what surrounds it."""
    h, w = flow.shape[:2]
    cx, cy = _centres(xy, w, h)
    out = np.empty((len(cx), 2))
    for j in range(len(cx)):  # the window's slice (clipped to the frame): a third of the cost of a NaN-padded grid
        window = flow[max(0, cy[j] - SURROUND):cy[j] + SURROUND + 1, max(0, cx[j] - SURROUND):cx[j] + SURROUND + 1]
        out[j] = np.median(window.reshape(-1, 2), axis=0)
    return out


def _scene_motion(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Motion (K, 2) of each point under the view's dominant similarity transform, fitted once
    to the whole flow; the surround median where the fit fails."""
    transform = scene_motion(flow)
    if transform is None:
        return _surround_motion(flow, xy)
    return xy @ transform[:, :2].T + transform[:, 2] - xy


def _visible_motion(fields: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], which: np.ndarray,
                    xy: np.ndarray) -> np.ndarray:
    """Motion (K, 2) of each point along its flow a -> b under a similarity fitted to the visible
    tissue around it; fields[which[j]] = (flow a -> b, back b -> a, tissue of a, tissue of b) of
    point j (the steps of several references in one pass). The window samples used are tissue
    in a, land on tissue in b and come back along `back`, so blood, the black frame and what the
    flow cannot follow are left out; RANSAC, then a least-squares fit to the inliers weighted by
    closeness to the point. Where too few such samples remain, the similarity of all the view's
    visible tissue (once per flow), and where that fails too, the median flow around the point."""
    h, w = fields[0][0].shape[:2]
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    gx, gy, valid = _grid(xy, w, h, SURROUND, SAMPLE_STEP)  # (K, S)
    groups = [(fields[i], np.flatnonzero(which == i)) for i in np.unique(which)]
    # reads by flat pixel index (take): several times cheaper than 2-D fancy indexing, the same values
    at = gy * w + gx
    f = np.empty((*gx.shape, 2))
    for (flow, _, _, _), j in groups:
        f[j] = flow.reshape(-1, 2).take(at[j], axis=0)
    tx, ty = np.round(gx + f[..., 0]).astype(int), np.round(gy + f[..., 1]).astype(int)
    lands = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    to = np.minimum(np.maximum(ty, 0), h - 1) * w + np.minimum(np.maximum(tx, 0), w - 1)
    bk = np.empty((*gx.shape, 2), np.float32)  # the flow's own type: its squares below too
    ok = valid & lands
    for (_, back, tissue_a, tissue_b), j in groups:
        bk[j] = back.reshape(-1, 2).take(to[j], axis=0)
        ok[j] &= tissue_a.ravel().take(at[j]) & tissue_b.ravel().take(to[j])
    ok &= _sq(f + bk) < 0.01 * (_sq(f) + _sq(bk)) + 1.0  # comes back along `back`
    rel = np.stack([gx - xy[:, :1], gy - xy[:, 1:]], -1)  # (K, S, 2)
    inlier = np.zeros_like(ok)
    for j in np.flatnonzero(ok.sum(1) >= MIN_VISIBLE):  # RANSAC per point: its own window's outliers
        kept = np.flatnonzero(ok[j])
        fit = _similarity_inliers(rel[j, kept], f[j, kept])
        if fit is not None:
            inlier[j, kept[fit]] = True
    out = np.full((len(xy), 2), np.nan)
    fitted = inlier.any(1)
    if fitted.any():
        out[fitted] = _weighted_similarity(rel[fitted], f[fitted], inlier[fitted])
    for (flow, _, tissue_a, _), j in groups:
        rest = j[~fitted[j]]
        if not len(rest):
            continue
        scene = scene_motion(flow, tissue_a)
        if scene is None:
            out[rest] = _surround_motion(flow, xy[rest])
        else:
            out[rest] = xy[rest] @ scene[:, :2].T + scene[:, 2] - xy[rest]
    return out


def _sq(v: np.ndarray) -> np.ndarray:
    """Squared length (...,) of vectors (..., 2), in their own type: the two channels added
    (numpy's reduction over a last axis of 2 costs several times more, for the same sum)."""
    return v[..., 0] ** 2 + v[..., 1] ** 2


def _similarity_inliers(rel: np.ndarray, f: np.ndarray) -> np.ndarray | None:
    """Inliers (bool, N) of the similarity that moves samples at `rel` by `f` (RANSAC, `FIT_PX`);
    None with fewer than `MIN_VISIBLE` // 2 of them."""
    # refineIters=0: only the inlier set is used, and the model's refinement does not change it
    _, inliers = cv2.estimateAffinePartial2D(rel.astype(np.float32), (rel + f).astype(np.float32),
                                             method=cv2.RANSAC, ransacReprojThreshold=FIT_PX, refineIters=0)
    if inliers is None or inliers.sum() < MIN_VISIBLE // 2:
        return None
    return inliers.ravel() > 0


def _weighted_similarity(rel: np.ndarray, f: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Translation (K, 2) at the origin of the similarity fitted by least squares to the samples
    `keep` (K, S) at `rel` (K, S, 2, relative to each point) moved by `f`, weighted by closeness."""
    r2 = _sq(rel)
    weight = np.where(keep, np.exp(-r2 / (2 * (SURROUND / 2) ** 2)), 0.0)
    # (rel + f) = [[a, -b], [b, a]] rel + t in the unknowns (a, b, tx, ty): weighted normal equations
    x, y = rel[..., 0], rel[..., 1]
    u, v = x + f[..., 0], y + f[..., 1]
    sw, sx, sy = weight.sum(1), (weight * x).sum(1), (weight * y).sum(1)
    sxx = (weight * r2).sum(1)
    zero = np.zeros_like(sw)
    normal = np.stack([np.stack([sxx, zero, sx, sy], -1), np.stack([zero, sxx, -sy, sx], -1),
                       np.stack([sx, -sy, sw, zero], -1), np.stack([sy, sx, zero, sw], -1)], 1)
    rhs = np.stack([(weight * (x * u + y * v)).sum(1), (weight * (x * v - y * u)).sum(1),
                    (weight * u).sum(1), (weight * v).sum(1)], -1)
    return np.linalg.solve(normal, rhs[..., None])[:, 2:, 0]


def _ncc_mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - normalised cross-correlation of matching patches a, b (K, S, S), in [0, 2]; flat
    patches (blood, glare) compare by their small contrast, not by noise."""
    ab = np.stack([a, b])  # (2, K, S, S): one reduction for both
    ab = ab - ab.mean(axis=(2, 3), keepdims=True)
    power = (ab ** 2).mean(axis=(2, 3)) + FLAT ** 2
    ncc = (ab[0] * ab[1]).mean(axis=(1, 2)) / np.sqrt(power[0] * power[1])
    return 1.0 - ncc.astype(np.float64)


def _patches(gray: np.ndarray, xy: np.ndarray, half: int) -> np.ndarray:
    """(K, 2 half + 1, 2 half + 1) float32 patches of `gray` centred on sub-pixel points
    (bilinear, the border replicated outside the frame)."""
    h, w = gray.shape[:2]
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if len(xy) > PATCH_CHUNK:  # in passes whose temporaries stay in the cache: ~3x faster per point
        return np.concatenate([_patches(gray, xy[i:i + PATCH_CHUNK], half) for i in range(0, len(xy), PATCH_CHUNK)])
    offsets = np.arange(-half, half + 1)
    x, y = xy[:, :1] + offsets, xy[:, 1:] + offsets  # (K, S): the patch's columns and rows
    x0, y0 = np.floor(x), np.floor(y)
    ax, ay = (x - x0)[:, None, :], (y - y0)[:, :, None]
    xa, xb = (np.minimum(np.maximum(x0 + d, 0), w - 1).astype(int)[:, None, :] for d in (0, 1))
    ya, yb = (np.minimum(np.maximum(y0 + d, 0), h - 1).astype(int)[:, :, None] * w for d in (0, 1))
    # flat indices into the uint8 image (the float64 weights promote it exactly): cheaper than
    # 2-D fancy indexing, and than converting the whole frame
    g = gray.ravel()
    top = g.take(ya + xa) * (1 - ax) + g.take(ya + xb) * ax
    bottom = g.take(yb + xa) * (1 - ax) + g.take(yb + xb) * ax
    return (top * (1 - ay) + bottom * ay).astype(np.float32)


def _appearance_mismatch(templates: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """(K,) 1 - the best normalised cross-correlation of each patch (K, S, S) with the point's
    kept appearances (K, M, S, S; NaN where none is kept yet); flat patches compare by their
    small contrast, as in `_ncc_mismatch`."""
    a = templates - templates.mean(axis=(2, 3), keepdims=True)  # NaN where no appearance is kept
    b = (patches - patches.mean(axis=(1, 2), keepdims=True))[:, None]
    ncc = (a * b).mean(axis=(2, 3)) / np.sqrt(((a ** 2).mean(axis=(2, 3)) + FLAT ** 2) * ((b ** 2).mean(axis=(2, 3)) + FLAT ** 2))
    return 1.0 - np.nanmax(np.where(np.isnan(ncc), -np.inf, ncc), axis=1) if len(ncc) else np.zeros(0)


# Configurations compared in docs/tracking-choices.md, by registry name; the class defaults are `track_mft_own`
# (the pipeline ships `track_mft_own_agree_mean`).
CONFIGS = {
    "track_mft_own": {},
    "track_mft_own_match": {"match_first": True},
    "track_mft_own_mean": {"hidden_estimate": "mean"},
    "track_mft_own_match_mean": {"match_first": True, "hidden_estimate": "mean"},
    "track_mft_own_appear": {"appear_hidden": 0.3},
    "track_mft_own_anchor": {"own_anchor": True},
    "track_mft_own_agree": {"agree": True},
    "track_mft_own_agree_mean": {"agree": True, "hidden_estimate": "mean"},
    "track_mft_own_look": {"agree": True, "own_look": True},
    "track_mft_visible": {"refine": False},
    "track_mft": {"refine": False, "occluded_motion": "surround"},
    "track_mft512": {"refine": False, "occluded_motion": "surround", "size": (512, 384)},
    "track_mft_scene": {"refine": False, "occluded_motion": "scene"},
    "track_mft_redetect": {"refine": False, "redetect": 0.8},
}


def _register(name: str, settings: dict) -> None:
    @register_model(name)
    def factory(**options: object) -> MultiFlowTracker:
        options.pop("device", None)  # classical flow: always the CPU
        return MultiFlowTracker(**{**settings, **options}, name=name)  # type: ignore[arg-type]


for _name, _settings in CONFIGS.items():
    _register(_name, _settings)
