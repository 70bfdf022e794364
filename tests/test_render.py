"""The overlay's source box: solid with the confidence when the localizer was sure, dashed and
labelled "source ?" below `SOURCE_UNSURE`."""
from __future__ import annotations

import numpy as np

from bleedorigin.render import RED, SOURCE_UNSURE, OnsetBoxAnnotator
from bleedorigin.types import FrameResult, Onset, Point


def _box_edge(confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The overlay on a black 512x384 frame at the onset with the source at (256, 200): the
    box's bottom edge (row 240, x 220..292) as 'is red' flags, and the whole picture."""
    frame = np.zeros((384, 512, 3), np.uint8)
    result = FrameResult(frame=10, time_s=0.4, phase="tracking", onset_score=0.9,
                         onset=Onset(10, 0.4, 0.9), source=Point(256.0, 200.0, confidence))
    out = OnsetBoxAnnotator().annotate(frame, result)
    return np.all(np.abs(out[240, 220:293].astype(int) - RED) < 40, axis=1), out


def test_a_sure_source_gets_a_solid_box_and_an_unsure_one_a_dashed_box():
    solid, _ = _box_edge(SOURCE_UNSURE + 0.2)
    dashed, _ = _box_edge(SOURCE_UNSURE - 0.2)
    assert solid.all()
    assert 0.3 < dashed.mean() < 0.7  # dashes and gaps of equal length


def test_the_unsure_label_carries_a_question_mark():
    """"source ? 0.30" runs longer than "source 0.70" above the box."""
    def label_end(img: np.ndarray) -> int:
        band = img[140:158]  # above the box's top edge (y 160)
        return int(np.nonzero(np.any(band > 0, axis=(0, 2)))[0].max())

    _, sure = _box_edge(SOURCE_UNSURE + 0.2)
    _, unsure = _box_edge(SOURCE_UNSURE - 0.2)
    assert label_end(unsure) > label_end(sure) + 4  # "? " adds about 7 px at 512 px


def _box_drawn(box: OnsetBoxAnnotator, result: FrameResult) -> bool:
    out = box.annotate(np.zeros((384, 512, 3), np.uint8), result)
    return bool(np.any(out[240, 220:293] > 0))


def test_an_unsure_source_keeps_its_box_until_a_revision_makes_it_clear():
    from bleedorigin.types import SourceRevision, TrackPoint

    box = OnsetBoxAnnotator(duration=6, period=6)
    track = TrackPoint(0, 256.0, 200.0, 0.9)
    onset = FrameResult(10, 0.4, "bleeding", 0.9, onset=Onset(10, 0.4, 0.9), source=Point(256.0, 200.0, 0.2),
                        track=track)
    assert _box_drawn(box, onset)
    later = [FrameResult(f, f / 25, "tracking", 1.0, track=track) for f in range(11, 40)]
    assert all(_box_drawn(box, r) for r in later[6:])  # after the flash: still "source ?"
    clear = FrameResult(40, 1.6, "tracking", 1.0, track=track,
                        revision=SourceRevision(40, 256.0, 200.0, 0.8, "confirmed"))
    assert _box_drawn(box, clear)  # flashes once more, now solid
    after = [FrameResult(f, f / 25, "tracking", 1.0, track=track) for f in range(41, 60)]
    assert not any(_box_drawn(box, r) for r in after[6:])  # clear: the box goes away


def test_an_alarm_shows_its_cue_and_where_it_was_seen():
    """The onset's cue is named under the status label and its place boxed in yellow, for as long
    as the onset box flashes; an onset without a cue draws nothing."""
    from bleedorigin.render import OnsetCueAnnotator

    def yellow(img: np.ndarray) -> np.ndarray:  # drawn antialiased: yellowish, not exactly YELLOW
        r, g, b = (img[..., k].astype(int) for k in range(3))
        return (r > 100) & (g > 90) & (b < 0.5 * g)

    cue = OnsetCueAnnotator()
    onset = Onset(3, 0.1, 0.9, "fresh_blood", (100.0, 120.0, 220.0, 260.0))
    out = cue.annotate(np.zeros((384, 512, 3), np.uint8), FrameResult(10, 0.3, "bleeding", 0.9, onset))
    assert yellow(out)[125:255, 99:102].any(axis=1).all()  # the box's left edge
    assert yellow(out)[259:262, 105:215].any(axis=0).all()  # and its bottom edge
    assert not yellow(out)[150:230, 130:190].any()  # not filled
    assert yellow(out[40:70, :200]).any()  # the cue's name under the status label
    later = cue.annotate(np.zeros((384, 512, 3), np.uint8), FrameResult(60, 2.0, "tracking", 1.0))
    assert not later.any()  # gone after `duration` frames
    plain = OnsetCueAnnotator().annotate(np.zeros((384, 512, 3), np.uint8),
                                         FrameResult(10, 0.3, "bleeding", 0.9, Onset(3, 0.1, 0.9)))
    assert not plain.any()
