"""The source revised while an episode goes on (bleedorigin.source_revision + pipeline).

Synthetic clips with a known source on a static textured scene: a stub localizer that scores
blood (a big pool outscores a small spot) and, with history, blood that appeared since the oldest
history frame; the shipped flow tracker tracks the candidates together."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import RaiseAt

from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.track.flow import MultiFlowTracker
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import RevisionConfig, shipped_config
from bleedorigin.source_revision import Evidence, SourceReviser
from bleedorigin.types import Point, RunResult
from bleedorigin.vision.color import red_mask

H, W = 96, 128
SOURCE, POOL = (30.0, 30.0), (95.0, 60.0)


class FreshBloodLocator(SourceLocatorBase):
    """Smoothed red-mask score, plus 3 where blood is new since the oldest history frame."""

    name = model_id = "fresh_blood"
    cfg = SimpleNamespace(temperature=1.0, conf_radius=0.08)

    def locate(self, frame, history=None, exclude=None) -> Point:
        small = cv2.resize(frame, (128, 96), interpolation=cv2.INTER_AREA)
        red = red_mask(small)
        score = cv2.GaussianBlur(red, (0, 0), 4.0) * 4
        if history:
            old = red_mask(cv2.resize(history[0], (128, 96), interpolation=cv2.INTER_AREA))
            score = score + 3 * cv2.GaussianBlur(np.clip(red - old, 0, 1), (0, 0), 4.0) * 4
        post = np.exp(score - score.max())
        self.last_maps = SimpleNamespace(posterior=(post / post.sum()).astype(np.float32))
        y, x = np.unravel_index(np.argmax(score), score.shape)
        sx, sy = frame.shape[1] / 128, frame.shape[0] / 96
        return Point((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, 0.3)


def _clip(n: int, source_from: int, pool_radius: float) -> list[np.ndarray]:
    """Textured tissue with a static pool at POOL and, from `source_from`, a spot at SOURCE that
    grows and is washed away for 3 frames every 25 frames."""
    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.integers(0, 60, (H, W)).astype(np.float32), (0, 0), 1.0)
    base = np.stack([185 + tex, 125 + tex, 135 + tex], -1).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:H, :W]
    frames = []
    for t in range(n):
        img = base.copy()
        img[(xx - POOL[0]) ** 2 + (yy - POOL[1]) ** 2 <= pool_radius ** 2] = (120, 10, 15)
        since = (t - source_from) % 25
        if t >= source_from and since >= 3:
            r = min(2 + 0.4 * since, 7)
            img[(xx - SOURCE[0]) ** 2 + (yy - SOURCE[1]) ** 2 <= r * r] = (140, 5, 10)
        frames.append(img)
    return frames


def _run(frames, revision=RevisionConfig(candidates=4, every=10, ratio=2.0)) -> Pipeline:
    pipe = Pipeline(RaiseAt(at=2, back=2), FreshBloodLocator(), MultiFlowTracker(),
                    dataclasses.replace(shipped_config().with_episode(end_patience=1000), revision=revision))
    for f in frames:
        pipe.step(f)
    return pipe


def _dist(p, q) -> float:
    return float(np.hypot(p[0] - q[0], p[1] - q[1]))


def test_wrong_initial_source_is_revised_to_where_blood_keeps_coming():
    pipe = _run(_clip(90, source_from=4, pool_radius=14))
    event, = pipe.events
    located, *later = event.source_revisions
    assert located.why == "located" and _dist((located.x, located.y), POOL) < 6  # the pool won at the onset
    moves = [r for r in later if r.why == "moved"]
    assert moves and _dist((moves[-1].x, moves[-1].y), SOURCE) < 6
    assert len(moves) == 1  # no flip-flop between the pool and the spot
    # the track is the revised source's: on the spot for the frames before the move too
    assert [t.frame for t in event.track] == list(range(90))
    assert all(_dist((t.x, t.y), SOURCE) < 6 for t in event.track)
    assert _dist((event.source.x, event.source.y), SOURCE) < 6


def test_right_initial_source_is_kept():
    pipe = _run(_clip(90, source_from=-3, pool_radius=4))
    event, = pipe.events
    assert _dist((event.source_revisions[0].x, event.source_revisions[0].y), SOURCE) < 6
    assert not [r for r in event.source_revisions if r.why == "moved"]
    assert all(_dist((t.x, t.y), SOURCE) < 6 for t in event.track)


def test_result_json_carries_the_revisions():
    pipe = _run(_clip(60, source_from=4, pool_radius=14))
    d = RunResult("clip.mp4", 30.0, W, H, 60, [], list(pipe.events), {}).to_dict()
    revisions = d["events"][0]["source_revisions"]
    assert revisions[0]["why"] == "located"
    assert {"frame", "x", "y", "confidence", "why"} <= set(revisions[-1])
    assert RunResult.from_dict(d).events[0].source_revisions == pipe.events[0].source_revisions


def test_one_candidate_never_revises():
    pipe = _run(_clip(60, source_from=4, pool_radius=14), RevisionConfig(candidates=1))
    assert [r.why for r in pipe.events[0].source_revisions] == ["located"]


@pytest.mark.parametrize("evidence, moved_at", [
    # mean probabilities (0.4, 0.1, 0.1, 0.1) against (0.2, 0.6, 0.6, 0.6): the other place is more
    # than twice as likely from the 3rd weighing on (0.47 against 0.2) and moves the source on the
    # 4th (patience 2)
    ([[0.4, 0.2], [0.1, 0.6], [0.1, 0.6], [0.1, 0.6]], 3),
    ([[0.4, 0.2], [0.1, 0.6], [0.4, 0.2], [0.1, 0.6]], None),  # alternating: never twice in a row
    ([[0.4, 0.2], [0.3, 0.5], [0.3, 0.5], [0.3, 0.5]], None),  # more likely, never twice as likely: held
])
def test_hysteresis_rule(evidence, moved_at):
    """Two candidates 100 px apart; `evidence` per weighing: the probability of the ranked place at each."""
    cfg = RevisionConfig(ratio=2.0, patience=2, radius=0.1)
    pos = np.array([[100.0, 100.0], [200.0, 100.0]])
    a0, b0 = evidence[0]
    rev = SourceReviser(cfg, [(100.0, 100.0, a0), (200.0, 100.0, b0)], 512, 0.2)
    moved = None
    for k, (a, b) in enumerate(evidence[1:], start=1):
        d = rev.weigh(pos, Evidence(Point(100.0, 100.0), [(100.0, 100.0, a), (200.0, 100.0, b)]))
        if d.why == "moved" and moved is None:
            moved = k
        assert d.confidence == pytest.approx(rev.weights[d.current])  # the source's mean probability
    assert moved == moved_at


def test_evidence_is_a_probability_whatever_the_score_units():
    """The same frame scored in units ten times larger (and a temperature ten times larger) gives the
    same places with the same probabilities: the rule's ratio means the same for every localizer."""
    from bleedorigin.source_revision import weigh_frame
    frame = _clip(1, source_from=-3, pool_radius=14)[0]
    loc = FreshBloodLocator()
    base = weigh_frame(loc, frame, None, 3)
    loud = FreshBloodLocator()
    loud.cfg = SimpleNamespace(temperature=10.0, conf_radius=0.08, cand_temperature=10.0)
    same = weigh_frame(loud, frame, None, 3)
    assert len(base.places) >= 2 and sum(p for _, _, p in base.places) <= 1 + 1e-6
    assert np.allclose([p[2] for p in base.places], [p[2] for p in same.places], atol=1e-6)
