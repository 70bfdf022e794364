"""Weights come from the package (or $BLEEDORIGIN_WEIGHTS) or from a folder given as a path, and
every checkpoint is the one its config.json records (sha256)."""
from __future__ import annotations

import json
import shutil

import pytest

from bleedorigin.errors import BleedOriginError
from bleedorigin.io.checkpoint import sha256_file
from bleedorigin.models.loading import load_stage
from bleedorigin.models.weights import SHIPPED_DIR

SHIPPED_ONSET = SHIPPED_DIR / "onset_small"


def _decoy(folder):
    """A folder shaped like a checkpoint whose weights are not a checkpoint at all."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"stage": "onset", "checksum": "0" * 64}))
    (folder / "model.safetensors").write_bytes(b"not weights")


@pytest.mark.parametrize("name", ["small", "onset_small"])
def test_folder_named_like_the_shipped_weights_in_the_working_directory_is_ignored(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    _decoy(tmp_path / name)
    det = load_stage("onset", None, "cpu")
    assert det.model_id == f"onset:onset_small@{sha256_file(SHIPPED_ONSET / 'model.safetensors')[:12]}"


def test_user_folder_given_as_a_path_is_loaded_and_named_by_its_checksum(tmp_path):
    copy = tmp_path / "mine"
    shutil.copytree(SHIPPED_ONSET, copy)
    det = load_stage("onset", str(copy), "cpu")
    assert det.model_id == f"onset:mine@{sha256_file(copy / 'model.safetensors')[:12]}"


def test_environment_variable_points_at_other_shipped_weights(tmp_path, monkeypatch):
    shutil.copytree(SHIPPED_ONSET, tmp_path / "onset_small")
    _flip(tmp_path / "onset_small" / "model.safetensors")
    monkeypatch.setenv("BLEEDORIGIN_WEIGHTS", str(tmp_path))
    with pytest.raises(BleedOriginError, match="does not match the checksum"):
        load_stage("onset", None, "cpu")


def _flip(path, n: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) - n, len(data)):  # tensor bytes: the file still parses
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_weights_with_flipped_bytes_are_refused(tmp_path):
    copy = tmp_path / "flipped"
    shutil.copytree(SHIPPED_ONSET, copy)
    _flip(copy / "model.safetensors")
    with pytest.raises(BleedOriginError, match="does not match the checksum"):
        load_stage("onset", str(copy), "cpu")


def test_weights_without_a_recorded_checksum_are_refused(tmp_path):
    copy = tmp_path / "nosum"
    shutil.copytree(SHIPPED_ONSET, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["checksum"]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BleedOriginError, match="no checksum"):
        load_stage("onset", str(copy), "cpu")


@pytest.mark.parametrize("change, message", [
    ({"d_model": -5}, "d_model"),
    ({"num_heads": 7}, "num_heads"),
    ({"d_model": 64, "num_heads": 8}, "do not match"),
])
def test_config_that_cannot_describe_the_weights_is_one_line(tmp_path, change, message):
    copy = tmp_path / "bad"
    shutil.copytree(SHIPPED_ONSET, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"].update(change)
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BleedOriginError, match=message) as err:
        load_stage("onset", str(copy), "cpu")
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_missing_model_path_says_no_such_folder(tmp_path):
    with pytest.raises(BleedOriginError, match="no such checkpoint folder"):
        load_stage("onset", str(tmp_path / "nope"), "cpu")


def test_evaluation_cache_key_of_a_registered_name_ignores_a_folder_in_the_working_directory(tmp_path, monkeypatch):
    from bleedorigin.eval.cache import model_key
    monkeypatch.chdir(tmp_path)
    _decoy(tmp_path / "onset_small")
    assert model_key("onset_small") == "onset_small"
