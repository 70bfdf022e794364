"""configs/pipeline.yaml: the one place that says what the shipped pipeline is."""
from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from bleedorigin.errors import ConfigError
from bleedorigin.models.loading import DEFAULT_MODELS, load_stage
from bleedorigin.models.onset.predictor import OnsetDetector
from bleedorigin.models.source.fusion import FusionConfig
from bleedorigin.models.source.evidence import EvidenceConfig
from bleedorigin.models.track.flow import MultiFlowTracker
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import SHIPPED_CONFIG, load_pipeline_config, shipped_config


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_shipped_file_names_the_default_models():
    cfg = shipped_config()
    assert cfg.name == "shipped"
    assert DEFAULT_MODELS == {s: cfg.stage(s).model for s in ("onset", "source", "track")}


def test_class_defaults_are_the_shipped_configuration():
    """The file and the code cannot drift apart: every option the file sets is the default of the
    class that takes it, so a bare MultiFlowTracker() or FusionConfig() is the shipped one."""
    cfg = shipped_config()
    onset = _defaults(OnsetDetector.from_pretrained)
    assert {k: onset[k] for k in cfg.onset.options} == cfg.onset.options
    fusion = {**dataclasses.asdict(EvidenceConfig()), **dataclasses.asdict(FusionConfig())}
    assert {k: fusion[k] for k in cfg.source.options} == cfg.source.options
    track = _defaults(MultiFlowTracker.__init__)
    assert {k: (list(track[k]) if isinstance(track[k], tuple) else track[k]) for k in cfg.track.options} \
        == cfg.track.options


def test_bad_files_fail_with_the_key_named(tmp_path):
    good = yaml.safe_load(SHIPPED_CONFIG.read_text())
    cases = {"unknown section": {**good, "tracking": {}},
             "wrong type": {**good, "episode": {**good["episode"], "end_patience": "long"}},
             "missing stage": {k: v for k, v in good.items() if k != "track"}}
    for what, data in cases.items():
        path = tmp_path / f"{what.replace(' ', '_')}.yaml"
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError):
            load_pipeline_config(path)


def test_an_option_the_model_does_not_take_is_an_error():
    with pytest.raises(ConfigError, match="track_mft_visible"):
        load_stage("track", "track_mft_visible", "cpu", {"blood_hiden": 0.5})
    with pytest.raises(ConfigError, match="track_lk"):
        load_stage("track", "track_lk", "cpu", {"blood_hidden": 0.5})


def test_another_model_drops_the_options_and_the_file_changes_the_run(tmp_path):
    cfg = shipped_config().with_models(track="track_lk")
    assert cfg.track.model == "track_lk" and cfg.track.options == {}
    assert cfg.hash != shipped_config().hash
    data = yaml.safe_load(SHIPPED_CONFIG.read_text())
    data["episode"]["end_patience"] = 12
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(data))
    pipe = Pipeline.from_pretrained(path, "cpu", "onset_hsv", "source_redmask", "track_lk")
    assert pipe.config.episode.end_patience == 12 and pipe.config.name == "short+models"
