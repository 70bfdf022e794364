"""`evaluate` end to end on a tiny bench folder with stub models: metrics.json and report.md hold
hand-computed numbers, the cache makes a rerun free, and the real ESD clips are all scored."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_frames
from test_eval_protocol import H, W, FixedSource, RedOnset, StillTracker, to_model

from bleedorigin.pipeline_config import shipped_config
from bleedorigin.eval.report import PAPER, to_markdown
from bleedorigin.errors import ConfigError, InputError
from bleedorigin.eval.runner import evaluate, group_models
from bleedorigin.io.bench import Clip, write_bench_clip, write_manifest
from bleedorigin.models import registry

CALLS = {"onset": 0, "source": 0, "track": 0}


class CountingOnset(RedOnset):
    def step(self, frame):
        CALLS["onset"] += 1
        return super().step(frame)


class CountingSource(FixedSource):
    def locate(self, frame, history=None):
        CALLS["source"] += 1
        return super().locate(frame, history)


class CountingTracker(StillTracker):
    def step(self, frame):
        CALLS["track"] += 1
        return super().step(frame)


def _register() -> None:
    known = registry.list_models()
    factories = {"onset_evalstub": lambda: CountingOnset(delay=3),
                 # 10 input px right of the detect clip's label (25, 24): 80 px at 512x384
                 "source_evalstub": lambda: CountingSource((to_model((25.0, 24.0))[0] + 80, to_model((25.0, 24.0))[1])),
                 "track_evalstub": CountingTracker}
    for name, factory in factories.items():
        if name not in known:
            registry.register_model(name)(factory)


def _bench(root: Path) -> Path:
    n = 24
    clips = []
    specs = [("det_a", "detect", 8, {8: [(25.0, 24.0)]}, "clear_view", "duodenum"),
             ("det_b", "detect", 12, {12: [(25.0, 24.0)]}, "water_flushing", "cardia"),
             ("neg_a", "negative", None, {}, "none", "cardia"),
             ("trk_a", "track_short", None, {0: [(20.0, 24.0)], 23: [(22.5, 24.0)]}, "clear_view", "duodenum")]
    for cid, kind, onset, labels, scen, site in specs:
        frames, _ = make_tiny_frames(n=n, onset=onset if onset is not None else n + 1)
        clip = Clip(id=cid, video=root / "clips" / cid / "video.mp4", kind=kind, patient="p1", site=site,
                    scenario=scen, num_frames=n, fps=30.0, width=W, height=H, onset_frame=onset,
                    labels=labels, gt=None, split=None)
        clips.append(write_bench_clip(root, clip, frames) or clip)
    write_manifest(root, clips)
    return root


MODELS = {"onset": ["onset_evalstub"], "source": ["source_evalstub"], "track": ["track_evalstub"]}


def test_evaluate_metrics_report_and_cache(tmp_path: Path) -> None:
    _register()
    bench = _bench(tmp_path / "bench")
    out = tmp_path / "eval"
    m = evaluate(bench, out, MODELS, stages=("onset", "source", "track"), progress=False, baselines=False)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m))
    # onset: det_a raised 3 frames late (8 -> 11), det_b too (12 -> 15); no alarm on the negative
    on = saved["onset"]["onset_evalstub"]["overall"]
    assert on["n"] == 2 and on["negatives"] == 1 and on["missed"] == 0
    assert on["acc"]["2"] == 0.0 and on["acc"]["4"] == 1.0 and on["err_avg"] == pytest.approx(3.0)
    assert on["false_alarm_rate"] == 0.0
    by_scen = saved["onset"]["onset_evalstub"]["by_scenario"]
    assert set(by_scen) == {"clear_view", "water_flushing", "none"}
    # source: 10 input px off on both detect clips -> 80 px
    src = saved["source"]["source_evalstub"]["overall"]
    assert src["n"] == 2 and src["err_avg"] == pytest.approx(80.0)
    assert src["acc"]["75"] == 0.0 and src["acc"]["100"] == 1.0
    # track: still tracker, truth moved 2.5 input px -> 20 px on the one scored frame
    trk = saved["track"]["track_evalstub"]
    assert trk["labelled"]["overall"]["err_avg"] == pytest.approx(20.0) and trk["dense"] is None
    assert trk["by_time"]["labelled"][0]["since"] == "1-30"

    report = (out / "report.md").read_text()
    assert report.split("## Plots")[0].rstrip() == to_markdown(saved).rstrip()  # tables generated from metrics.json
    assert "| onset_evalstub | 0.00 | 0.00 | 0.00 | 100.00 | 100.00 | 100.00 | 3.00 | 0 | 0.00 | 2 | 1 |" in report
    assert "| source_evalstub | 0.00 | 0.00 | 0.00 | 0.00 | 100.00 | 80.00 | 2 |" in report
    assert "| track_evalstub · labelled | 0.00 | 100.00 | 100.00 | 100.00 | 100.00 | 20.00 | 1 |" in report
    paper = PAPER["track"]
    assert f"{paper['name']} — paper (real data), Table 7 | 41.17 | 61.28 | 82.39 | 92.75 | 96.11 | 37.19" in report
    assert "| water_flushing · onset_evalstub |" in report and "| cardia · source_evalstub |" in report
    for png in ("accuracy_curves.png", "track_error_over_time.png", "per_scenario.png"):
        assert (out / "plots" / png).stat().st_size > 1000
    assert (out / "config.yaml").is_file()
    assert len(list((out / "cache").rglob("*.json"))) == 3 + 2 + 1

    before = dict(CALLS)
    again = evaluate(bench, out, MODELS, stages=("onset", "source", "track"), progress=False, baselines=False)
    assert CALLS == before  # everything came from the cache
    assert again == m


def test_compare_models_side_by_side(tmp_path: Path) -> None:
    _register()
    if "onset_evalstub_b" not in registry.list_models():
        registry.register_model("onset_evalstub_b")(lambda: CountingOnset(delay=0))
    bench = _bench(tmp_path / "bench")
    m = evaluate(bench, tmp_path / "eval", ["onset_evalstub", "onset_evalstub_b"],  # as `--models A B`
                 stages=("onset",), progress=False, baselines=False)
    assert [x["key"] for x in m["models"]["onset"]] == ["onset_evalstub", "onset_evalstub_b"]
    assert m["onset"]["onset_evalstub_b"]["overall"]["acc"]["0"] == 1.0
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| onset_evalstub_b | 100.00 |" in report and "| onset_evalstub | 0.00 |" in report


class BrokenTracker(StillTracker):
    def step(self, frame):
        raise InputError("video.mp4: corrupt frame 3")


def test_broken_clip_is_reported_not_fatal_and_not_cached(tmp_path: Path) -> None:
    _register()
    if "track_evalbroken" not in registry.list_models():
        registry.register_model("track_evalbroken")(BrokenTracker)
    out = tmp_path / "eval"
    m = evaluate(_bench(tmp_path / "bench"), out, ["onset_evalstub", "track_evalbroken"],
                 stages=("onset", "track"), progress=False, baselines=False)
    assert m["onset"]["onset_evalstub"]["clips"] == 3
    assert m["errors"] == [{"stage": "track", "model": "track_evalbroken", "clip": "trk_a",
                            "failed": "video.mp4: corrupt frame 3"}]
    assert not (out / "cache" / shipped_config().hash / "track").exists()


WEIGHTS = {"id": "track:stub@aaa"}


class VersionedTracker(CountingTracker):
    """Reports the id of whatever 'weights' are current when it is built."""

    def __init__(self):
        super().__init__()
        self.model_id = WEIGHTS["id"]


def test_replaced_weights_invalidate_the_cache_and_are_caught_mid_run(tmp_path: Path, monkeypatch) -> None:
    _register()
    if "track_evalversioned" not in registry.list_models():
        registry.register_model("track_evalversioned")(VersionedTracker)
    bench, out = _bench(tmp_path / "bench"), tmp_path / "eval"
    models = {"track": ["track_evalversioned"]}
    evaluate(bench, out, models, stages=("track",), progress=False, baselines=False)
    before = CALLS["track"]
    evaluate(bench, out, models, stages=("track",), progress=False, baselines=False)
    assert CALLS["track"] == before  # same weights: from the cache
    WEIGHTS["id"] = "track:stub@bbb"  # the shipped weights were replaced
    evaluate(bench, out, models, stages=("track",), progress=False, baselines=False)
    assert CALLS["track"] > before  # recomputed, not served stale

    # weights replaced between planning and running (another process rewrote the folder)
    import bleedorigin.eval.runner as runner
    plan = runner.build_tasks

    def plan_then_replace(*args, **kwargs):
        tasks = plan(*args, **kwargs)
        WEIGHTS["id"] = "track:stub@ccc"
        return tasks
    monkeypatch.setattr(runner, "build_tasks", plan_then_replace)
    with pytest.raises(ConfigError, match="changed during the evaluation"):
        evaluate(bench, tmp_path / "eval2", models, stages=("track",), progress=False, baselines=False)
    assert not (tmp_path / "eval2" / "cache" / shipped_config().hash / "track").exists()


def test_models_need_a_known_stage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stage"):
        group_models(["mystery_model"])
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"stage": "track"}')
    assert group_models(["onset_hsv", str(ckpt)]) == {"onset": ["onset_hsv"], "track": [str(ckpt)]}


@pytest.mark.real
def test_real_esd_clips_yield_source_and_track_records(shared_data: Path, tmp_path: Path) -> None:
    _register()
    out = tmp_path / "eval"
    m = evaluate(shared_data / "esd_clips", out, {"source": ["source_evalstub"], "track": ["track_evalstub"]},
                 stages=("source", "track"), progress=False, baselines=False)
    assert m["source"]["source_evalstub"]["clips"] == 6
    assert m["track"]["track_evalstub"]["clips"] == 6
    assert len(m["source"]["source_evalstub"]["by_scenario"]) == 6
    # labels every 30 frames after frame 0: four 121-frame clips, clear view (181), water (151)
    assert m["track"]["track_evalstub"]["labelled"]["overall"]["n"] == 4 * 4 + 6 + 5
    assert len(list((out / "cache" / shipped_config().hash / "track" / "track_evalstub").glob("*.json"))) == 6


def test_end_to_end_report_links_a_timeline_per_clip(tmp_path: Path) -> None:
    _register()
    root, n, onset = tmp_path / "bench", 24, 8
    frames, path = make_tiny_frames(n=n, onset=onset)
    gt = root / "clips" / "full_a" / "gt.npz"
    clip = Clip(id="full_a", video=root / "clips" / "full_a" / "video.mp4", kind="full", patient="p1",
                site="cardia", scenario="clear_view", num_frames=n, fps=30.0, width=W, height=H,
                onset_frame=onset, labels={onset: [tuple(path[onset])]}, gt=gt, split=None)
    clip = write_bench_clip(root, clip, frames)
    np.savez(gt, onset_frame=np.int64(onset), source_xy=path.astype(np.float32))
    write_manifest(root, [clip])
    out = tmp_path / "eval"
    m = evaluate(root, out, MODELS, stages=("e2e",), progress=False, baselines=False)

    name = "onset_evalstub+source_evalstub+track_evalstub"
    (per_clip,) = m["e2e"][next(iter(m["e2e"]))]["per_clip"]
    assert per_clip["clip"] == "full_a" and per_clip["gt"] == onset and per_clip["pred"] == onset + 3
    assert per_clip["timeline"] == f"plots/timelines/{name}/full_a.png"
    assert (out / per_clip["timeline"]).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert f"| full_a · {name} | 8 | 11 |" in report
    assert f"[timeline](plots/timelines/{name}/full_a.png)" in report


def test_an_end_to_end_record_goes_stale_when_one_of_its_models_changes(monkeypatch) -> None:
    """An e2e key names three models; editing the tracker's code must invalidate the pipelines
    that ran it, as it does the tracker's own records."""
    from bleedorigin.eval import cache
    key = "onset_small+source_evidence_red+track_mft_own"
    original = cache.code_fingerprint
    before = original(key)
    assert before and before != original("onset_small+source_evidence_red+track_lk")
    monkeypatch.setattr(cache, "code_fingerprint", lambda k: "edited" if k == "track_mft_own" else original(k))
    original.cache_clear()
    try:
        assert original(key) != before
    finally:
        monkeypatch.undo()
        original.cache_clear()
    assert original(key) == before
