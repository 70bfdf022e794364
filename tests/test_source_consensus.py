"""The source voted on by the frames from the onset to the decision (bleedorigin.source_consensus
+ pipeline): a synthetic clip on panning tissue with two blood spots, where the decision frame
alone answers the wrong one and the frames before it the right one."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import RaiseAt

from bleedorigin.errors import ConfigError
from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.track.flow import MultiFlowTracker
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import EpisodeConfig, shipped_config
from bleedorigin.source_consensus import vote, voting_frames
from bleedorigin.types import Point
from bleedorigin.vision.color import BLOOD_THRESHOLD, red_mask

H, W = 96, 128
A, B = (40.0, 50.0), (85.0, 40.0)  # spots on the tissue at frame 0; A is the source
PAN = 1.0  # px per frame the tissue moves right
DECISION = 12


class SpotLocator(SourceLocatorBase):
    """Each blood spot is a candidate, with a probability in proportion to its area."""

    name = model_id = "spots"
    cfg = SimpleNamespace(conf_radius=0.08)

    def locate_candidates(self, frame, history=None, k=3, exclude=None) -> list[Point]:
        n, _, stats, centres = cv2.connectedComponentsWithStats((red_mask(frame) > BLOOD_THRESHOLD).astype(np.uint8))
        areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
        spots = [Point(float(x), float(y), 0.9 * a / areas.sum()) for (x, y), a in zip(centres[1:], areas)]
        return sorted(spots, key=lambda p: -p.confidence)[:k]

    def locate(self, frame, history=None, exclude=None) -> Point:
        return self.locate_candidates(frame, history)[0]


def _clip(n: int) -> list[np.ndarray]:
    """Textured tissue panning right by PAN px a frame, spot A (radius 6) and spot B (radius 4,
    8 for three frames around the decision: a spurt that outscores A there)."""
    rng = np.random.default_rng(5)
    tex = cv2.GaussianBlur(rng.integers(0, 70, (H, W + 40)).astype(np.float32), (0, 0), 1.2)
    yy, xx = np.mgrid[:H, :W + 40]
    frames = []
    for t in range(n):
        img = np.stack([185 + tex, 125 + tex, 135 + tex], -1).clip(0, 255).astype(np.uint8)
        for (x, y), r in ((A, 6), (B, 8 if abs(t - DECISION) <= 1 else 4)):
            img[(xx - x - 40) ** 2 + (yy - y) ** 2 <= r * r] = (140, 5, 10)
        shift = int(round(PAN * t))
        frames.append(np.ascontiguousarray(img[:, 40 - shift:40 - shift + W]))
    return frames


def _located(consensus: int) -> tuple[Point, list]:
    cfg = shipped_config().with_episode(end_patience=1000, consensus=consensus, locate_at="decision")
    pipe = Pipeline(RaiseAt(at=DECISION, back=DECISION), SpotLocator(), MultiFlowTracker(), dataclasses.replace(cfg))
    for f in _clip(DECISION + 3):
        pipe.step(f)
    event, = pipe.events
    return event.source_revisions[0], event.track


def _at(spot: tuple[float, float], t: int) -> tuple[float, float]:
    return spot[0] + PAN * t, spot[1]


def test_decision_frame_alone_takes_the_spurt():
    located, _ = _located(0)
    assert np.hypot(located.x - _at(B, DECISION)[0], located.y - B[1]) < 3


def test_frames_before_the_decision_outvote_it():
    """Frames 0, 4, 8 see A first, frame 12 sees B first: carried to frame 12 the votes for A
    (3 x 0.62 + 0.32) outweigh B's (3 x 0.28 + 0.58); the point is A where it is at the decision
    frame, and the track carried back to the onset starts on A."""
    located, track = _located(4)
    assert np.hypot(located.x - _at(A, DECISION)[0], located.y - A[1]) < 3
    assert 0.5 < located.confidence < 0.7  # the mean over the 4 frames of A's probability
    assert track[0].frame == 0 and np.hypot(track[0].x - A[0], track[0].y - A[1]) < 3


def test_vote_sums_probability_within_the_radius_and_breaks_ties_by_the_latest_frame():
    votes = [(0, 10.0, 10.0, 0.5), (4, 12.0, 10.0, 0.4), (8, 50.0, 10.0, 0.6), (8, 11.0, 11.0, 0.3)]
    first, second = vote(votes, radius=5, k=2)
    assert (round(first[0]), first[2]) == (11, pytest.approx(1.2 / 3))  # 0.5 + 0.4 + 0.3 near x = 10..12
    assert (second[0], second[2]) == (50.0, pytest.approx(0.2))
    tie = vote([(0, 10.0, 10.0, 0.5), (8, 50.0, 10.0, 0.5)], radius=5, k=1)
    assert tie[0][:2] == (50.0, 10.0)


def test_voting_frames_span_the_onset_to_the_decision():
    assert voting_frames(0, 34, 4) == [0, 11, 23, 34]
    assert voting_frames(5, 7, 8) == [5, 6, 7]
    assert voting_frames(9, 9, 4) == [9]


def test_consensus_needs_locating_at_the_decision():
    with pytest.raises(ConfigError):
        EpisodeConfig(consensus=4, locate_at="onset")
