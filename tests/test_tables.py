"""Generated tables: README.md and docs/*.md show exactly what their results files render, and the
renderer notices a figure that moved, a metric that is missing and a block it does not know."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bleedorigin.eval import results, tables

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_E2E = "onset_small+source_evidence_red+track_mft_visible"
BASELINES_E2E = "onset_hsv+source_redmask+track_lk"


def test_every_generated_table_matches_its_results_file():
    stale = tables.update(ROOT, write=False)
    assert not stale, ("tables differ from their results files (run `python tools/tables.py`):\n"
                       + "\n".join(f"{doc}: {name}" for doc, name in stale))


def test_readme_shows_generated_headline_tables():
    shown = tables.used(ROOT)
    assert {"onset_sim", "track", "e2e"} <= {n for n, docs in shown.items() if "README.md" in docs}
    assert "results/README.md" in shown["results_files"]  # each results file with its command


def test_every_results_file_names_its_command():
    for source in results.SOURCES.values():
        path = source.file(ROOT)
        if path.is_file():
            assert json.loads(path.read_text())["command"] == source.command
            assert path.stat().st_size < 200_000, f"{path.name}: strip more per-clip bulk"


def _e2e(err: float, coverage: float = 1.0) -> dict:
    return {"onset": {"acc": {"0": 1.0, "8": 1.0}, "err_avg": 0.0}, "coverage": coverage,
            "track": {"n": 10, "acc": {"10": 0.5, "25": 0.9, "100": 1.0}, "err_avg": err}}


def _fake_root(tmp_path: Path, err: float) -> Path:
    (tmp_path / "results").mkdir(parents=True)
    run = {"config": {"data": "/machine/simtest", "out": "/machine/out", "stages": ["e2e"],
                      "e2e_pipelines": [DEFAULT_E2E.split("+"), BASELINES_E2E.split("+")]},
           "models": {"e2e": [{"key": DEFAULT_E2E, "baseline": False}, {"key": BASELINES_E2E, "baseline": True}]},
           "e2e": {DEFAULT_E2E: dict(_e2e(err), per_clip=[{"clip": "a", "timeline": "plots/a.png"}]),
                   BASELINES_E2E: _e2e(17.1, 0.999)},
           "onset": {"onset_small": {"real_present": {"clips": [{"clip": "a"}], "flagged": 6}}}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    results.collect(results.SOURCES["sim_e2e"], tmp_path / "run.json", tmp_path)
    return tmp_path


def test_collect_keeps_aggregates_and_the_command_not_per_clip_bulk(tmp_path):
    root = _fake_root(tmp_path, 12.27)
    kept = json.loads((root / "results" / "sim_e2e.json").read_text())
    assert kept["command"] == results.SOURCES["sim_e2e"].command
    assert "data" not in kept["config"] and "out" not in kept["config"]  # machine paths
    assert "clips" not in kept["onset"]["onset_small"]["real_present"]
    assert kept["onset"]["onset_small"]["real_present"]["flagged"] == 6
    assert "timeline" not in kept["e2e"][DEFAULT_E2E]["per_clip"][0]


def test_a_moved_figure_is_found_and_rewritten(tmp_path):
    root = _fake_root(tmp_path, 12.27)
    doc = "text\n<!-- table:e2e -->\nold\n<!-- /table -->\nmore\n"
    text, changed = tables.rewrite(doc, root)
    assert changed == ["e2e"] and "| 12.27 | 90.0 | 100.0 % |" in text and text.endswith("<!-- /table -->\nmore\n")
    assert "| 17.10 | 90.0 | 99.9 % |" in text
    assert tables.rewrite(text, root) == (text, [])  # rendered once, stable

    moved = _fake_root(tmp_path / "moved", 12.44)  # the same run, one figure different
    again, changed = tables.rewrite(text, moved)
    assert changed == ["e2e"] and "| 12.44 |" in again


def test_missing_metric_names_table_and_path(tmp_path):
    root = _fake_root(tmp_path, 12.27)
    with pytest.raises(tables.TableError, match="table e2e_per_video: a block of sim_e2e has no 'gt'"):
        tables.rewrite("<!-- table:e2e_per_video -->\n<!-- /table -->", root)  # its per-clip rows lack 'gt'
    kept = json.loads((root / "results" / "sim_e2e.json").read_text())
    del kept["e2e"][BASELINES_E2E]
    (root / "results" / "sim_e2e.json").write_text(json.dumps(kept))
    with pytest.raises(tables.TableError, match=r"table e2e: results/sim_e2e.json has no 'e2e\.onset_hsv\+source_redmask\+track_lk'"):
        tables.rewrite("<!-- table:e2e -->\n<!-- /table -->", root)
    with pytest.raises(tables.TableError, match="unknown table 'nope'"):
        tables.rewrite("<!-- table:nope -->\n<!-- /table -->", root)
    with pytest.raises(tables.TableError, match="table onset_real: results/esd.json missing: run `bleedorigin evaluate"):
        tables.rewrite("<!-- table:onset_real -->\n<!-- /table -->", root)


def test_speed_table_from_bench_json(tmp_path):
    (tmp_path / "results").mkdir()
    stage = {"name": "onset_small", "model": "onset:onset_small@abc", "fps": 128.64, "p50_ms": 7.71, "p95_ms": 10.4,
             "params": 740000, "gflops": 0.07}
    points = {"1": {"fps": 60.2, "points_per_s": 60.2, "p50_ms": 15.0, "p95_ms": 17.0},
              "64": {"fps": 40.0, "points_per_s": 2560.0, "p50_ms": 24.0, "p95_ms": 26.0}}
    track = dict(stage, name="track_mft_visible", model="track_mft_visible", params=None, gflops=None, points=points)
    bench = {"stages": {"onset": stage, "track": track}, "end_to_end": {"fps": 73.4, "p50_ms": 13.6, "p95_ms": 22.6},
             "paper_table10": {"onset": {"fps": 9.73}, "track": {"fps": 11.82}}}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    results.collect(results.SOURCES["bench"], tmp_path / "bench.json", tmp_path)
    text = tables.TABLES["speed"].render(tmp_path)
    assert "| onset | `onset_small` | 128.6 | 7.7 | 10.4 | 0.74 M | 0.07 | 9.73 |" in text
    assert "| track | `track_mft_visible` | 128.6 | 7.7 | 10.4 | – (no network) | – | 11.82 |" in text
    assert "| end to end | the three above | 73.4 | 13.6 | 22.6 |" in text
    text = tables.TABLES["speed_points"].render(tmp_path)
    assert "| 64 | 40.0 | 2,560 | 24.0 | 26.0 |" in text


def test_results_made_with_another_configuration_are_named(tmp_path):
    root = _fake_root(tmp_path, 12.27)
    assert results.stale(root) == []  # no configuration hash recorded: nothing to compare
    kept = json.loads((root / "results" / "sim_e2e.json").read_text())
    kept["config"]["pipeline_hash"] = "000000000000"
    (root / "results" / "sim_e2e.json").write_text(json.dumps(kept))
    [warning] = results.stale(root)
    assert "results/sim_e2e.json was made with pipeline configuration 000000000000" in warning
    assert results.SOURCES["sim_e2e"].command in warning
