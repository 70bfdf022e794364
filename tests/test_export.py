"""ONNX export of the onset networks and the tracker step agrees with PyTorch in onnxruntime."""
from __future__ import annotations


from pathlib import Path

import pytest
import torch

from bleedorigin.cli import main

pytest.importorskip("onnxruntime")


def cli(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


@pytest.mark.parametrize("stage, graphs", [("onset", {"onset_frame", "onset_mdcfm", "onset_window"}),
                                           ("track", {"track_step"})])
def test_export_matches_pytorch(tmp_path, stage, graphs):
    from bleedorigin.export import export_onnx
    torch.set_num_threads(1)
    report = export_onnx(stage, None, tmp_path)
    assert set(report) == graphs
    for r in report.values():
        assert r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-4
        assert (tmp_path / f"{next(k for k in report if report[k] is r)}.onnx").stat().st_size > 10_000
    assert not list(tmp_path.glob("*.partial"))


def test_export_cli_rejects_source_and_baselines(tmp_path, capsys):
    assert cli("export", "onnx", "source", "--out", tmp_path) == 2
    assert cli("export", "onnx", "track", "--model", "track_lk", "--out", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


def test_export_of_a_motion_mix_tracker_takes_the_hint(tmp_path):
    from bleedorigin.export import export_onnx
    from bleedorigin.training.trainer import train_main
    configs = Path(__file__).resolve().parents[1] / "src" / "bleedorigin" / "configs"
    train_main("track", configs / "track_test.yaml", tmp_path / "run",
               [f"data.cache_dir={tmp_path / 'cache'}", "model.motion_mix=true"])
    report = export_onnx("track", str(tmp_path / "run" / "best"), tmp_path / "onnx")
    assert report["track_step"]["max_abs_diff"] < 1e-4
    assert len(report["track_step"]["inputs"]) == 2 + 11  # frame, hint, the 11 state tensors
