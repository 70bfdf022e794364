"""Evaluation protocol (eval.protocol) on tiny clips with hand-computed answers.

Frames are 64x48, so the 512x384 model frame is exactly 8x larger: 1 input px = 8 px of error.
Stub predictors implement the stage interfaces with known behaviour.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_tiny_frames, write_mp4

from bleedorigin.eval import e2e, protocol
from bleedorigin.io.bench import Clip
from bleedorigin.models.base import OnsetDetectorBase, OnsetStep, PointTrackerBase, SourceLocatorBase
from bleedorigin.types import BleedingEvent, FrameResult, Onset, Point, TrackPoint

W, H = 64, 48


def to_model(xy):  # half-pixel-centre mapping 64x48 -> 512x384 (scale 8)
    return ((xy[0] + 0.5) * 8 - 0.5, (xy[1] + 0.5) * 8 - 0.5)


class RedOnset(OnsetDetectorBase):
    """Raises `delay` frames after the first frame holding dark-red pixels."""

    def __init__(self, delay: int = 0):
        self.delay = delay
        self.calls = 0
        self.reset()

    def reset(self) -> None:
        self.t, self.first = 0, None

    def step(self, frame: np.ndarray) -> OnsetStep:
        self.calls += 1
        assert frame.shape == (384, 512, 3)  # the protocol feeds model-resolution frames
        red = bool(((frame[..., 0] < 160) & (frame[..., 1] < 60)).any())
        if red and self.first is None:
            self.first = self.t
        t, self.t = self.t, self.t + 1
        raised = self.first is not None and t == self.first + self.delay
        return OnsetStep(1.0 if self.first is not None else 0.0, t if raised else None)


class FixedSource(SourceLocatorBase):
    """Returns a fixed model-resolution point and remembers the history length it got."""

    def __init__(self, xy_model):
        self.xy = xy_model
        self.history_len = None
        self.calls = 0

    def locate(self, frame, history=None):
        self.calls += 1
        self.history_len = 0 if history is None else len(history)
        return Point(self.xy[0], self.xy[1], 0.9)


class StillTracker(PointTrackerBase):
    """Never moves from its start point."""

    def __init__(self):
        self.calls = 0

    def start(self, frame, point, frame_index=0):
        self.calls += 1
        self.p = point

    def step(self, frame):
        self.calls += 1
        return TrackPoint(0, self.p[0], self.p[1], 0.8, True)


def make_clip(tmp: Path, cid: str, kind: str, onset: int | None, labels: dict, gt: Path | None = None,
              scenario: str = "clear_view", site: str = "duodenum", n: int = 24) -> Clip:
    frames, _ = make_tiny_frames(n=n, onset=onset if onset is not None else n + 1)
    video = tmp / f"{cid}.mp4"
    write_mp4(video, frames)
    return Clip(id=cid, video=video, kind=kind, patient="p1", site=site, scenario=scenario,
                num_frames=n, fps=30.0, width=W, height=H, onset_frame=onset, labels=labels,
                gt=gt, split=None)


def test_onset_first_raised_onset_and_negatives(tmp_path: Path) -> None:
    det = make_clip(tmp_path, "det", "detect", 8, {8: [(25.6, 24.0)]})
    neg = make_clip(tmp_path, "neg", "negative", None, {})
    r = protocol.eval_onset(RedOnset(delay=3), det)
    assert (r["gt"], r["pred"], r["raised_at"]) == (8, 11, 11)
    assert len(r["scores"]) == 24 and r["scores"][7] == 0.0 and r["scores"][8] == 1.0
    r = protocol.eval_onset(RedOnset(), neg)
    assert r["gt"] is None and r["pred"] is None  # no false alarm
    assert protocol.applicable("onset", neg) and not protocol.applicable("source", neg)


def test_source_on_gt_onset_frame_with_history_and_scaled_error(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "det", "detect", 8, {8: [(25.0, 24.0)]})
    gt_model = to_model((25.0, 24.0))
    loc = FixedSource((gt_model[0] + 80.0, gt_model[1] + 60.0))  # 10 px right, 7.5 down (input)
    r = protocol.eval_source(loc, clip, history_frames=5)
    assert r["frame"] == 8 and loc.history_len == 5
    assert r["pred"] == pytest.approx([35.0, 31.5])
    assert r["error"] == pytest.approx(100.0)  # sqrt(80^2 + 60^2) at 512x384


def test_source_query_rules(tmp_path: Path) -> None:
    one = make_clip(tmp_path, "esd", "sparse", None, {0: [(10.0, 12.0)], 30: [(11.0, 12.0)]})
    multi = make_clip(tmp_path, "vl", "sparse", None, {0: [(10.0, 12.0), (3.0, 4.0)]})
    assert protocol.source_query(one) == (0, (10.0, 12.0))
    assert protocol.source_query(multi) is None  # tissue/instrument points, not a bleeding source
    r = protocol.eval_source(FixedSource(to_model((10.0, 12.0))), one)
    assert r["error"] == pytest.approx(0.0, abs=1e-6)


def test_track_labelled_frames_multi_point_and_nulls(tmp_path: Path) -> None:
    labels = {0: [(20.0, 24.0), (30.0, 10.0), None],
              10: [(20.0, 25.0), None, (5.0, 5.0)],   # point 1 null: not scored at 10
              23: [(22.5, 24.0), (30.0, 10.0), (6.0, 6.0)]}
    clip = make_clip(tmp_path, "trk", "track_short", None, labels)
    tracker = StillTracker()
    r = protocol.eval_track(tracker, clip)
    assert r["start"] == 0 and [p["point"] for p in r["points"]] == [0, 1]  # null start skipped
    p0, p1 = r["points"]
    assert [(row["frame"], row["since"]) for row in p0["labelled"]] == [(10, 10), (23, 23)]
    assert [row["error"] for row in p0["labelled"]] == pytest.approx([8.0, 20.0])
    assert [row["frame"] for row in p1["labelled"]] == [23]
    assert p1["labelled"][0]["error"] == pytest.approx(0.0, abs=1e-6)
    assert p0["dense"] is None and len(p0["pred"]) == 24
    assert tracker.calls == 2 * 24  # one start + 23 steps per point


def test_track_full_clip_starts_at_onset_and_scores_dense_truth(tmp_path: Path) -> None:
    n, onset = 24, 8
    src = np.tile(np.array([[20.0, 24.0]], np.float32), (n, 1))
    src[onset + 1:, 0] += 1.0  # truth moves 1 input px right after the onset: 8 px error
    gt = tmp_path / "gt.npz"
    np.savez(gt, onset_frame=np.int64(onset), source_xy=src)
    clip = make_clip(tmp_path, "full", "full", onset, {8: [(20.0, 24.0)]}, gt=gt, n=n)
    r = protocol.eval_track(StillTracker(), clip)
    assert r["start"] == onset and r["points"][0]["labelled"] == []
    dense = r["points"][0]["dense"]
    assert dense["frames"] == list(range(onset + 1, n))
    assert dense["errors"] == pytest.approx([8.0] * (n - onset - 1))


def test_imported_clip_scores_every_frame_of_labels_dense(tmp_path: Path) -> None:
    """An imported clip folder with labels_dense.json is scored on every frame it labels
    (frames without a dense label are skipped), beside its sparse labels."""
    import json

    from bleedorigin.io.importers import import_clip_folder

    n = 24
    folder = tmp_path / "clear_view_001"
    folder.mkdir()
    frames, _ = make_tiny_frames(n=n, onset=n + 1)
    write_mp4(folder / "video.mp4", frames)
    (folder / "labels.json").write_text(json.dumps({"0": [[20.0, 24.0]], "12": [[21.0, 24.0]]}))
    dense = {str(f): [[20.0 + (f >= 12), 24.0]] for f in range(n) if f != 5}  # frame 5 unlabelled
    (folder / "labels_dense.json").write_text(json.dumps(dense))
    clip, = import_clip_folder(folder)
    r = protocol.eval_track(StillTracker(), clip)
    point = r["points"][0]
    assert [row["frame"] for row in point["labelled"]] == [12]
    assert point["dense"]["frames"] == [f for f in range(1, n) if f != 5]
    assert point["dense"]["errors"] == pytest.approx([0.0 if f < 12 else 8.0 for f in point["dense"]["frames"]])


class FakePipeline:
    """Stands in for bleedorigin.pipeline.Pipeline: onset raised at frame 10, point (21, 24) after."""

    onset = SimpleNamespace(score_threshold=0.5)

    def stream(self, video, progress=False):
        event = BleedingEvent(Onset(10, 10 / 30, 0.9), Point(21.0, 24.0, 0.9))
        self.events = [event]
        for f in range(24):
            if f >= 10:
                event.track.append(TrackPoint(f, 21.0, 24.0, 0.9))
            phase = "waiting" if f < 10 else "bleeding" if f == 10 else "tracking"
            yield FrameResult(f, f / 30, phase, 0.2 if f < 10 else 0.9 if f == 10 else 1.0)


def test_end_to_end_scores_onset_track_and_coverage(tmp_path: Path) -> None:
    src = np.tile(np.array([[20.0, 24.0]], np.float32), (24, 1))
    gt = tmp_path / "gt.npz"
    np.savez(gt, onset_frame=np.int64(8), source_xy=src)
    clip = make_clip(tmp_path, "full", "full", 8, {8: [(20.0, 24.0)]}, gt=gt)
    assert protocol.applicable("e2e", clip)
    r = e2e.eval_end_to_end(FakePipeline(), clip)
    assert (r["gt"], r["pred"]) == (8, 10)
    assert r["frames"] == list(range(10, 24)) and r["errors"] == pytest.approx([8.0] * 14)
    assert r["coverage"] == pytest.approx(14 / 16)  # frames 8 and 9 had no point yet
    timeline = r["timeline"]  # what the clip's timeline plot draws
    assert timeline["threshold"] == 0.5 and len(timeline["scores"]) == 24
    assert timeline["scores"][:11] == pytest.approx([0.2] * 10 + [0.9])
    assert timeline["scores"][11:] == [None] * 13  # the detector does not run while tracking
    assert timeline["events"] == [{"onset": 10, "frames": list(range(10, 24)), "confidence": [0.9] * 14}]


def test_real_bleeding_present_on_sample_clips(tmp_path: Path) -> None:
    """Single-point sample clips bleed from frame 0 and count when flagged by frame 30;
    multi-point ones are bleeding-free and count any onset as an alarm; the report tabulates both."""
    import dataclasses

    from bleedorigin.eval.report import present_section
    from bleedorigin.eval.runner import present_block

    esd = dataclasses.replace(make_clip(tmp_path, "esd", "sparse", 2, {0: [(10.0, 12.0)]}), onset_frame=None)
    vl = dataclasses.replace(make_clip(tmp_path, "vl", "sparse", 3, {0: [(10.0, 12.0), (3.0, 4.0)]}),
                             onset_frame=None)
    assert protocol.applicable("onset", esd) and protocol.applicable("onset", vl)
    r_esd, r_vl = protocol.eval_onset(RedOnset(), esd), protocol.eval_onset(RedOnset(), vl)
    assert (r_esd["real_bleeding"], r_esd["pred"], r_esd["flagged"]) == (True, 2, True)
    assert (r_vl["real_bleeding"], r_vl["pred"]) == (False, 3)  # red in a bleeding-free clip: an alarm
    block = present_block([r_esd, r_vl])
    assert (block["flagged"], block["bleeding"], block["alarms"], block["bleeding_free"]) == (1, 1, 1, 1)
    metrics = {"models": {"onset": [{"key": "m", "name": "m", "baseline": False}]},
               "onset": {"m": {"real_present": block}}}
    text = "\n".join(present_section(metrics))
    assert "| m | 1 of 1 | 1 of 1 |" in text and "| esd | yes | 2 (" in text and "| vl | no | 3 (" in text


def _status_folder(root: Path, name: str, red_from: int, meta: dict) -> Path:
    import json
    folder = root / "extra" / "cat" / name  # two levels below the evaluated folder, as in extra_real/
    folder.mkdir(parents=True)
    frames, _ = make_tiny_frames(n=60, onset=red_from)
    write_mp4(folder / "video.mp4", frames)
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_real_clips_with_bleeding_status_only(tmp_path: Path) -> None:
    """Unlabelled real clips state `bleeding` / `bleeding_from_frame` in meta.json: a bleeding
    clip counts as flagged when the onset lands within 30 frames of its start (an alarm long
    before it does not), and any onset on a bleeding-free clip is an alarm."""
    from bleedorigin.eval.report import present_section
    from bleedorigin.eval.runner import present_block
    from bleedorigin.io.bench import discover_clips

    _status_folder(tmp_path, "late", 40, {"bleeding": True, "bleeding_from_frame": 40})
    _status_folder(tmp_path, "early", 5, {"bleeding": True, "bleeding_from_frame": 40})
    _status_folder(tmp_path, "free", 10, {"bleeding": False, "bleeding_from_frame": None})
    clips = {c.id: c for c in discover_clips(tmp_path / "extra")}
    assert sorted(clips) == ["early", "free", "late"]
    assert all(c.kind == "sparse" and not c.labels and c.num_frames == 60 for c in clips.values())
    assert [protocol.real_bleeding(clips[k]) for k in ("late", "early", "free")] == [True, True, False]
    recs = {k: protocol.eval_onset(RedOnset(), c) for k, c in clips.items() if protocol.applicable("onset", c)}
    assert (recs["late"]["gt"], recs["late"]["pred"], recs["late"]["flagged"]) == (40, 40, True)
    assert (recs["early"]["pred"], recs["early"]["flagged"]) == (5, False)  # 35 frames before the start
    assert (recs["free"]["gt"], recs["free"]["pred"]) == (None, 10)
    block = present_block(list(recs.values()))
    assert (block["flagged"], block["bleeding"], block["alarms"], block["bleeding_free"]) == (1, 2, 1, 1)
    metrics = {"models": {"onset": [{"key": "m", "name": "m", "baseline": False}]},
               "onset": {"m": {"real_present": block}}}
    text = "\n".join(present_section(metrics))
    assert "| late | from 40 | 40 (" in text and "| free | no | 10 (" in text


def test_labelled_real_clip_bleeding_mid_clip(tmp_path: Path) -> None:
    """A labelled real clip whose meta.json says bleeding starts at frame 40 (the deployment video:
    another system's point from its alarm on) is scored for onset against frame 40, its episode
    starts there, and tracking starts at its first label; a start without `bleeding` is refused."""
    import json

    from bleedorigin.errors import InputError
    from bleedorigin.io.bench import discover_clips

    folder = _status_folder(tmp_path, "deploy", 40, {"bleeding": True, "bleeding_from_frame": 40})
    labels = {str(f): [[30.0, 20.0]] for f in range(42, 60)}
    (folder / "labels.json").write_text(json.dumps({"42": labels["42"]}))
    (folder / "labels_dense.json").write_text(json.dumps(labels))
    clip, = discover_clips(tmp_path / "extra")
    assert (clip.onset_frame, protocol.real_bleeding(clip), protocol.episode_start(clip)) == (40, True, 40)
    record = protocol.eval_onset(RedOnset(), clip)
    assert (record["gt"], record["pred"], record["flagged"]) == (40, 40, True)
    assert protocol.track_queries(clip) == (42, [(0, (30.0, 20.0))])
    assert np.isnan(protocol.dense_source(clip)[:42]).all() and protocol.dense_source(clip)[59].tolist() == [30, 20]
    (folder / "meta.json").write_text(json.dumps({"bleeding_from_frame": 40}))
    with pytest.raises(InputError, match="meta.json"):
        discover_clips(tmp_path / "extra")


@pytest.mark.parametrize("meta", [{"bleeding": True}, {"bleeding": "yes", "bleeding_from_frame": 3},
                                  {"bleeding": False, "bleeding_from_frame": 3},
                                  {"bleeding": True, "bleeding_from_frame": -1}])
def test_real_clip_status_must_be_consistent(tmp_path: Path, meta: dict) -> None:
    from bleedorigin.errors import InputError
    from bleedorigin.io.bench import discover_clips

    _status_folder(tmp_path, "bad", 10, meta)
    with pytest.raises(InputError, match="meta.json"):
        discover_clips(tmp_path / "extra")
