"""Deployment-mode scoring (eval.e2e) on hand-made cases with known answers.

Frames are 64x48: 1 input px = 8 px of error at 512x384 (as in test_eval_protocol)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_tiny_frames, write_mp4

from bleedorigin.eval import e2e, protocol
from bleedorigin.eval.runner import e2e_summary
from bleedorigin.io.importers import import_clip_folder
from bleedorigin.types import BleedingEvent, FrameResult, Onset, Point, SourceRevision, TrackPoint


@pytest.mark.parametrize("errors, within, frames", [
    ([30, 20, 10, 5], 25, 1),          # within from frame 1 on
    ([10, 10, 10], 25, 0),             # within from the start
    ([10, 30, 10, 10], 25, 2),         # left once: counts from the return
    ([10, 10, 30], 25, None),          # outside at the end: never settled
    ([None, None, 24.9, 24.0], 25, 2),  # no point yet = outside
    ([25.0, 24.0], 25, 1),             # strictly below, as Acc<25
    ([60, 40, 30], 50, 1),
    ([], 25, None),
])
def test_frames_to_settle(errors, within, frames):
    assert e2e.frames_to_settle(errors, within) == frames


def test_settle_block_counts_clips_that_never_settle():
    b = e2e.settle_block([3, None, 7, 10])
    assert (b["clips"], b["settled"]) == (4, 3)
    assert b["mean_frames"] == pytest.approx(20 / 3) and b["median_frames"] == 7


class RevisingPipeline:
    """Onset raised at frame 4 (back-dated to 0): the point drawn live sits 4 px right of the
    reference (32 px at 512x384) until frame 10, where the source is revised onto the reference;
    the result track is the revised source's path, on the reference from frame 0."""

    onset = SimpleNamespace(score_threshold=0.5)

    def stream(self, video, progress=False):
        event = BleedingEvent(Onset(0, 0.0, 0.9), Point(20.0, 24.0, 0.8),
                              [TrackPoint(f, 20.0, 24.0, 0.9) for f in range(24)],
                              [SourceRevision(4, 24.0, 24.0, 0.3, "onset"),
                               SourceRevision(10, 20.0, 24.0, 0.8, "moved")])
        self.events = [event]
        for f in range(24):
            track = None if f < 4 else TrackPoint(f, 24.0 if f < 10 else 20.0, 24.0, 0.9)
            yield FrameResult(f, f / 30, "waiting" if f < 4 else "tracking", 0.9, track=track)


def _real_clip(tmp_path: Path, n: int = 24):
    """A real-style imported clip bleeding from frame 0, reference (20, 24) on every frame."""
    folder = tmp_path / "esd_like"
    folder.mkdir()
    frames, _ = make_tiny_frames(n=n, onset=0)
    write_mp4(folder / "video.mp4", frames)
    (folder / "labels.json").write_text(json.dumps({"0": [[20.0, 24.0]]}))
    (folder / "labels_dense.json").write_text(json.dumps({str(f): [[20.0, 24.0]] for f in range(n)}))
    clip, = import_clip_folder(folder)
    return clip


def test_real_clip_with_dense_labels_is_scored_on_every_frame_live_and_as_revised(tmp_path: Path):
    clip = _real_clip(tmp_path)
    assert protocol.applicable("e2e", clip) and protocol.episode_start(clip) == 0
    r = e2e.eval_end_to_end(RevisingPipeline(), clip)
    assert r["episode"]["frames"] == list(range(24))
    live = r["episode"]["live"]
    assert live[:4] == [None] * 4  # nothing drawn before the onset was raised
    assert live[4:10] == pytest.approx([32.0] * 6) and live[10:] == pytest.approx([0.0] * 14)
    assert r["episode"]["result"] == pytest.approx([0.0] * 24)
    assert r["settle"]["live"] == {"25": 10, "50": 4}
    assert r["settle"]["result"] == {"25": 0, "50": 0}
    assert r["located_error"] == pytest.approx(32.0) and r["source_error"] == pytest.approx(0.0)
    assert [v["why"] for v in r["revisions"]] == ["onset", "moved"]

    s = e2e_summary([r], "fake")
    live_block = s["episode"]["live"]["points"]
    assert live_block["n"] == 24 and live_block["missed"] == 4
    assert live_block["acc"]["25"] == pytest.approx(14 / 24)
    assert live_block["err_avg"] == pytest.approx(32.0 * 6 / 20)
    assert s["episode"]["live"]["settle"]["25"]["median_frames"] == 10
    assert s["episode"]["revisions"] == 1
    assert s["per_clip"][0]["live"]["settle"] == {"25": 10, "50": 4}


def test_bleeding_free_and_unlabelled_clips_are_not_scored(tmp_path: Path):
    clip = _real_clip(tmp_path)
    (Path(clip.dense_labels)).unlink()
    clip, = import_clip_folder(Path(clip.video).parent)
    assert not protocol.applicable("e2e", clip)
