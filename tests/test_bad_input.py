"""Bad input gives one `error:` line and exit 2 (or, for `data check`, a listed problem and
exit 1), never a traceback or an "unexpected" exit 1."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bleedorigin.cli import main
from bleedorigin.io.bench import Clip, write_bench_clip, write_manifest
from conftest import make_tiny_frames, write_mp4


def cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _bench(root, gt: bool = False, kind: str = "detect"):
    frames, path = make_tiny_frames(n=24)
    clip = Clip(id="a", video=root / "clips" / "a" / "video.mp4", kind=kind, patient="p1", num_frames=24,
                fps=30.0, width=64, height=48, onset_frame=8, labels={8: [tuple(path[8])]})
    stored = write_bench_clip(root, clip, frames)
    if gt:
        stored.gt = root / "clips" / "a" / "gt.npz"
        np.savez_compressed(stored.gt, source_xy=path, onset_frame=np.int64(8),
                            masks=np.random.default_rng(0).integers(0, 2, (24, 48, 64), dtype=np.uint8))
    write_manifest(root, [stored])
    return stored


def test_truncated_gt_is_a_problem_for_data_check(tmp_path, capsys):
    root = tmp_path / "bench"
    clip = _bench(root, gt=True)
    data = clip.gt.read_bytes()
    clip.gt.write_bytes(data[: len(data) // 2])
    code, out, err = cli(capsys, "data", "check", root)
    assert code == 1 and "gt.npz" in out and "unreadable" in out and not err


def test_truncated_gt_fails_evaluate_in_one_line(tmp_path, capsys):
    root = tmp_path / "bench"
    clip = _bench(root, gt=True, kind="full")
    clip.gt.write_bytes(clip.gt.read_bytes()[:100])
    code, out, err = cli(capsys, "-q", "evaluate", root, "--out", tmp_path / "ev", "--models", "track_lk",
                         "--stages", "track", "--no-baselines")
    assert "unexpected" not in err and "Traceback" not in err
    assert code == 0 and "1 clip(s) failed" in out  # one broken clip is listed, the rest evaluated
    failed = json.loads((tmp_path / "ev" / "metrics.json").read_text())["errors"]
    assert "gt.npz: unreadable" in failed[0]["failed"]


@pytest.mark.parametrize("value", ["abc", -3, 2.5, True])
def test_manifest_numbers_of_the_wrong_kind(tmp_path, capsys, value):
    root = tmp_path / "bench"
    _bench(root)
    doc = json.loads((root / "manifest.json").read_text())
    doc["clips"][0]["num_frames"] = value
    (root / "manifest.json").write_text(json.dumps(doc))
    code, out, _ = cli(capsys, "data", "check", root)
    assert code == 1 and "num_frames" in out
    code, _, err = cli(capsys, "-q", "evaluate", root, "--out", tmp_path / "ev", "--models", "onset_hsv",
                       "--no-baselines")
    assert code == 2 and "num_frames" in one_error_line(err)
    assert not (tmp_path / "ev").exists()  # a failed command leaves no empty output folder


@pytest.mark.parametrize("frames", ["many", [], {"n": 3}])
def test_meta_json_frames_of_the_wrong_kind(tmp_path, capsys, frames):
    folder = tmp_path / "clips" / "one"
    folder.mkdir(parents=True)
    clip_frames, path = make_tiny_frames(n=24)
    write_mp4(folder / "video.mp4", clip_frames)
    (folder / "labels.json").write_text(json.dumps({"0": [list(path[0])]}))
    (folder / "meta.json").write_text(json.dumps({"frames": frames}))
    code, out, _ = cli(capsys, "data", "check", tmp_path / "clips")
    assert code == 1 and "'frames'" in out
    code, _, err = cli(capsys, "-q", "evaluate", tmp_path / "clips", "--out", tmp_path / "ev",
                       "--models", "track_lk", "--no-baselines")
    assert code == 2 and "'frames'" in one_error_line(err)


def test_data_check_on_a_file_is_bad_input(tmp_path, capsys):
    f = tmp_path / "x.txt"
    f.write_text("x")
    code, _, err = cli(capsys, "data", "check", f)
    assert code == 2 and one_error_line(err)


def test_data_check_crash_is_exit_2_not_problems_found(tmp_path, capsys, monkeypatch):
    import bleedorigin.io.check as check
    monkeypatch.setattr(check, "check_bench", lambda root: 1 / 0)
    code, _, err = cli(capsys, "data", "check", tmp_path)
    assert code == 2 and "ZeroDivisionError" in one_error_line(err)


def test_failed_run_leaves_no_empty_output_folder(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    out = tmp_path / "new" / "run"
    code, _, err = cli(capsys, "-q", "run", bad, "--out", out, "--onset-model", "onset_hsv",
                       "--source-model", "source_redmask", "--track-model", "track_lk")
    assert code == 2 and one_error_line(err)
    assert not (tmp_path / "new").exists()


def test_disk_full_during_run_keeps_what_it_can_and_leaves_no_hidden_partial(tiny_clip, tmp_path, capsys,
                                                                             monkeypatch):
    import errno

    from bleedorigin.io.video import VideoWriter
    from bleedorigin.utils.jsonio import JsonLinesWriter

    lines = []
    original = JsonLinesWriter.write

    def write(self, obj):
        if len(lines) == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        lines.append(obj)
        original(self, obj)

    def close(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.tmp))

    monkeypatch.setattr(JsonLinesWriter, "write", write)
    monkeypatch.setattr(VideoWriter, "close", close)
    out = tmp_path / "run"
    code, _, err = cli(capsys, "-q", "run", tiny_clip.path, "--out", out, "--onset-model", "onset_hsv",
                       "--source-model", "source_redmask", "--track-model", "track_lk")
    assert code == 2 and "No space left on device" in one_error_line(err)
    assert not (out / ".overlay.partial.mp4").exists() and not (out / "overlay.mp4").exists()
    res = json.loads((out / "result.json").read_text())
    assert res["complete"] is False and res["frames"] == 5
