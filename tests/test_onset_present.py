"""Bleeding already under way: the calibrated blood mask and the armed bleeding-present check."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA as SHARED

from bleedorigin.models.onset.present import PresenceCheck
from bleedorigin.vision.color import blood_mask, blood_presence, dark_blood_mask

CASTS = {"neutral": (1.0, 1.0, 1.0), "orange": (1.0, 0.8, 0.55), "red": (1.0, 0.75, 0.75), "cool": (0.8, 0.92, 1.0)}


def _cast(frame: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return np.clip(frame * np.array(gains, np.float32), 0, 255).astype(np.uint8)


def _scene(tissue=(205, 125, 115), pool: bool = True, size=(128, 96)) -> np.ndarray:
    """Lit octagon-free view: tissue with texture, a few white highlights, optionally a pool."""
    w, h = size
    rng = np.random.default_rng(0)
    img = np.clip(np.array(tissue, np.float32) + rng.normal(0, 6, (h, w, 3)), 0, 255)
    for x, y in ((20, 20), (100, 70), (60, 15)):
        cv2.circle(img, (x, y), 2, (245, 240, 238), -1)
    if pool:
        cv2.circle(img, (64, 52), 18, (150, 28, 34), -1)
    return img.astype(np.uint8)


def test_blood_mask_finds_the_pool_under_any_white_balance():
    pool_share = np.pi * 18 ** 2 / (128 * 96)
    for name, gains in CASTS.items():
        frame = _cast(_scene(), gains)
        assert blood_presence(frame) == pytest.approx(pool_share, rel=0.2), name
        m = blood_mask(frame, np.ones(frame.shape[:2], bool))
        assert m[52, 64] and not m[10, 10], name


@pytest.mark.parametrize("tissue", [(205, 125, 115), (225, 140, 70), (200, 72, 52)])
def test_no_blood_on_pink_orange_or_sim_red_tissue(tissue):
    """Pink mucosa, an orange-cast colonoscopy-like view, and the saturated orange-red of
    BleedSim's mucosa (blue below green: not blood) hold no blood."""
    for gains in CASTS.values():
        assert blood_presence(_cast(_scene(tissue, pool=False), gains)) < 0.002


def _growing(radius0: float, rate: float, n: int, start: int = 0) -> list[np.ndarray]:
    """A pool spreading from (64, 52): radius `radius0` at frame `start`, growing `rate` px/frame
    (no pool before `start`)."""
    out = []
    for t in range(n):
        img = _scene(pool=False)
        if t >= start:
            cv2.circle(img, (64, 52), int(round(min(30, radius0 + rate * (t - start)))), (150, 28, 34), -1)
        out.append(img)
    return out


def test_presence_check_raises_spreading_blood_from_frame_zero_not_a_static_red_patch():
    """A stream that starts during a bleed: blood over the threshold from frame 0 that spreads is
    raised with its onset at frame 0; the same red patch standing still (red tissue) is not,
    however long the check watches; counted without the spreading test (`live=False`) it is."""
    bleed, clean = _scene(), _scene(pool=False)
    check = PresenceCheck(persist=5, arm_frames=30)
    assert _onsets(check, [bleed] * 120) == []
    check = PresenceCheck(persist=5, arm_frames=30, live=False)
    assert _onsets(check, [bleed] * 8) == [0]
    check = PresenceCheck(persist=5, arm_frames=30)
    assert _onsets(check, _growing(10, 0.5, 40)) == [0]
    assert check.cue == "bleeding_present"
    x0, y0, x1, y1 = check.where  # the box of the blood it counted, in frame pixels
    assert x0 <= 64 <= x1 and y0 <= 52 <= y1 and x1 - x0 < 80
    check.reset()
    assert _onsets(check, [clean] * 40) == []


def test_presence_check_gives_a_still_pool_at_stream_start_time_to_spread():
    """A stream that starts on a pool that lies still for 50 frames, then spreads: bleeding under
    way, dated at frame 0; without the longer stream-start window (`open_frames=0`) the pool
    becomes the watching window's baseline and only its growth is raised, later, as fresh blood."""
    still = [_scene()] * 50
    spreading = [cv2.circle(_scene(pool=False), (64, 52), int(18 + 0.5 * t), (150, 28, 34), -1) for t in range(60)]
    check = PresenceCheck()
    assert _onsets(check, still + spreading) == [0] and check.cue == "bleeding_present"
    check = PresenceCheck(open_frames=0)
    onsets = _onsets(check, still + spreading)
    assert len(onsets) == 1 and onsets[0] >= 50 and check.cue == "fresh_blood"


def test_presence_check_watches_for_fresh_blood_while_the_stream_start_window_goes_on():
    """A stream that starts on a still pool, washed away at frame 36 and filling the same place
    again from frame 60: the refill lies where the first frame's blood lay, so it never spreads
    beyond it, but it is fresh since the frame where the stream-start window slowed down, and is
    raised as fresh blood, as the watching window after a shorter stream-start window raises it."""
    pool, clean = _scene(), _scene(pool=False)
    frames = [pool] * 36 + [clean] * 24 + [pool] * 80
    check = PresenceCheck()
    onsets = _onsets(check, frames)
    assert len(onsets) == 1 and 60 <= onsets[0] <= 64 and check.cue == "fresh_blood"
    x0, y0, x1, y1 = check.where
    assert x0 <= 64 <= x1 and y0 <= 52 <= y1
    assert _onsets(PresenceCheck(open_frames=0), frames) == onsets


def test_presence_check_watching_raises_a_pool_that_appears_after_the_first_window():
    """After the first window the check watches every `watch_stride`-th frame for fresh blood:
    a pool that appears at frame 60 and spreads is raised near its start; with watching off
    (`watch_stride=0`) the check stops after the first window."""
    frames = _growing(6, 0.4, 140, start=60)
    check = PresenceCheck()
    onsets = _onsets(check, frames)
    assert len(onsets) == 1 and 60 <= onsets[0] <= 68 and check.cue == "fresh_blood"
    assert _onsets(PresenceCheck(watch_stride=0), frames) == []


def _lit_scene(tissue=(170, 95, 85), size=(128, 96)) -> np.ndarray:
    """Textured tissue with wet highlights (over 1 % of the view, as on real wet mucosa) inside a
    black octagonal field stop."""
    w, h = size
    img = _scene(tissue, pool=False, size=size)
    for x, y in ((25, 30), (100, 28), (30, 75), (98, 74), (64, 15), (64, 85), (20, 50), (108, 50)):
        cv2.circle(img, (x, y), 2, (245, 240, 238), -1)
    stop = np.zeros((h, w), np.uint8)
    c = 14
    cv2.fillPoly(stop, [np.array([(c, 0), (w - c, 0), (w, c), (w, h - c), (w - c, h), (c, h), (0, h - c), (0, c)])], 1)
    img[stop == 0] = 0
    return img


def _disk(img: np.ndarray, colour, centre=(64, 52), radius=16) -> np.ndarray:
    out = img.copy()
    cv2.circle(out, centre, radius, colour, -1)
    noise = np.random.default_rng(1).normal(0, 3, out.shape)
    inside = cv2.circle(np.zeros(out.shape[:2], np.uint8), centre, radius, 1, -1).astype(bool)
    out[inside] = np.clip(out[inside] + noise[inside], 0, 255).astype(np.uint8)
    return out


DARK_POOL = (62, 46, 47)  # near-black maroon, as measured in the pool of the shared clip camera_010


def test_dark_blood_mask_finds_a_dark_maroon_pool_under_any_white_balance():
    for name, gains in CASTS.items():
        frame = _cast(_disk(_lit_scene(), DARK_POOL), gains)
        m = dark_blood_mask(frame)
        assert m[52, 64] and m[52, 54] and m[60, 70], name
        assert m.sum() == pytest.approx(np.pi * 16 ** 2, rel=0.25), name
        assert not m[20, 20] and not m[2, 2], name
        assert blood_presence(frame) > 0.02, name  # the bleeding-present check sees it


@pytest.mark.parametrize("what,colour", [
    ("neutral shadow", (48, 47, 46)),
    ("red shadow (tissue in the dark, lit by red interreflection)", (70, 30, 26)),
    ("brown char", (60, 50, 38)),
])
def test_dark_blood_mask_ignores_shadows_and_char(what, colour):
    for gains in CASTS.values():
        assert not dark_blood_mask(_cast(_disk(_lit_scene(), colour), gains)).any(), what


def test_dark_blood_mask_ignores_the_field_stop_and_dark_red_liver():
    """The black field stop and vignetted rim are not blood; nor is a dark-red organ, whether it
    fills the view evenly or lies beside brighter pink tissue: liver is a saturated red (diffuse
    red reflection), a thick blood pool a desaturated one (its wet surface reflects the white
    light, its body absorbs nearly everything)."""
    stop = _lit_scene()
    h, w = stop.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    vignetted = (stop * np.clip(1.2 - np.hypot(xx - w / 2, yy - h / 2) / (w / 2), 0.15, 1)[..., None]).astype(np.uint8)
    liver = _lit_scene(tissue=(110, 36, 30))
    half = _lit_scene()
    half[:, : w // 2] = liver[:, : w // 2]
    for name, frame in {"field stop": stop, "vignetting": vignetted, "liver fills the view": liver,
                        "liver beside pink tissue": half}.items():
        for gains in CASTS.values():
            assert not dark_blood_mask(_cast(frame, gains)).any(), name


def test_presence_check_flags_a_stream_that_starts_with_a_spreading_dark_pool():
    clean = _lit_scene()
    pools = [_disk(clean, DARK_POOL, radius=min(24, 14 + t // 3)) for t in range(40)]
    check = PresenceCheck()
    assert _onsets(check, pools) == [0]
    check.reset()
    assert all(check.step(clean)[1] is None for _ in range(40))


def _first_frames(video: Path, n: int) -> list[np.ndarray]:
    from bleedorigin import MODEL_SIZE
    from bleedorigin.io.video import FrameMapper, open_video
    out: list[np.ndarray] = []
    with open_video(str(video)) as reader:
        mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
        for item in reader:
            out.append(mapper.resize(item.image))
            if len(out) == n:
                break
    return out


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real clips absent")
@pytest.mark.parametrize("clip,bleeding", [("esd_clips/instrument_004", True), ("esd_clips/camera_010", True),
                                           ("vlsurgpt/tissue_seq000", False)])
def test_real_clips_bleeding_present_under_white_balance_shifts(clip, bleeding):
    frames = _first_frames(SHARED / clip / "video.mp4", 40)
    for name in ("neutral", "orange"):
        gains = CASTS[name]
        check = PresenceCheck()
        onsets = [o for o in (check.step(_cast(f, gains))[1] for f in frames) if o is not None]
        if bleeding:
            assert onsets and onsets[0] <= 30, (clip, name)
        else:
            assert not onsets, (clip, name)


# staged with `bleedorigin data stage-extra` (docs/data-extra.md) into $BLEEDORIGIN_EXTRA_DATA
EXTRA = Path(os.environ.get("BLEEDORIGIN_EXTRA_DATA") or Path(__file__).resolve().parents[1] / "data" / "extra_real")
LIVER = EXTRA / "negative_laparoscopic" / "lap_cholecystectomy_calot" / "video.mp4"


@pytest.mark.skipif(not LIVER.is_file(), reason="extra real bleeding-free clips absent")
def test_no_blood_cover_on_a_real_dark_red_liver():
    """Laparoscopic cholecystectomy (dark-red liver, yellow gallbladder and fat, grey instruments):
    no frame's blood cover reaches the presence threshold, under any cast."""
    from bleedorigin.io.video import read_frames
    from bleedorigin.models.onset.present import PRESENT_THRESHOLD

    frames = read_frames(str(LIVER), 0, 125)[::4]
    for name, gains in CASTS.items():
        assert max(blood_presence(_cast(f, gains)) for f in frames) < PRESENT_THRESHOLD, name


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real clips absent")
def test_blood_mask_against_hand_marked_real_frames():
    """Hand-marked blood on real ESD frames (tests/fixtures/blood_polygons.json): the calibrated
    mask keeps its precision under every white balance and marks nothing on blood-free frames."""
    from bleedorigin.eval import blood_masks as script

    frames = script.marked_frames(SHARED, Path(__file__).parent / "fixtures" / "blood_polygons.json")
    assert sum(t.any() for _, _, t in frames) >= 9
    dark_pools = [f for f in frames if f[0].startswith("esd_clips/camera_010:")]
    for name, gains in script.CASTS.items():
        s = script.scores(frames, blood_mask, gains)
        assert s["precision"] > 0.6 and s["recall"] > 0.2 and s["blood_free_marked"] == 0, name
        s = script.scores(frames, script.MASKS["blood_mask or dark_blood_mask"], gains)
        assert s["precision"] > 0.6 and s["recall"] > 0.3 and s["blood_free_marked"] == 0, name
        s = script.scores(dark_pools, dark_blood_mask, gains)  # the near-black pools blood_mask misses
        assert s["precision"] > 0.8 and s["recall"] > 0.25, name


# -- re-armed after an episode: blood left lying in view is not a new bleed ------------------------

def _world(pools, size=(220, 170)) -> np.ndarray:
    """Tissue larger than the view (smooth texture the camera motion can be read from, wet
    highlights) with crimson pools ((x, y), radius)."""
    w, h = size
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    img = np.clip(np.array((190, 112, 100), np.float32) + (tex / tex.std() * 12)[..., None] * (1, 0.7, 0.7), 0, 255)
    for x, y in rng.uniform((5, 5), (w - 5, h - 5), (30, 2)).astype(int):
        cv2.circle(img, (int(x), int(y)), 2, (245, 240, 238), -1)
    for (x, y), r in pools:
        cv2.circle(img, (x, y), int(r), (150, 28, 34), -1)
    return img.astype(np.uint8)


def _camera(world: np.ndarray, x: float, y: float, size=(128, 96)) -> np.ndarray:
    """The view with its top-left corner at (x, y) of the world, inside an octagonal field stop."""
    w, h = size
    f = cv2.warpAffine(world, np.float32([[1, 0, -x], [0, 1, -y]]), (w, h), flags=cv2.INTER_LINEAR)
    stop = np.zeros((h, w), np.uint8)
    c = 14
    cv2.fillPoly(stop, [np.array([(c, 0), (w - c, 0), (w, c), (w, h - c), (w - c, h), (c, h), (0, h - c), (0, c)])], 1)
    f[stop == 0] = 0
    return f


def _onsets(check: PresenceCheck, frames) -> list[int]:
    return [o for o in (check.step(f)[1] for f in frames) if o is not None]


LEFTOVER = ((100, 80), 16)  # a pool lying in view when the check re-arms


def test_rearmed_check_ignores_a_leftover_pool_while_the_camera_moves():
    pool = _world([LEFTOVER])
    frames = [_camera(pool, 40 + 0.8 * t, 30 + 0.4 * t) for t in range(45)]
    check = PresenceCheck(live=False)
    assert _onsets(check, frames) == [0]  # a stream that starts with it, any blood counted: frame 0
    assert _onsets(PresenceCheck(), frames) == []  # a pool standing still is not a bleed
    for gains in CASTS.values():
        check.rearm()
        assert _onsets(check, [_cast(f, gains) for f in frames]) == []


def test_rearmed_check_raises_a_new_bleed_beside_the_leftover_pool_near_its_start():
    frames = []
    for t in range(45):
        new = [((140, 100), min(3 + (t - 8), 12))] if t >= 8 else []
        frames.append(_camera(_world([LEFTOVER] + new), 40 + 0.8 * t, 30 + 0.4 * t))
    check = PresenceCheck()
    for gains in CASTS.values():
        check.rearm()
        onsets = _onsets(check, [_cast(f, gains) for f in frames])
        assert len(onsets) == 1 and 8 <= onsets[0] <= 12, gains


def test_rearmed_check_ignores_a_pool_coming_into_view():
    """A pan brings a pool the first armed frame never saw into view: not fresh blood."""
    world = _world([LEFTOVER, ((190, 80), 14)])
    check = PresenceCheck()
    check.rearm()
    assert _onsets(check, [_camera(world, 30 + 1.5 * t, 30) for t in range(45)]) == []


def test_fresh_blood_must_have_changed_colour_since_the_rearm():
    """A pool that the masks missed on the first armed frame (their thresholds follow each frame's
    statistics) and mark later is not fresh; the same mask over what was tissue is."""
    from bleedorigin.models.onset.leftover import LeftoverBlood

    frame = _camera(_world([LEFTOVER]), 40, 30)
    view = np.ones(frame.shape[:2], bool)
    pool = cv2.circle(np.zeros(view.shape, np.uint8), (60, 50), 16, 1, -1).astype(bool)  # LEFTOVER in view
    missed = LeftoverBlood(frame, np.zeros_like(view), view)  # baseline: the pool not marked
    assert missed.fresh(frame, pool, view) == 0.0
    clean = _camera(_world([]), 40, 30)
    assert LeftoverBlood(clean, np.zeros_like(view), view).fresh(frame, pool, view) > 0.05


def test_check_stays_on_after_an_episode_for_a_late_new_bleed():
    """Re-armed after an episode, the check goes on past its first window (every
    `watch_stride`-th frame, each window with its own baseline): a leftover pool under a moving
    camera never raises in 200 frames; a new bleed at frame 120 is raised near its start."""
    def frames(new_at: int | None) -> list[np.ndarray]:
        out = []
        for t in range(200):
            new = [((150, 110), min(3 + (t - new_at), 12))] if new_at is not None and t >= new_at else []
            out.append(_camera(_world([LEFTOVER] + new), 20 + 0.3 * t, 30 + 0.15 * t))
        return out

    check = PresenceCheck()
    for gains in CASTS.values():
        check.rearm()
        assert _onsets(check, [_cast(f, gains) for f in frames(None)]) == []
        check.rearm()
        onsets = _onsets(check, [_cast(f, gains) for f in frames(120)])
        assert len(onsets) == 1 and 120 <= onsets[0] <= 124, gains
    check = PresenceCheck(watch_stride=0)  # off: the check stops after its first window
    check.rearm()
    assert _onsets(check, frames(120)) == []
