"""A transition the network raises stands only once new red has appeared since before its onset."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_onset_hard_cases import _bed
from test_onset_present import _camera

from bleedorigin.models.onset.confirm import TransitionConfirm


def _verdicts(frames, propose_at: int, onset: int) -> list[tuple[int, bool]]:
    """Stream `frames` (AREA_SIZE), propose `onset` at frame `propose_at`; (frame, verdict) pairs."""
    confirm = TransitionConfirm(history=68, lead=8)
    out = []
    for t, f in enumerate(frames):
        confirm.push(f)
        if t == propose_at:
            verdict = confirm.propose(onset)
        elif confirm.pending:
            verdict = confirm.step()
        else:
            continue
        if verdict is not None:
            out.append((t, verdict))
    return out


def test_a_static_crimson_bed_does_not_confirm_a_transition():
    """The network proposes an onset over a crimson bed beside white submucosa (most of it passes
    the colour masks and red_mask), the camera still or drifting: nothing is new, so the proposal
    is dropped once its patience (30 frames after the decision) ran out."""
    bed = _bed()
    assert _verdicts([bed] * 120, propose_at=70, onset=40) == [(100, False)]
    world = _bed(size=(220, 170))
    drift = [_camera(world, 30 + 0.4 * t, 20 + 0.2 * t) for t in range(120)]
    assert _verdicts(drift, propose_at=70, onset=40) == [(100, False)]


def test_blood_appearing_on_the_bed_confirms_it_with_its_place():
    """A bleed that starts at frame 40 on the white submucosa and grows: the proposal made at
    frame 70 (onset 42) is confirmed on the decision frame, and the box is on the new blood;
    proposed while the blood is still a speck under 0.1 % of the view, it is confirmed a few
    frames later, once the blood has grown past that."""
    confirm = TransitionConfirm(history=68, lead=8)
    frames = []
    for t in range(110):
        img = _bed()
        if t >= 40:
            cv2.circle(img, (40, 50), int(round(min(12, 1 + 0.3 * (t - 40)))), (150, 24, 30), -1)
        frames.append(img)
    for f in frames[:71]:
        confirm.push(f)
    assert confirm.propose(42) is True
    x0, y0, x1, y1 = confirm.box
    assert x0 <= 40 <= x1 and y0 <= 50 <= y1 and x1 - x0 < 40
    [(t, verdict)] = _verdicts(frames, propose_at=41, onset=40)
    assert verdict is True and 42 <= t <= 50


def test_an_early_proposal_keeps_only_the_frames_it_can_look_back_on():
    """Onset proposed earlier than the kept history: the baseline is the oldest kept frame."""
    frames = [np.full((96, 128, 3), (205, 125, 115), np.uint8)] * 100
    confirm = TransitionConfirm(history=20, lead=8)
    for f in frames:
        confirm.push(f)
    assert confirm.propose(10) is None and confirm.pending


def test_detector_raises_a_transition_over_a_static_bed_only_without_the_confirmation():
    """A network that calls every window bleeding (threshold below any score): over a static
    crimson bed the confirmed detector raises nothing, the unconfirmed one raises at once; when
    blood appears on the bed the confirmed detector raises it, with the network's onset, a
    `transition` cue and a box on the new blood."""
    from bleedorigin.models.onset import onset_test

    def detector(confirm: float):
        det = onset_test(device="cpu", conf_threshold=-1.0)
        det.confirm = TransitionConfirm(history=det.cfg.window, lead=0, threshold=confirm) if confirm else None
        return det

    bed = _bed()
    assert detector(0.001).run([bed] * 80)[0] is None
    assert detector(0.0).run([bed] * 80)[0] is not None
    frames = [bed] * 40
    for t in range(40):
        img = bed.copy()
        cv2.circle(img, (40, 50), int(round(min(12, 1 + 0.3 * t))), (150, 24, 30), -1)
        frames.append(img)
    det = detector(0.001)
    raised = [(t, out) for t, out in enumerate(det.step(f) for f in frames) if out.onset_frame is not None]
    [(t, out)] = raised
    assert t >= 40 and out.cue == "transition"
    x0, y0, x1, y1 = out.where
    assert x0 <= 40 <= x1 and y0 <= 50 <= y1


@pytest.mark.slow
def test_shipped_detector_raises_nothing_on_the_crimson_bed_the_network_takes_for_bleeding():
    """A BleedSim bleeding-free `crimson_bed` clip (validation seed 33, clip 0) on which the
    network raises a transition (onset 114 of 150): confirmed, nothing is raised."""
    from bleedorigin.models.registry import create
    from bleedorigin.sim import generate_clip

    clip = generate_clip("negative", 3_300_000, size=(512, 384), scenario="crimson_bed", num_tracks=0)
    assert create("onset_small_unconfirmed", device="cpu").run(clip.frames)[0] is not None
    assert create("onset_small", device="cpu").run(clip.frames)[0] is None
