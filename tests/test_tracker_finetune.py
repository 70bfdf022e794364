"""`bleedorigin finetune track`: a tracker checkpoint fine-tuned on sparse labels of a folder."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from bleedorigin.cli import main
from bleedorigin.io.bench import Clip, write_bench_clip, write_manifest
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.models.track.learned.predictor import TEST_MODEL, PointTracker
from bleedorigin.io.checkpoint import load_checkpoint, save_checkpoint
from conftest import make_tiny_frames

pytest.importorskip("peft")


def _cli(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


def _tiny_checkpoint(folder):
    torch.manual_seed(0)
    net = TrackOnSmall(TrackerConfig(**TEST_MODEL))
    config = {"stage": "track", "model": dict(TEST_MODEL, red_mask_source="fallback")}
    return save_checkpoint(folder, net.state_dict(), config, "# tiny\n")


def _labelled_bench(root):
    """A one-clip benchmark folder (track_short) labelled at frames 0 and 30; returns its frames."""
    frames, path = make_tiny_frames(n=31, size=(64, 48))
    labels = {0: [tuple(path[0] - [0, 16])], 30: [tuple(path[0] - [0, 16] + [15, 0])]}
    clip = write_bench_clip(root, Clip("c0", root / "x.mp4", "track_short", labels=labels), frames)
    write_manifest(root, [clip])
    return frames


def test_finetune_writes_a_loadable_checkpoint_with_changed_weights(tmp_path):
    frames = _labelled_bench(tmp_path / "bench")
    start = _tiny_checkpoint(tmp_path / "start")
    out = tmp_path / "tuned"
    assert _cli("-q", "finetune", "track", tmp_path / "bench", "--out", out, "--model", start,
                "--steps", 2, "--rank", 2) == 0
    config, tuned = load_checkpoint(out)
    _, before = load_checkpoint(start)
    assert config["finetune"]["clips"] == ["c0"] and config["finetune"]["steps"] == 2
    assert any(not torch.equal(tuned[k], before[k]) for k in before)
    tracker = PointTracker.from_pretrained(out, device="cpu")
    tracker.start(frames[0], (20.0, 10.0))
    p = tracker.step(frames[1])
    assert np.isfinite([p.x, p.y]).all()


def test_finetuned_checkpoint_keeps_the_runtime_settings_it_started_from(tmp_path):
    # fine-tuning a registered configuration (the default track_small_blood: shipped weights +
    # scene hint + fallbacks) gives a folder that runs the same way; explicit overrides still win
    from bleedorigin.models.track.learned import variants
    _labelled_bench(tmp_path / "bench")
    settings = variants.VARIANTS["track_small_blood"]
    out = tmp_path / "tuned"
    assert _cli("-q", "finetune", "track", tmp_path / "bench", "--out", out, "--steps", 1, "--rank", 2) == 0
    config, _ = load_checkpoint(out)
    assert config["runtime"] == settings
    tracker = PointTracker.from_pretrained(out, device="cpu")
    assert tracker.motion is not None and tracker.motion.mode == "scene" and tracker.flow_fallback == 0.5
    assert tracker.blood_fallback == 0.5
    assert PointTracker.from_pretrained(out, device="cpu", flow_fallback=0.0).flow_fallback == 0.0


def test_finetune_without_labelled_clips_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    start = _tiny_checkpoint(tmp_path / "start")
    assert _cli("finetune", "track", tmp_path / "empty", "--out", tmp_path / "o", "--model", start) == 2
    assert _cli("finetune", "onset", tmp_path / "empty", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    assert not (tmp_path / "o").exists()
