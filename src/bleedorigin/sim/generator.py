"""BleedSim clip generator: tissue + camera + blood + nuisances -> frames and exact truth.

Per frame: one backward map (camera homography composed with elastic deformation, then the
optional local motion of sim/local_motion.py) warps the static tissue texture and the blood layer; truth points (source + K tracks) live in texture
coordinates and go through the inverse of that same map.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.sim.appearance import Appearance, apply_appearance
from bleedorigin.sim.blood import BloodField
from bleedorigin.sim.camera import ElasticField, ViewWarp, camera_path
from bleedorigin.sim.local_motion import LocalMotion
from bleedorigin.sim.nuisances import Q, Glare, Instrument, WaterJet
from bleedorigin.sim.optics import apply_optics, make_optics
from bleedorigin.sim.scenarios import (HARD_CASES, NEGATIVE_HARD_CASES, NEGATIVE_SCENARIOS, SCENARIOS,
                                       ClipSpec, clip_spec, patient_id, patient_rng, scenario_params,
                                       vary_blood_look)
from bleedorigin.sim.tissue import SITE_PRESETS, SITES, raise_white_mound, render_tissue

log = logging.getLogger(__name__)

FPS = 30.0
TEX_SCALE = 1.6      # texture is this much larger than the view, so motion never leaves it
MASK_ALPHA = 0.3     # blood opacity above which a pixel counts as blood in blood_mask
COVER_ALPHA = 0.85   # blood opacity above which a tissue point counts as hidden


@dataclass
class SimClip:
    frames: np.ndarray          # (T, H, W, 3) uint8 RGB
    fps: float
    onset_frame: int | None
    source_xy: np.ndarray       # (T, 2) float32, also before onset (moves with the tissue)
    source_visible: np.ndarray  # (T,) bool
    tracks_xy: np.ndarray       # (T, K, 2) float32
    tracks_visible: np.ndarray  # (T, K) bool
    blood_mask: np.ndarray      # (T, H, W) bool: blood on the tissue inside the field stop
    scenario: str
    site: str
    kind: str
    patient: str
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def _rng(seed: int, part: int) -> np.random.Generator:
    """One independent stream per component: changing one part never reshuffles the others."""
    return np.random.default_rng([seed, part])


class ClipSimulator:
    """All per-clip random choices, made up front; `run()` renders. Tests may edit
    `tissue.texture` (e.g. paint markers at `track_tex`) before running."""

    def __init__(self, kind: str, seed: int, size: tuple[int, int] = (512, 384),
                 num_frames: int | None = None, scenario: str | None = None,
                 site: str | None = None, num_tracks: int = 64, vary_blood: bool = False,
                 local_motion: bool = False):
        w, h = int(size[0]), int(size[1])
        if w < 64 or h < 48:
            raise InputError(f"frame size {w}x{h} too small (minimum 64x48)")
        if num_tracks < 0:
            raise InputError(f"num_tracks must be >= 0, got {num_tracks}")
        self.seed, self.kind, self.view = int(seed), kind, (w, h)
        self.spec: ClipSpec = clip_spec(kind, _rng(seed, 1), num_frames)
        prng = patient_rng(seed)
        self.site = site if site is not None else SITES[int(prng.integers(len(SITES)))]
        if self.site not in SITES:
            raise InputError(f"unknown site {self.site!r}; expected one of {', '.join(SITES)}")
        choices = NEGATIVE_SCENARIOS if kind == "negative" else SCENARIOS
        self.scenario = scenario if scenario is not None else choices[int(_rng(seed, 2).integers(len(choices)))]
        if kind == "negative" and self.scenario in ("obscured_view",) + HARD_CASES \
                and self.scenario not in NEGATIVE_HARD_CASES:
            raise InputError(f"scenario {self.scenario!r} needs bleeding; not valid for negatives")
        self.params = scenario_params(self.scenario, _rng(seed, 3))
        if vary_blood:
            vary_blood_look(self.params.blood, _rng(seed, 12))
        n = self.spec.num_frames
        tex = (int(w * TEX_SCALE), int(h * TEX_SCALE))
        self.tex_size = tex
        self.tissue = render_tissue(_rng(seed, 4), self.site, tex, crimson=self.scenario == "crimson_bed")
        self.warp = ViewWarp(self.view)
        self.path = camera_path(_rng(seed, 5), n, self.view, tex, self.params.motion)
        self.elastic = ElasticField(_rng(seed, 6), (self.warp.gw, self.warp.gh),
                                    self.params.motion.elastic, self.params.motion.speed)
        self.optics = make_optics(_rng(seed, 7), self.view)
        r = _rng(seed, 8)
        self.instrument = Instrument(r, self.view, n, self.params.instrument_always) \
            if self.params.instrument else None
        self.glare = Glare(r, self.view, n) if self.params.glare else None
        self.water = WaterJet(r, self.view, n) if self.params.water else None
        self.local = LocalMotion.random(_rng(seed, 14), self.view, n, self.instrument) if local_motion else None
        # truth points, chosen in the view where they must be visible, then fixed in the tissue
        r = _rng(seed, 9)
        t_src = self.spec.onset if self.spec.onset is not None else n // 2
        src_view = r.uniform((0.3 * w, 0.3 * h), (0.7 * w, 0.7 * h), 2)
        self.source_tex = self._view_to_tex(t_src, src_view[None])[0]
        pts = self._sample_fov(r, num_tracks)
        self.track_tex = self._view_to_tex(0, pts) if num_tracks else np.zeros((0, 2))
        if self.water is not None:
            self._plan_flushing(_rng(seed, 11), t_src, src_view)
        if self.scenario == "white_mound":
            white = np.array(SITE_PRESETS[self.site].submucosa, np.float32)
            raise_white_mound(self.tissue, self.source_tex, 0.07 * tex[0], white)
        self.blood = BloodField(_rng(seed, 10), tex, self.tissue.height, self.source_tex, self.params.blood) \
            if self.spec.onset is not None else None

    def _plan_flushing(self, r: np.random.Generator, t_src: int, src_view: np.ndarray) -> None:
        """Before bleeding the jet cleans the dissection area, a tissue point near (not on) the
        future source; the endoscopist turns it on the source only a reaction time after the
        onset. A jet aimed at the source before it bleeds would both hide the onset and give
        away where it will happen."""
        w, h = self.view
        ang, dist = r.uniform(0, 2 * np.pi), r.uniform(0.2, 0.35) * w
        work = np.clip(src_view + dist * np.array([np.cos(ang), np.sin(ang)]),
                       (0.15 * w, 0.15 * h), (0.85 * w, 0.85 * h))
        self.work_tex = self._view_to_tex(t_src, work[None])[0]
        self.reaction_frames = int(r.integers(5, 21))  # 0.17-0.67 s at 30 fps

    def _jet_on_source(self, t: int) -> bool:
        onset = self.spec.onset
        return onset is not None and t - onset + self.spec.preroll >= self.reaction_frames

    def _view_to_tex(self, t: int, xy: np.ndarray) -> np.ndarray:
        return self.warp.sample(self._map(t), np.linalg.inv(self.path[t]), xy)

    def _map(self, t: int) -> np.ndarray:
        """Frame t's backward map at the grid nodes: camera, elastic field, then local motion."""
        low = self.warp.frame_map(self.path[t], self.elastic.at(t))
        if self.local is None:
            return low
        shift = self.local.at(t, self.warp.nodes[..., :2])
        return self.warp.displaced(low, np.linalg.inv(self.path[t]), shift) if shift.any() else low

    def _sample_fov(self, r: np.random.Generator, k: int) -> np.ndarray:
        w, h = self.view
        out = np.zeros((0, 2))
        while len(out) < k:
            cand = r.uniform((4, 4), (w - 5, h - 5), (2 * k, 2))
            ok = self.optics.fov[cand[:, 1].round().astype(int), cand[:, 0].round().astype(int)]
            out = np.concatenate([out, cand[ok]])
        return out[:k]

    def run(self) -> SimClip:
        """Render the clip. Once only: the blood state advances as frames are made."""
        if getattr(self, "_ran", False):
            raise RuntimeError("ClipSimulator.run() can only be called once; build a new simulator")
        self._ran = True
        w, h = self.view
        n, onset = self.spec.num_frames, self.spec.onset
        k = len(self.track_tex)
        frames = np.empty((n, h, w, 3), np.uint8)
        blood_mask = np.zeros((n, h, w), bool)
        pts_xy = np.empty((n, k + 1, 2), np.float32)
        pts_vis = np.empty((n, k + 1), bool)
        pts_tex = np.concatenate([self.source_tex[None], self.track_tex])
        # texture pre-shrunk to the render scale (no aliasing when sampling it small)
        s = self.optics.down
        self._tex_small = cv2.resize(self.tissue.texture, (round(self.tex_size[0] * s), round(self.tex_size[1] * s)),
                                     interpolation=cv2.INTER_AREA)
        self._tex_scale = (self._tex_small.shape[1] / self.tex_size[0], self._tex_small.shape[0] / self.tex_size[1])
        if self.blood is not None and self.spec.preroll:
            self.blood.seed_onset(1.0)
            for _ in range(self.spec.preroll):
                self.blood.step()
        for t in range(n):
            blood_mask[t], pts_xy[t], pts_vis[t] = self._frame(t, onset, pts_tex, frames[t])
        return SimClip(frames=frames, fps=FPS, onset_frame=onset, source_xy=pts_xy[:, 0].copy(),
                       source_visible=pts_vis[:, 0].copy(), tracks_xy=pts_xy[:, 1:].copy(),
                       tracks_visible=pts_vis[:, 1:].copy(), blood_mask=blood_mask,
                       scenario=self.scenario, site=self.site, kind=self.kind,
                       patient=patient_id(self.seed), seed=self.seed)

    def _frame(self, t: int, onset: int | None, pts_tex: np.ndarray, out: np.ndarray):  # noqa: ANN202
        w, h = self.view
        rs, s = self.optics.render_size, self.optics.down
        hm = self.path[t]
        low = self._map(t)
        view_pts = self.warp.to_view(low, hm, pts_tex)
        if self.water is not None:
            aim = view_pts[0] if self._jet_on_source(t) else self.warp.to_view(low, hm, self.work_tex[None])[0]
            # the aim may be far outside the view (or its inversion diverged)
            aim = np.clip(np.nan_to_num(aim, nan=0.0), (0, 0), (w - 1, h - 1))
            self.water.target = 0.7 * self.water.target + 0.3 * aim
        bleeding = self.blood is not None and onset is not None and t >= onset
        if bleeding:
            if t == onset and not self.spec.preroll:
                self.blood.seed_onset(1.0)
            self.blood.step()
            if self.water is not None and self.water.level(t) > 0.05:
                self._wash(t, hm)
        sx, sy = self._tex_scale
        tmap = cv2.resize(low * np.float32([sx, sy]) + np.float32([0.5 * sx - 0.5, 0.5 * sy - 0.5]), rs,
                          interpolation=cv2.INTER_LINEAR)
        img = cv2.remap(self._tex_small, tmap, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((h, w), bool)
        alpha_pts = np.zeros(len(pts_tex))
        if bleeding:
            cell = self.blood.cell
            cmap = cv2.resize(low * (1.0 / cell) + (0.5 / cell - 0.5), rs, interpolation=cv2.INTER_LINEAR)
            # cubic: bilinear creases of the coarse grid would show once the frame is sharpened
            layer = cv2.remap(self.blood.rgba(), cmap, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
            a8 = cv2.extractChannel(layer, 3)
            a = a8.astype(np.float32) * (1.0 / 255)
            img = cv2.blendLinear(img, cv2.cvtColor(layer, cv2.COLOR_RGBA2RGB), 1.0 - a, a)
            mask = (cv2.resize(a8, (w, h), interpolation=cv2.INTER_LINEAR) > int(MASK_ALPHA * 255)) & self.optics.fov
            alpha_pts = self.blood.alpha_at(pts_tex)
        hidden = alpha_pts > COVER_ALPHA
        hidden[0] = bleeding and self.blood.surrounded(pts_tex[0], thr=COVER_ALPHA)
        if self.local is not None:
            hidden |= self._unresolved(low, hm, view_pts, pts_tex)
        extra_blur, bright = 0.0, 1.0
        if self.glare is not None:
            img = self.glare.draw(img, t)
            hidden |= self.glare.hides(t, view_pts)
        if self.water is not None:
            img = self.water.draw(img, t)
            hidden |= self.water.hides(t, view_pts)
            lv = self.water.level(t)
            extra_blur, bright = lv * self.water.blur, 1.0 + lv * (self.water.bright - 1.0)
        if self.instrument is not None:
            self.instrument.draw(img, t, s)
            hidden |= self.instrument.hides(t, view_pts)
        if self.params.motion.jitter > 0 and t > 0:  # shake blurs the frame
            extra_blur += 0.15 * float(np.linalg.norm(self.path[t][:2, 2] - self.path[t - 1][:2, 2]))
        apply_optics(img, self.optics, t, extra_blur, bright, out=out)
        xi = np.round(view_pts[:, 0]).astype(int)
        yi = np.round(view_pts[:, 1]).astype(int)
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        inside[inside] = self.optics.fov[yi[inside], xi[inside]]
        return mask, view_pts, inside & ~hidden

    def _unresolved(self, low: np.ndarray, hm: np.ndarray, view_pts: np.ndarray, pts_tex: np.ndarray) -> np.ndarray:
        """Points whose inversion did not converge: tissue pushed into the half-cell band at the
        frame border, where the map (clamped like cv2.resize) repeats the edge row, so the frame
        does not show that tissue. Local motion pushes tissue there more often than the camera."""
        back = self.warp.sample(low, np.linalg.inv(hm), view_pts)
        return np.linalg.norm(back - pts_tex, axis=1) > 0.5

    def _wash(self, t: int, hm: np.ndarray) -> None:
        """Map the jet (drawn in the view at 1/Q res) onto the blood grid and thin the blood there."""
        jet = self.water.alpha(t)
        gh, gw = self.blood.shape
        c = self.blood.cell
        grid_to_view = np.diag([1.0 / Q, 1.0 / Q, 1.0]) @ hm @ np.array([[c, 0, 0.5 * c - 0.5], [0, c, 0.5 * c - 0.5], [0, 0, 1.0]])
        m = cv2.warpPerspective(jet, grid_to_view, (gw, gh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        # water spreads beyond the visible jet core where it hits the tissue
        m = cv2.GaussianBlur(m, (0, 0), 3.0) * 2.0
        self.blood.wash(np.clip(m, 0, 1), self.water.strength)


def generate_clip(kind: str, seed: int, size: tuple[int, int] = (512, 384), num_frames: int | None = None,
                  scenario: str | None = None, site: str | None = None, num_tracks: int = 64,
                  vary_blood: bool = False, appearance: Appearance | None = None,
                  local_motion: bool = False) -> SimClip:
    """One synthetic clip in memory with exact truth; deterministic for (kind, seed, options).
    `vary_blood` randomises the blood's colour and darkening (training-time domain randomisation);
    `appearance` adds BleedSim v2 appearance features (sim/appearance.py) to the frames;
    `local_motion` adds local tissue deformation and instrument pulls (sim/local_motion.py)."""
    sim = ClipSimulator(kind, seed, size, num_frames, scenario, site, num_tracks, vary_blood, local_motion)
    log.debug("sim clip kind=%s seed=%d scenario=%s site=%s frames=%d", kind, seed, sim.scenario,
              sim.site, sim.spec.num_frames)
    clip = sim.run()
    if appearance is not None:
        clip.frames = with_appearance(clip, appearance)
    return clip


def with_appearance(clip: SimClip, appearance: Appearance) -> np.ndarray:
    """The clip's frames with BleedSim v2 appearance features, from the clip's own random stream."""
    return apply_appearance(clip.frames, clip.blood_mask, appearance, _rng(clip.seed, 13))
