"""LabelMe round trips, the benchmark layout, patient-level splits, importers and `data check`."""
from __future__ import annotations

import json

import pytest

from bleedorigin.errors import InputError
from bleedorigin.io.bench import Clip, discover_clips, load_bench, split_by_patient, write_bench_clip, write_manifest
from bleedorigin.io.check import check_bench, summarize
from bleedorigin.io.importers import import_esd_clips, import_vlsurgpt
from bleedorigin.io.labelme import load_labelme, save_labelme
from conftest import make_tiny_frames


def test_labelme_round_trip_keeps_point_order_and_gaps(tmp_path):
    f = tmp_path / "a.json"
    save_labelme(f, [(1.25, 2.5), None, (30.0, 40.0)], (64, 48), image_path="x.png")
    lm = load_labelme(f)
    assert lm.points == [(1.25, 2.5), None, (30.0, 40.0)]
    assert lm.image_size == (64, 48) and lm.image_path == "x.png"
    doc = json.loads(f.read_text())
    assert doc["shapes"][0]["shape_type"] == "point" and doc["imageData"] is None


def test_labelme_tolerates_extra_fields_and_other_shapes(tmp_path):
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"version": "4.0", "something": 1, "imageWidth": 10, "imageHeight": 8, "shapes": [
        {"label": "lesion", "shape_type": "polygon", "points": [[0, 0], [1, 1], [2, 0]]},
        {"label": "bleeding_source", "shape_type": "point", "points": [[3, 4]], "group_id": None, "other": "x"}]}))
    assert load_labelme(f).points == [(3.0, 4.0)]


@pytest.mark.parametrize("text, why", [
    ("{not json", "not valid JSON"),
    ('{"imageWidth": 5}', "no 'shapes'"),
    ('{"shapes": [{"shape_type": "point", "points": [[1, 2], [3, 4]]}]}', "exactly one"),
    ('{"shapes": [{"shape_type": "point", "points": [["a", 2]]}]}', "exactly one"),
    ('{"shapes": [{"shape_type": "point", "points": [[1, 2]], "group_id": 0},'
     ' {"shape_type": "point", "points": [[1, 2]], "group_id": 0}]}', "group_id"),
])
def test_labelme_rejects_broken_files_with_the_file_name(tmp_path, text, why):
    f = tmp_path / "broken.json"
    f.write_text(text)
    with pytest.raises(InputError, match=why) as e:
        load_labelme(f)
    assert "broken.json" in str(e.value)


def _clip(root, cid, kind="detect", patient="p1", onset=8, labels=None, n=24):
    return Clip(id=cid, video=root / "clips" / cid / "video.mp4", kind=kind, patient=patient, site="duodenum",
                scenario="clear_view", num_frames=n, fps=30.0, width=64, height=48, onset_frame=onset,
                labels={onset: [(20.0, 24.0)]} if labels is None else labels)


def _write(root, clips):
    stored = []
    for c in clips:
        frames, _ = make_tiny_frames(n=c.num_frames)
        stored.append(write_bench_clip(root, c, frames))
    write_manifest(root, stored)
    return stored


def test_bench_round_trip(tmp_path):
    root = tmp_path / "bench"
    _write(root, [_clip(root, "a"), _clip(root, "n", kind="negative", onset=None, labels={})])
    loaded = {c.id: c for c in load_bench(root)}
    assert loaded["a"].labels == {8: [(20.0, 24.0)]} and loaded["a"].onset_frame == 8
    assert loaded["n"].labels == {} and loaded["n"].video.is_file()
    assert check_bench(root) == []
    assert [c.id for c in discover_clips(root)] == ["a", "n"]


def test_check_lists_every_problem(tmp_path):
    root = tmp_path / "bench"
    _write(root, [_clip(root, "a"), _clip(root, "b", onset=4, labels={4: [(200.0, 5.0)]}),
                  _clip(root, "c", kind="track_short", onset=None, labels={0: [(1.0, 1.0)], 23: [(2.0, 2.0)]})])
    (root / "clips" / "a" / "labels" / "000008.json").write_text("{oops")         # unreadable JSON
    (root / "clips" / "c" / "labels" / "000030.json").write_text('{"shapes": []}')  # beyond the clip
    (root / "clips" / "c" / "video.mp4").write_bytes(b"text renamed .mp4")        # broken video
    problems = check_bench(root)
    kinds = sorted(p.kind for p in problems)
    assert kinds == ["frame-index", "frame-index", "label-json", "outside", "video"], summarize(problems)
    text = summarize(problems)
    assert "000008.json" in text and "5 problem(s)" in text and "outside 1" in text


def test_split_is_by_patient_and_reproducible(tmp_path):
    clips = [_clip(tmp_path, f"c{i}", patient=f"p{i % 12}") for i in range(60)]
    a = split_by_patient(clips, seed=3)
    b = split_by_patient(clips, seed=3)
    assert [c.split for c in a] == [c.split for c in b]
    by_patient = {}
    for c in a:
        by_patient.setdefault(c.patient, set()).add(c.split)
    assert all(len(s) == 1 for s in by_patient.values())  # no patient in two splits
    counts = {s: sum(1 for p in by_patient.values() if s in p) for s in ("train", "val", "test")}
    assert counts == {"train": 8, "val": 2, "test": 2}  # 4:1:1 of 12 patients
    assert [c.split for c in split_by_patient(clips, seed=4)] != [c.split for c in a]


@pytest.mark.real
def test_importers_read_the_real_sample_clips(shared_data):
    esd = import_esd_clips(shared_data / "esd_clips")
    assert len(esd) == 6 and all(c.kind == "sparse" and c.width == 112 for c in esd)
    assert {c.scenario for c in esd} == {"clear_view", "obscured_view", "camera_jitter", "light_reflection",
                                         "water_flushing", "instrument_interference"}
    water = next(c for c in esd if c.id == "water_013")
    assert sorted(water.labels) == [0, 30, 60, 90, 120, 150] and len(water.labels[0]) == 1
    vl = {c.id: c for c in import_vlsurgpt(shared_data / "vlsurgpt")}
    assert len(vl["instrument_seq000"].labels[0]) == 13 and (vl["tissue_seq000"].width, vl["tissue_seq000"].height) == (1280, 760)
    assert check_bench(shared_data) == []
