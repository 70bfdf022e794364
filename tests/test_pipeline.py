"""Deployment pipeline on clips with known truth, using the baseline models."""
from __future__ import annotations

import json

import numpy as np

from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import shipped_config


# Short synthetic clips: the baselines need no 60-frame window (the shipped models are tested on
# the shipped BleedSim sample below).
BASELINES = {"onset_model": "onset_hsv", "source_model": "source_redmask", "track_model": "track_lk"}


def _blood_discs(n: int, discs) -> list[np.ndarray]:
    """Textured tissue; frame t holds the blood discs `discs(t)` lists ((cx, cy), radius)."""
    rng = np.random.default_rng(1)
    tex = rng.integers(0, 40, (96, 128), dtype=np.int16)
    base = np.stack([190 + tex, 130 + tex, 140 + tex], -1).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:96, :128]
    frames = []
    for t in range(n):
        img = base.copy()
        for (cx, cy), r in discs(t):
            img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (120, 10, 15)
        frames.append(img)
    return frames


def _two_bleeds(n: int = 160) -> tuple[list[np.ndarray], list[int]]:
    """A blood disc appears at 10, is washed away at 40, a second at 110."""
    def discs(t: int) -> list:
        return [(c, min(4 + (t - start) * 0.5, 14))
                for start, stop, c in ((10, 40, (40, 50)), (110, n, (90, 40))) if start <= t < stop]
    return _blood_discs(n, discs), [10, 110]


def test_pipeline_reports_each_bleeding_episode():
    frames, onsets = _two_bleeds()
    pipe = Pipeline.from_pretrained(shipped_config().with_episode(end_patience=30), **BASELINES)
    results = [pipe.step(f) for f in frames]
    assert [r.frame for r in results] == list(range(len(frames)))
    found = [e.onset.frame for e in pipe.events]
    assert len(found) == 2, found
    for got, want in zip(found, onsets):
        assert abs(got - want) <= 3
    first, second = pipe.events
    assert np.hypot(first.source.x - 40, first.source.y - 50) < 6
    assert np.hypot(second.source.x - 90, second.source.y - 40) < 6
    # Each event tracks every frame from its onset until it ends, without gaps.
    frames_tracked = [tp.frame for tp in first.track]
    assert frames_tracked == list(range(first.onset.frame, frames_tracked[-1] + 1))
    assert second.track[-1].frame == len(frames) - 1


def test_step_and_run_agree(tiny_clip):
    pipe = Pipeline.from_pretrained(**BASELINES)
    run = pipe.run(str(tiny_clip.path), progress=False)
    streamed = list(pipe.stream(str(tiny_clip.path)))
    assert run.frames == len(streamed) == len(tiny_clip.frames)
    assert run.scores == [r.onset_score for r in streamed]
    assert run.onset is not None and run.onset.frame == pipe.events[0].onset.frame


def test_shipped_models_find_onset_and_source_of_the_sample_clip():
    from bleedorigin.commands import SAMPLE_CLIP
    truth = json.loads(SAMPLE_CLIP.with_suffix(".json").read_text())
    result = Pipeline.from_pretrained().run(str(SAMPLE_CLIP), progress=False)
    assert result.onset is not None and abs(result.onset.frame - truth["onset_frame"]) <= 8
    sx, sy = truth["source_xy_at_onset"]
    assert np.hypot(result.source.x - sx, result.source.y - sy) < 50
    assert result.track[-1].frame == result.frames - 1


def test_stream_picked_up_mid_bleed_is_tracked_within_a_second():
    """A pool is in view from frame 0 (a recording started during a bleed): the shipped onset
    model's bleeding-present check raises the onset at frame 0, in time for locating and
    tracking within 30 frames."""
    frames, _ = _two_bleeds(40)
    yy, xx = np.mgrid[:96, :128]
    pool = (xx - 64) ** 2 + (yy - 48) ** 2 <= 15 ** 2
    for img in frames:
        img[pool] = (120, 10, 15)
    pipe = Pipeline.from_pretrained(source_model="source_redmask", track_model="track_lk")
    states = [pipe.step(f).phase for f in frames]
    assert pipe.events and pipe.events[0].onset.frame == 0
    assert "tracking" in states[:30]
    assert np.hypot(pipe.events[0].source.x - 64, pipe.events[0].source.y - 48) < 15


def _washed_source_leaves_pool(n: int = 170, second: int | None = None) -> list[np.ndarray]:
    """Bleeding from frame 0 at (35, 50); its blood runs into a pool at (100, 60) from frame 12;
    the source is washed clean at 40 and the pool stays. With `second`, a new bleed at (60, 20)
    starts at that frame."""
    def discs(t: int) -> list:
        out = [((35, 50), min(6 + t * 0.3, 12))] if t < 40 else []
        if t >= 12:
            out.append(((100, 60), min(3 + (t - 12) * 0.4, 13)))
        if second is not None and t >= second:
            out.append(((60, 20), min(3 + (t - second) * 0.5, 11)))
        return out
    return _blood_discs(n, discs)


def _mid_bleed_pipeline() -> Pipeline:
    return Pipeline.from_pretrained(shipped_config().with_episode(end_patience=30),
                                    source_model="source_redmask", track_model="track_lk")


def test_pool_left_after_an_episode_raises_no_new_alarm():
    """The stream starts mid-bleed (onset at frame 0); after the episode ends (source washed, its
    pool still in view) the re-armed onset model must not take the pool for a new bleed."""
    pipe = _mid_bleed_pipeline()
    phases = [pipe.step(f).phase for f in _washed_source_leaves_pool()]
    assert [e.onset.frame for e in pipe.events] == [0]
    assert np.hypot(pipe.events[0].source.x - 35, pipe.events[0].source.y - 50) < 10
    assert "waiting" in phases[60:100]  # the episode did end: the model was re-armed over the pool


def test_new_bleed_after_an_episode_is_raised_near_its_start():
    pipe = _mid_bleed_pipeline()
    for f in _washed_source_leaves_pool(second=85):
        pipe.step(f)
    onsets = [e.onset.frame for e in pipe.events]
    assert len(onsets) == 2 and onsets[0] == 0 and 85 <= onsets[1] <= 92, onsets


def test_episode_goes_on_while_dark_blood_covers_the_source():
    """A stream starts mid-bleed with crimson blood spreading over the source; from frame 20 the blood there
    is a near-black maroon pool (real ESD blood often is), which `red_mask` misses but the
    bleeding-present check's dark-pool mask sees: the episode must not end. Washed clean
    instead, it ends."""
    from test_onset_present import DARK_POOL, _disk, _lit_scene

    from bleedorigin.vision.color import BLOOD_THRESHOLD, red_mask

    tissue = _lit_scene()
    dark = _disk(tissue, DARK_POOL)
    assert (red_mask(dark[36:68, 48:80]) > BLOOD_THRESHOLD).mean() < 0.02  # red_mask alone would end it
    for later, ends in ((dark, False), (tissue, True)):
        pipe = _mid_bleed_pipeline()
        spreading = [_disk(tissue, (150, 28, 34), radius=10 + t // 3) for t in range(20)]
        phases = [pipe.step(spreading[t] if t < 20 else later).phase for t in range(80)]
        assert [e.onset.frame for e in pipe.events] == [0]
        assert pipe.events[0].onset.cue == "bleeding_present"  # why it was raised, and where
        x0, y0, x1, y1 = pipe.events[0].onset.where
        assert x0 <= 64 <= x1 and y0 <= 52 <= y1
        assert pipe.events[0].to_dict()["onset"]["cue"] == "bleeding_present"
        assert np.hypot(pipe.events[0].source.x - 64, pipe.events[0].source.y - 52) < 10
        assert ("waiting" in phases[40:]) == ends


def test_new_bleed_long_after_an_episode_is_raised_near_its_start():
    """The new bleed starts after the re-armed window (the episode ends about frame 70, the
    window's 40 frames after it): the check, still on while the pipeline waits, raises it."""
    pipe = _mid_bleed_pipeline()
    phases = [pipe.step(f).phase for f in _washed_source_leaves_pool(n=240, second=170)]
    onsets = [e.onset.frame for e in pipe.events]
    assert "waiting" in phases[60:120]
    assert len(onsets) == 2 and onsets[0] == 0 and 170 <= onsets[1] <= 178, onsets
    # the source of the new bleed, not the pool the first one left (the localizer is told which blood is old)
    assert np.hypot(pipe.events[1].source.x - 60, pipe.events[1].source.y - 20) < 12


def _recording_locator(pipe: Pipeline) -> list:
    """The frames the pipeline's localizer is handed, in order."""
    seen: list = []
    locate = pipe.source.locate
    pipe.source.locate = lambda frame, history=None, **kw: seen.append(frame) or locate(frame, history=history, **kw)
    return seen


def test_locating_at_the_onset_frame_sees_that_frame_and_tracks_forward_from_it():
    """With `locate_at: onset` the localizer gets the back-dated onset frame (where the source
    is, before the blood moved on), and the point is tracked forward from there to the frame
    where the onset was raised: a source sliding away after the onset is followed."""
    def discs(t: int) -> list:  # a bleed from (40, 50) from frame 10 whose pool drifts right
        return [((40 + max(0, t - 10) * 0.5, 50), min(4 + (t - 10) * 0.5, 10))] if t >= 10 else []

    frames = _blood_discs(40, discs)
    pipe = Pipeline.from_pretrained(shipped_config().with_episode(locate_at="onset"), **BASELINES)
    seen = _recording_locator(pipe)
    for f in frames:
        pipe.step(f)
    event = pipe.events[0]
    assert len(seen) == 1 and np.array_equal(seen[0], pipe._mapper.resize(frames[event.onset.frame]))
    frames_tracked = [tp.frame for tp in event.track]
    assert frames_tracked == list(range(event.onset.frame, len(frames)))
    assert np.hypot(event.source.x - (40 + max(0, event.onset.frame - 10) * 0.5), event.source.y - 50) < 6


def test_locating_where_the_presence_check_dated_the_onset_by_its_blood():
    """With `locate_at: blood` the localizer sees the onset frame when the presence check raised
    the onset (it dates it by the blood it counted, so that frame shows the bleed) and the frame
    where the onset was raised when another detector did (its date can precede any blood)."""
    def discs(t: int) -> list:  # a bleed from (40, 50) from frame `start`, spreading
        return [((40, 50), min(5 + (t - start) * 0.5, 14))] if t >= start else []

    for start, onset_model, cue_is_presence in ((0, "onset_small", True), (10, "onset_hsv", False)):
        frames = _blood_discs(60, discs)
        pipe = Pipeline.from_pretrained(shipped_config().with_episode(locate_at="blood"), onset_model=onset_model,
                                        source_model="source_redmask", track_model="track_lk")
        seen = _recording_locator(pipe)
        phases = [pipe.step(f).phase for f in frames]
        event = pipe.events[0]
        raised = phases.index("bleeding")
        assert (event.onset.cue in ("bleeding_present", "fresh_blood")) == cue_is_presence, event.onset.cue
        at = event.onset.frame if cue_is_presence else raised
        assert event.onset.frame < raised and len(seen) == 1
        assert np.array_equal(seen[0], pipe._mapper.resize(frames[at]))
        assert [tp.frame for tp in event.track] == list(range(event.onset.frame, len(frames)))
        assert np.hypot(event.track[0].x - 40, event.track[0].y - 50) < 6
