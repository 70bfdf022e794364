"""scripts/: the onset threshold replay gives the streaming detector's answer."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from bleedorigin.eval.protocol import eval_onset
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.onset.predictor import REFINE_RADIUS, OnsetDetector
from bleedorigin.sim.writer import write_bench

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """Load a script as `python scripts/NAME.py` would: with scripts/ on sys.path for its siblings."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onset_threshold_replay_matches_the_streaming_detector(tmp_path):
    script = load_script("onset_threshold")
    write_bench(tmp_path, n=1, seed=9, kind="detect")
    clip = discover_clips(tmp_path)[0]
    streaming = OnsetDetector.from_pretrained("small", device="cpu")  # threshold 0.5, refinement on
    expected = eval_onset(streaming, clip)["pred"]
    assert expected is not None and abs(expected - clip.onset_frame) <= 8
    det = OnsetDetector.from_pretrained("small", device="cpu", refine_radius=0)
    trace = script.clip_trace(det, clip)
    assert script.decide(trace, 0.5, REFINE_RADIUS, det.cfg.window) == expected
    assert script.decide(trace, 1.0, REFINE_RADIUS, det.cfg.window) is None  # no window is that sure


@pytest.mark.parametrize("name", ["onset_threshold", "leave_one_out", "source_labelled_frames", "shift_white_balance",
                                  "source_confidence_select"])
def test_scripts_reject_a_missing_folder_with_exit_2(name, tmp_path, monkeypatch):
    script = load_script(name)
    args = {"onset_threshold": [name, "weights/onset_small", str(tmp_path / "missing")],
            "leave_one_out": [name, "track", str(tmp_path / "missing"), "--out", str(tmp_path / "out")],
            "source_labelled_frames": [name, str(tmp_path / "missing")],
            "shift_white_balance": [name, str(tmp_path / "missing"), str(tmp_path / "out")],
            "source_confidence_select": [name, "--sim", str(tmp_path / "missing"), "--real", str(tmp_path)]}[name]
    monkeypatch.setattr("sys.argv", args)
    with pytest.raises(SystemExit) as e:
        script.main()
    assert e.value.code == 2


def test_source_confidence_rule_needs_both_domains_and_the_right_halves():
    """The rule of docs/source.md: a candidate is eligible when it ranks the errors the right
    way round on the real labels and on BleedSim; the best real rho wins, and candidates within
    0.05 of it go to the better BleedSim rho."""
    import numpy as np

    script = load_script("source_confidence_select")
    err_r, err_s = np.arange(1.0, 9.0), np.arange(1.0, 7.0)
    down_r, down_s = 9.0 - err_r, 7.0 - err_s  # confidence falls as the error grows: rho -1
    swap_r = down_r[[1, 0, 2, 3, 4, 5, 6, 7]]  # one neighbouring pair swapped: real rho -0.98
    swap_s = down_s[[2, 1, 0, 3, 4, 5]]        # BleedSim rho -0.77
    real = (err_r, {"inverted_sim": down_r, "near_tie": swap_r, "best_real": down_r, "inverted_real": err_r},
            ["x"] * 8)
    sim = (err_s, {"inverted_sim": err_s, "near_tie": down_s, "best_real": swap_s, "inverted_real": down_s},
           ["s"] * 6)
    assert script.choose(real, sim) == "near_tie"
    real[1]["near_tie"] = down_r[[3, 1, 2, 0, 4, 5, 6, 7]]  # real rho -0.79: no longer within 0.05
    assert script.choose(real, sim) == "best_real"
    only = (err_r, {"inverted_real": err_r}, ["x"] * 8), (err_s, {"inverted_real": down_s}, ["s"] * 6)
    assert script.choose(*only) is None


def test_source_labelled_frames_scores_every_source_label(tmp_path, tiny_clip):
    """A clip whose one point is the bleeding source, labelled on three frames: three items at the
    model resolution, first frame flagged, and the red-mask peak lands on the growing red disc."""
    import json
    import shutil
    from bleedorigin.models.loading import load_stage
    from bleedorigin.eval.locate import evaluate_source
    clip = tmp_path / "clips" / "bleed_001"
    clip.mkdir(parents=True)
    shutil.copy(tiny_clip.path, clip / "video.mp4")
    labelled = (10, 16, 22)
    (clip / "labels.json").write_text(json.dumps({str(t): [list(tiny_clip.path_xy[t])] for t in labelled}))
    script = load_script("source_labelled_frames")
    items = script.labelled_items(str(tmp_path / "clips"))
    assert [it["id"] for it in items] == [f"bleed_001@{t}" for t in labelled]
    assert [it["first"] for it in items] == [True, False, False]
    assert items[0]["frame"].shape == (384, 512, 3)
    x, y = tiny_clip.path_xy[10]
    assert items[0]["xy"] == pytest.approx((x * 8 + 3.5, y * 8 + 3.5), abs=1e-6)  # 64x48 -> 512x384 pixel centres
    assert evaluate_source(load_stage("source", "source_redmask"), items)["err_avg"] < 25


def test_stage_extra_real_crop_dedup_and_deoverlay():
    """Page-video crops keep one copy of each repeated frame; the deployment clean-up blacks the
    label box, crops the alarm border and leaves no green marker pixel."""
    import numpy as np
    script = load_script("stage_extra_real")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(2))
    kept, fps = script._crop_dedup([a, a, b, b, b, a], 30.0, (10, 5, 40, 30))
    assert len(kept) == 3 and kept[0].shape == (30, 40, 3) and fps == pytest.approx(15.0)
    assert np.array_equal(kept[1], b[5:35, 10:50])
    frame = np.full((200, 400, 3), (150, 60, 70), np.uint8)  # pinkish-red tissue
    frame[100:130, 200:230] = (40, 220, 40)  # green marker
    out, = script._deoverlay([frame])
    border = script.BORDER
    assert out.shape == (200 - 2 * border, 400 - 2 * border, 3)
    rgb = out.astype(int)
    assert not ((rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) > 10).any()
    x, y, w, h = script.LABEL_BOX
    assert (out[: y + h - border, : x + w - border] == 0).all()


def test_stage_extra_real_rejects_missing_repos_with_exit_2(tmp_path, monkeypatch):
    script = load_script("stage_extra_real")
    monkeypatch.setattr("sys.argv", ["stage_extra_real", "--repos", str(tmp_path), "--out", str(tmp_path / "o"),
                                     "--only", "robotic_endovis17_suturing"])
    with pytest.raises(SystemExit) as e:
        script.main()
    assert e.value.code == 2
