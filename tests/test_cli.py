"""The CLI contract of DESIGN.md: outputs on a clip with known truth, and clean failures."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bleedorigin.cli import main
from conftest import write_mp4


# The tiny clips are 24 frames: shorter than the trained onset model's 60-frame window, so the
# CLI behaviour is checked with the baselines (the shipped models are tested on BleedSim clips).
BASELINES = ("--onset-model", "onset_hsv", "--source-model", "source_redmask", "--track-model", "track_lk")


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


def test_detect_finds_onset_of_tiny_clip(tiny_clip, tmp_path):
    out = tmp_path / "onset.json"
    assert cli("-q", "detect", tiny_clip.path, "--out", out, "--model", "onset_hsv") == 0
    res = json.loads(out.read_text())
    assert len(res["scores"]) == len(tiny_clip.frames)
    assert res["onset_frame"] is not None
    assert abs(res["onset_frame"] - tiny_clip.onset_frame) <= 2


def test_locate_points_at_the_red_disc(tiny_clip, tmp_path):
    out = tmp_path / "src.json"
    assert cli("locate", tiny_clip.path, "--frame", 20, "--out", out, "--model", "source_redmask") == 0
    res = json.loads(out.read_text())
    truth = tiny_clip.path_xy[20]
    assert res["frame"] == 20
    assert np.hypot(res["x"] - truth[0], res["y"] - truth[1]) < 4


def test_track_follows_the_drifting_texture(tiny_clip, tmp_path):
    out = tmp_path / "track.json"
    x0, y0 = tiny_clip.path_xy[0]
    assert cli("-q", "track", tiny_clip.path, "--point", x0, y0 - 16, "--start", 0, "--out", out, "--model", "track_lk") == 0
    res = json.loads(out.read_text())
    assert res["start"] == 0 and len(res["points"]) == len(tiny_clip.frames)
    x, y, conf = res["points"][-1]
    # The background moves right by 1 px every other frame; the point, above the growing red
    # disc (12 px radius at the end), rides on it.
    shift = (len(tiny_clip.frames) - 1) // 2
    assert abs(x - (x0 + shift)) < 1.5 and abs(y - (y0 - 16)) < 1.5


ONSET_LINE = (255, 127, 14)  # matplotlib's C1: the detected-onset line of timeline.png


def onset_line_columns(png) -> np.ndarray:
    """Image columns crossed by a long vertical run of the onset line's colour."""
    img = cv2.imread(str(png))[..., ::-1].astype(int)
    hit = np.abs(img - ONSET_LINE).sum(-1) < 40
    return np.flatnonzero(hit.sum(0) > img.shape[0] // 4)


def test_run_writes_result_overlay_jsonl_and_timeline_readable_by_others(tiny_clip, tmp_path):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        assert cli("-q", "run", tiny_clip.path, "--out", out, *BASELINES) == 0
    finally:
        os.umask(old)
    for name in ("result.json", "results.jsonl", "overlay.mp4", "timeline.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert len(onset_line_columns(out / "timeline.png")) > 0  # the detected onset is drawn
    res = json.loads((out / "result.json").read_text())
    assert res["frames"] == len(tiny_clip.frames) and res["width"] == 64
    assert res["onset"] is not None and abs(res["onset"]["frame"] - tiny_clip.onset_frame) <= 2
    assert res["source"] is not None and res["track"][0]["frame"] == res["onset"]["frame"]
    assert res["track"][-1]["frame"] == len(tiny_clip.frames) - 1
    # the configuration it ran with: the shipped episode settings, the models given on the command line
    assert res["config"]["track"] == {"model": "track_lk", "options": {}} and len(res["config_hash"]) == 12
    assert res["config"]["episode"]["end_patience"] == 90
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(tiny_clip.frames)
    with av.open(str(out / "overlay.mp4")) as f:
        assert sum(1 for _ in f.decode(video=0)) == len(tiny_clip.frames)


def _assert_clean_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and "Traceback" not in err
    assert len(err.splitlines()) == 1
    return err


@pytest.mark.parametrize("content", [b"", b"this is not a video at all"])
def test_broken_video_is_a_clean_error(tmp_path, capsys, content):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    code = cli("detect", bad, "--out", tmp_path / "r.json")
    _assert_clean_error(capsys, code)
    assert not (tmp_path / "r.json").exists()


def test_missing_file_and_bad_arguments(tiny_clip, tmp_path, capsys):
    _assert_clean_error(capsys, cli("detect", tmp_path / "nope.mp4", "--out", tmp_path / "r.json"))
    _assert_clean_error(capsys, cli("track", tiny_clip.path, "--point", 500, 5, "--out",
                                    tmp_path / "t.json"))
    _assert_clean_error(capsys, cli("locate", tiny_clip.path, "--frame", 999, "--out",
                                    tmp_path / "l.json"))
    _assert_clean_error(capsys, cli("detect", tiny_clip.path, "--model", "onset_nope", "--out",
                                    tmp_path / "r.json"))
    # usage errors (missing option, stray argument) exit 2 as well, with click's usage text
    assert cli("detect", tiny_clip.path) == 2
    assert cli("evaluate", tmp_path, "--out", tmp_path / "e", "--models", "a", "b") == 2
    assert "--debug" not in capsys.readouterr().err


def test_truncated_video_keeps_results_up_to_the_break(tiny_clip, tmp_path, capsys):
    whole = tmp_path / "faststart.mp4"
    write_mp4(whole, tiny_clip.frames, faststart=True)  # index first: the cut file still opens
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "onset.json"
    code = cli("detect", cut, "--out", out, "--model", "onset_hsv")
    if code == 0:  # the decoder may end cleanly on a truncated file: then it is a short video
        assert len(json.loads(out.read_text())["scores"]) > 0
        return
    _assert_clean_error(capsys, code)
    res = json.loads(out.read_text())
    assert res["complete"] is False and len(res["scores"]) > 0


def test_python_dash_m_with_broken_input_exits_2(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    proc = subprocess.run([sys.executable, "-m", "bleedorigin", "detect", str(bad), "--out",
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_sim_then_realism_and_check_from_the_command_line(tmp_path, capsys):
    sim = tmp_path / "sim"
    assert cli("-q", "sim", "--out", sim, "--n", 2, "--seed", 5, "--kind", "detect",
               "--width", 128, "--height", 96) == 0
    assert cli("data", "check", sim) == 0
    capsys.readouterr()
    assert cli("data", "realism", sim, sim, "--json", tmp_path / "r.json") == 0
    out = capsys.readouterr().out
    assert "HSV histogram intersection" in out and "red_area" in out
    assert json.loads((tmp_path / "r.json").read_text())
    _assert_clean_error(capsys, cli("data", "realism", sim, tmp_path / "nowhere"))


def test_timeline_without_bleeding_draws_no_onset(tmp_path):
    from bleedorigin.eval.plots import run_timeline, timeline_record
    record = timeline_record([0.1] * 50, ["waiting"] * 50, [], 0.5)
    png = run_timeline(record, tmp_path / "timeline.png", "quiet clip")
    assert png.stat().st_size > 1000 and len(onset_line_columns(png)) == 0


def test_data_check_on_a_folder_without_clips_says_so(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    listed_none = tmp_path / "listed_none"
    listed_none.mkdir()
    (listed_none / "manifest.json").write_text('{"clips": []}')
    for folder in (empty, listed_none):
        assert cli("data", "check", folder) == 1
        out = capsys.readouterr().out
        assert "no clip" in out and "no problems found" not in out


@pytest.mark.parametrize("args", [
    ("detect", "{clip}", "--model", "onset_hsv", "--out", "{bad}/r.json"),
    ("locate", "{clip}", "--out", "{bad}/l.json"),
    ("track", "{clip}", "--point", "5", "5", "--out", "{bad}/t.json"),
    ("run", "{clip}", "--out", "{bad}/run"),
    ("run", "{clip}", "--out", "{bad}"),  # an existing file where a folder is wanted
    ("demo", "--out", "{bad}/demo"),
    ("evaluate", "{dir}", "--out", "{bad}/eval"),
    ("evaluate", "{dir}", "--out", "{bad}/stir", "--stir-start", "{dir}/start.json"),
    ("data", "stage-extra", "--repos", "{dir}", "--out", "{bad}/extra"),
    ("sim", "--out", "{bad}/sim", "--n", "1"),
    ("train", "onset", "--out", "{bad}/train"),
    ("finetune", "track", "{dir}", "--out", "{bad}/ft"),
    ("export", "onnx", "onset", "--out", "{bad}/onnx"),
    ("bench", "--json", "{bad}/bench.json"),
    ("data", "realism", "{dir}", "{dir}", "--json", "{bad}/r.json"),
    ("data", "contact-sheet", "--out", "{bad}/sheet.png"),
])
def test_out_that_cannot_be_written_fails_before_any_work(args, tiny_clip, tmp_path, capsys, monkeypatch):
    import bleedorigin.commands
    import bleedorigin.models.loading
    import bleedorigin.pipeline

    def no_work(*_, **__):
        raise AssertionError("a model was loaded before --out was checked")
    for module in (bleedorigin.models.loading, bleedorigin.commands, bleedorigin.pipeline):
        monkeypatch.setattr(module, "load_stage", no_work)
    bad = tmp_path / "a_file.txt"
    bad.write_text("not a folder")
    values = {"clip": tiny_clip.path, "bad": bad, "dir": tmp_path}
    err = _assert_clean_error(capsys, cli(*(a.format(**values) for a in args)))
    assert err.startswith(f"error: cannot write {bad}")


def test_bad_texture_source_is_a_clean_error(tmp_path, capsys):
    """--texture-from needs bleeding-free real frames; a folder without clips fails before work."""
    _assert_clean_error(capsys, cli("sim", "--out", tmp_path / "s", "--n", 1, "--texture-from", tmp_path))
    _assert_clean_error(capsys, cli("sim", "--out", tmp_path / "s", "--n", 1, "--appearance", "cap_ring,fog"))
    assert not (tmp_path / "s").exists()


def test_train_takes_a_shipped_recipe_by_name(tmp_path, capsys):
    """An installed wheel has no configs/ folder beside the user: recipes are named, not pathed."""
    from bleedorigin.cli import _shipped_recipe
    assert _shipped_recipe(Path("paper/source_paper")).name == "source_paper.yaml"
    assert _shipped_recipe(Path("onset_test.yaml")).is_file()
    assert cli("train", "onset", "--config", "no_such_recipe", "--out", tmp_path / "t") == 2
    err = capsys.readouterr().err
    assert "source_v2" in err and "pipeline" not in err and len(err.strip().splitlines()) == 1
