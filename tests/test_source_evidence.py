"""Source evidence that transfers: where the source cannot be, the rim prior, where blood kept
appearing over earlier frames; the fused confidence; locate --history; the pipeline hand-off."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import RaiseAt

from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.loading import load_stage
from bleedorigin.errors import ConfigError
from bleedorigin.models.source.evidence import (EvidenceConfig, centre_prior, flow_map, growth_map, rim_prior,
                                                support_map)
from bleedorigin.models.source.fusion import (RED, EvidenceMaps, FusionConfig, confidence, fuse, point_estimate,
                                              posterior)
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import shipped_config
from bleedorigin.types import Point

W, H = 192, 144


def _tissue(seed: int = 0, size: tuple[int, int] = (W + 40, H + 40)) -> np.ndarray:
    """Smooth pink mucosa texture (larger than a frame, so a camera can move over it)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.normal(0, 1, size[::-1]).astype(np.float32), (0, 0), 3)
    tex = 30 * tex / tex.std()
    return np.stack([200 + tex, 120 + tex, 125 + tex], -1).clip(0, 255).astype(np.uint8)


def _in_view(img: np.ndarray) -> np.ndarray:
    """A round field of view, black outside (the endoscope's field stop)."""
    out = img.copy()
    yy, xx = np.mgrid[:H, :W]
    out[(xx - W / 2) ** 2 / (0.48 * W) ** 2 + (yy - H / 2) ** 2 / (0.48 * H) ** 2 > 1] = 0
    return out


def test_support_excludes_the_field_stop_and_glare_and_lowers_grey_surfaces():
    img = _tissue()[:H, :W].copy()
    img[60:70, 60:70] = 250  # glare: white, unsaturated
    img[30:60, 120:160] = 128  # instrument: grey
    frame = _in_view(img)
    s = support_map(frame)
    assert s[2, 2] == 0 and s[H - 3, W - 3] == 0  # outside the lit view
    assert s[65, 65] == 0  # on the glare
    assert s[45, 140] < 0.5 * s[100, 90]  # grey surface against mucosa
    assert s[100, 90] > 0.9


def test_rim_prior_is_zero_at_the_edge_and_one_inside():
    fov = np.zeros((H, W), bool)
    fov[10:H - 10, 10:W - 10] = True
    p = rim_prior(fov, 0.5)
    assert p[0, 0] == 0 and p[10, W // 2] < 0.1
    assert p[H // 2, W // 2] == pytest.approx(1.0)
    row = p[H // 2, 10:W // 2]
    assert np.all(np.diff(row) >= -1e-6)  # rises towards the middle


def test_growth_map_finds_where_blood_appeared_first_despite_camera_motion():
    """Blood starts at a point of the scene and spreads while the camera pans; the growth map
    peaks near that point in the current frame, not in the middle of the pool."""
    scene = _tissue(1)
    src = np.array([70.0, 80.0])  # scene pixels
    yy, xx = np.mgrid[:scene.shape[0], :scene.shape[1]]
    frames = []
    for t in range(16):
        img = scene.copy()
        r = 3 + 2.0 * t
        pool = (xx - src[0] - 0.8 * r) ** 2 + (yy - src[1]) ** 2 <= r * r  # spreads to the right
        pool |= (xx - src[0]) ** 2 + (yy - src[1]) ** 2 <= 9
        img[pool] = (130, 15, 20)
        ox, oy = t, t // 2  # camera pans
        frames.append(np.ascontiguousarray(img[oy:oy + H, ox:ox + W]))
    now, history = frames[-1], frames[:-1]
    g = growth_map(now, history, EvidenceConfig())
    assert g is not None
    y, x = np.unravel_index(int(np.argmax(g)), g.shape)
    truth = src - (15, 15 // 2)
    pool_centre = truth + (0.8 * 33, 0)
    assert np.hypot(x - truth[0], y - truth[1]) < np.hypot(x - pool_centre[0], y - pool_centre[1])
    assert np.hypot(x - truth[0], y - truth[1]) < 15
    assert growth_map(now, [], EvidenceConfig()) is None


def test_confidence_is_the_score_margin_over_places_farther_away():
    """One place a score unit above everything more than 2 radii away: 1 - exp(-1); two equal
    places far apart: 0, however sharp each is."""
    score = np.zeros((H, W), np.float32)
    score[70, 60] = 1.0
    assert confidence(posterior(score), (60.0, 70.0), 10.0) == pytest.approx(1 - np.exp(-1), abs=1e-4)
    score[40, 150] = 1.0
    assert confidence(posterior(score), (60.0, 70.0), 10.0) == pytest.approx(0.0, abs=1e-4)
    score[40, 150] = 0.0
    score[75, 60] = 1.0  # a second peak inside 2 radii is the same place
    assert confidence(posterior(score), (60.0, 70.0), 10.0) == pytest.approx(1 - np.exp(-1), abs=1e-4)


def test_confidence_of_one_pool_two_far_pools_and_no_blood():
    """Through the red fusion: one clear pool is confident; two equal pools far apart
    leave the answer a guess; a blood-free frame is not confident either (below 0.5, the
    threshold under which `run` marks the source as uncertain)."""
    loc = load_stage("source", "source_evidence_red", "cpu")
    base = cv2.resize(_in_view(_tissue(1)[:H, :W]), (512, 384))
    one, two = base.copy(), base.copy()
    cv2.circle(one, (180, 150), 16, (140, 10, 20), -1)
    for xy in ((150, 200), (362, 200)):  # at one height, mirrored about the view's vertical midline: as likely under the prior
        cv2.circle(two, xy, 16, (140, 10, 20), -1)
    c_one, c_two, c_none = (loc.locate(f).confidence for f in (one, two, base))
    assert c_one > 0.5
    assert c_two < 0.1 and c_none < 0.5
    assert c_one > 3 * max(c_two, c_none)


def test_source_evidence_and_centre_locate_in_input_pixels():
    frame = _in_view(_tissue(2)[:H, :W])
    frame = cv2.resize(frame, (512, 384))
    frame[200:240, 300:340] = (140, 10, 20)  # a blood spot
    ev = load_stage("source", "source_evidence", "cpu")
    p = ev.locate(frame)
    assert 0 <= p.x < 512 and 0 <= p.y < 384 and 0 <= p.confidence <= 1
    assert ev.last_maps is not None and ev.last_maps.posterior.shape == (144, 192)
    c = load_stage("source", "source_centre").locate(frame)
    assert (c.x, c.y) == (255.5, 191.5)


def test_channel_guess_is_half_the_view_radius_below_its_centre_in_input_pixels():
    """`source_channel`: on a frame whose lit view is a disc, the answer is on the disc's
    vertical through its centre, half its radius below it, whatever the input size."""
    for w, h in ((512, 384), (1280, 960)):
        frame = np.zeros((h, w, 3), np.uint8)
        centre, radius = (w // 2, h // 2), h // 2 - 4
        cv2.circle(frame, centre, radius, (120, 90, 160), -1)
        p = load_stage("source", "source_channel").locate(frame)
        assert abs(p.x - centre[0]) < 0.02 * w
        assert abs(p.y - (centre[1] + 0.5 * radius)) < 0.06 * radius  # the view found shrinks by 2 % of the width


class _Recorder(SourceLocatorBase):
    def __init__(self):
        self.calls: list[tuple[int, list[int]]] = []

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:
        ids = lambda f: int(f[0, 0, 0])  # noqa: E731  (each test frame carries its index)
        self.calls.append((ids(frame), [ids(f) for f in history or []]))
        return Point(256.0, 192.0, 0.7)


def test_pipeline_hands_the_localizer_the_frames_from_the_onset_to_the_decision():
    locator = _Recorder()
    pipe = Pipeline(RaiseAt(at=30, back=6), locator, load_stage("track", "track_lk"),
                    shipped_config().with_episode(history_frames=4))
    base = _tissue(3)[:384 // 2, :512 // 2]
    for t in range(40):
        f = cv2.resize(base, (512, 384))
        f[0, 0, 0] = t
        pipe.step(f)
    assert locator.calls == [(30, list(range(24 - 4, 30)))]  # decision frame 30, history 20..29
    event = pipe.events[0]
    assert event.onset.frame == 24
    assert [tp.frame for tp in event.track][:8] == list(range(24, 32))  # back to the onset, then on
    assert (event.source.x, event.source.y) == (event.track[0].x, event.track[0].y)
    assert event.source.confidence == 0.7
    assert abs(event.track[6].x - 256) < 1e-6  # the located point itself at the decision frame


def test_locate_history_option(tmp_path, tiny_clip):
    from bleedorigin.cli import main

    def cli(*args: str) -> int:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        return int(exc.value.code or 0)

    out = tmp_path / "loc.json"
    assert cli("locate", tiny_clip.path, "--frame", 12, "--history", 5, "--out", out,
               "--model", "source_evidence_history", "--device", "cpu") == 0
    payload = json.loads(out.read_text())
    assert payload["history"] == 5 and payload["frame"] == 12
    assert cli("locate", tiny_clip.path, "--frame", 3, "--out", out, "--model", "source_redmask") == 0
    assert json.loads(out.read_text())["history"] == 3  # by default, all it has up to the pipeline's 90
    assert cli("locate", tiny_clip.path, "--history", -1, "--out", out, "--model", "source_redmask") == 2


def _maps(heat: np.ndarray, red: np.ndarray, cfg: FusionConfig) -> EvidenceMaps:
    """The maps of a full-frame view with the given heat and red and nothing else."""
    fov = np.ones((H, W), bool)
    ones = np.ones((H, W), np.float32)
    prior = rim_prior(fov, cfg.evidence.rim_fraction)
    centre, cxy = centre_prior(fov, cfg.prior_sigma, cfg.prior_shift)
    score = fuse(heat, red, ones, prior, None, cfg, None, centre)
    return EvidenceMaps(heat, red, None, ones, prior, None, None, centre, cxy, posterior(score, cfg.temperature))


def _bump(x: float, y: float, amp: float = 1.0, s: float = 6.0) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))).astype(np.float32)


def test_prior_moves_an_ambiguous_answer_toward_its_place_and_keeps_a_clear_one():
    """Weak, split evidence (two faint red spots, the farther one marginally redder, a flat
    network): the prior picks the spot nearer its place (below the centre) and the confidence is
    low. One clear source (strong red and network agreeing) far from it is found within a pixel."""
    cfg, flat = FusionConfig(**RED), FusionConfig(**{**RED, "prior_sigma": 0.0})
    assert cfg.prior_sigma > 0
    centre = np.array(_maps(np.ones((H, W), np.float32), np.zeros((H, W), np.float32), cfg).centre_xy)
    far, near = np.array([25.0, 30.0]), np.array([110.0, 85.0])
    heat = np.full((H, W), 0.01, np.float32)
    red = np.maximum(_bump(*far, 0.35), _bump(*near, 0.33))
    (xy_flat, _) = point_estimate(_maps(heat, red, flat), flat, 3)
    (xy, conf_weak) = point_estimate(_maps(heat, red, cfg), cfg, 3)
    assert np.hypot(*(np.array(xy_flat) - far)) < 3  # without a prior: the marginally redder far spot
    assert np.hypot(*(np.array(xy) - near)) < 3
    assert np.hypot(*(np.array(xy) - centre)) < np.hypot(*(np.array(xy_flat) - centre))
    clear = np.array([30.0, 28.0])
    (xy_clear, conf_clear) = point_estimate(_maps(_bump(*clear), _bump(*clear), cfg), cfg, 3)
    assert np.hypot(*(np.array(xy_clear) - clear)) < 1.0
    assert conf_weak < 0.5 * conf_clear  # split, faint evidence and a network that points nowhere


def test_shifted_prior_sits_below_the_view_centre_and_decides_a_blood_free_frame():
    """`prior_shift` moves the prior's peak down by that share of the view's equivalent radius;
    with no blood in view the priors decide, and the answer is that place, not the centre."""
    fov = np.ones((H, W), bool)
    radius = np.sqrt(H * W / np.pi)
    log_prior, (cx, cy) = centre_prior(fov, 1.5, 0.5)
    peak_y, peak_x = np.unravel_index(np.argmax(log_prior), log_prior.shape)
    assert abs(cy - ((H - 1) / 2 + 0.5 * radius)) < 1e-6 and abs(peak_y - cy) <= 0.5 and abs(peak_x - cx) <= 0.5
    frame = np.full((384, 512, 3), 150, np.uint8)  # grey, no blood, no network heat weighed
    centred = load_stage("source", "source_evidence_red", "cpu", {"w_net": 0.0, "prior_shift": 0.0}).locate(frame)
    shifted = load_stage("source", "source_evidence_red", "cpu", {"w_net": 0.0, "prior_shift": 0.5}).locate(frame)
    assert abs(centred.y - 192) < 8 and shifted.y - centred.y > 0.3 * np.sqrt(384 * 512 / np.pi)


def test_point_estimates_mean_and_shrink_hedge_toward_the_centre():
    heat = np.full((H, W), 0.01, np.float32)
    spot = np.array([30.0, 28.0])
    red = _bump(*spot, 0.3)
    peak_cfg = FusionConfig(**{**RED, "prior_sigma": 0.0})
    top, conf = point_estimate(_maps(heat, red, peak_cfg), peak_cfg, 3)
    for cfg in (FusionConfig(**{**RED, "prior_sigma": 0.0, "estimate": "mean"}),
                FusionConfig(**{**RED, "prior_sigma": 0.0, "estimate": "shrink", "shrink_full": 2 * conf})):
        xy, _ = point_estimate(_maps(heat, red, cfg), cfg, 3)
        centre = np.array([(W - 1) / 2, (H - 1) / 2])
        assert np.hypot(*(np.array(xy) - centre)) < np.hypot(*(np.array(top) - centre)) - 5
    with pytest.raises(ConfigError):
        FusionConfig(estimate="median")


def test_clear_blood_spot_off_centre_is_found_despite_the_prior():
    frame = cv2.resize(_in_view(_tissue(4)[:H, :W]), (512, 384))
    cv2.circle(frame, (150, 120), 14, (140, 10, 20), -1)
    p = load_stage("source", "source_evidence_red", "cpu").locate(frame)
    assert np.hypot(p.x - 150, p.y - 120) < 8


def test_flow_map_marks_where_blood_flows_out_not_blood_that_only_moves():
    """Textured blood expands from a source point while a red blob slides across the view and
    the camera pans: the flow-divergence map peaks at the expanding pool."""
    rng = np.random.default_rng(5)
    blood_tex = cv2.GaussianBlur(rng.normal(0, 1, (400, 400)).astype(np.float32), (0, 0), 2)
    blood_tex = 25 * blood_tex / blood_tex.std()
    scene = _tissue(6)
    src = np.array([70.0, 80.0])
    yy, xx = np.mgrid[:scene.shape[0], :scene.shape[1]].astype(np.float32)
    frames = []
    for t in range(8):
        img = scene.astype(np.float32).copy()
        scale = 1 + 0.08 * t  # the pool's texture streams out from the source
        u, v = src[0] + (xx - src[0]) / scale, src[1] + (yy - src[1]) / scale
        pool = (xx - src[0]) ** 2 + (yy - src[1]) ** 2 <= (14 * scale) ** 2
        tex = cv2.remap(blood_tex, (u + 200 - src[0]).astype(np.float32), (v + 200 - src[1]).astype(np.float32),
                        cv2.INTER_LINEAR)
        img[pool] = np.stack([130 + tex, 15 + 0 * tex, 20 + 0 * tex], -1)[pool]
        bx = 150 + 2 * t  # a blob that only slides
        blob = (xx - bx) ** 2 + (yy - 60) ** 2 <= 14 ** 2
        tex2 = cv2.remap(blood_tex, xx - bx + 100, yy - 60 + 100, cv2.INTER_LINEAR)  # slides with the blob
        img[blob] = np.stack([130 + tex2, 15 + 0 * tex2, 20 + 0 * tex2], -1)[blob]
        ox, oy = t, t // 2  # camera pans
        frames.append(np.ascontiguousarray(img.clip(0, 255).astype(np.uint8)[oy:oy + H, ox:ox + W]))
    f = flow_map(frames[-1], frames[:-1], EvidenceConfig())
    assert f is not None
    y, x = np.unravel_index(int(np.argmax(f)), f.shape)
    truth = src - (7, 3)
    assert np.hypot(x - truth[0], y - truth[1]) < 15
    assert flow_map(frames[-1], [], EvidenceConfig()) is None


@pytest.mark.parametrize("name", ["source_redmask", "source_evidence", "source_evidence_red"])
def test_localizer_does_not_place_the_source_on_excluded_old_blood(name):
    """Two alike blood regions: told that one is old blood (`exclude`, at any size), the
    localizer places the source on the other, whichever it is."""
    frame = cv2.resize(_tissue(5), (512, 384))
    spots = ((150, 120), (360, 250))
    for xy in spots:
        cv2.circle(frame, xy, 30, (150, 28, 34), -1)
    locator = load_stage("source", name)
    for old, new in (spots, spots[::-1]):
        mask = cv2.circle(np.zeros((384, 512), np.uint8), old, 45, 1, -1)
        p = locator.locate(frame, exclude=cv2.resize(mask, (128, 96)).astype(bool))
        assert np.hypot(p.x - new[0], p.y - new[1]) < 30, (name, old, p)  # inside the other region
