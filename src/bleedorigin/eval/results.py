"""Committed results files (`results/*.json`): what the documentation's tables are made from.

Each source is one run of the project's own command (`bleedorigin evaluate` or `bench --json`);
its results file is that run's JSON with the per-clip bulk left out and the command that made
it under "command". `results/README.md` lists them; `tools/tables.py collect` writes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bleedorigin.pipeline_config import shipped_config
from bleedorigin.utils.jsonio import read_json, write_json_atomic

# Real samples: the shared clips next to the repository; BleedSim test folder: docs/results.md "Data";
# extra public real clips staged by `bleedorigin data stage-extra` (docs/data-extra.md).
SHARED = "../shared/data"
SIMTEST = "simtest"
EXTRA_REAL = "data/extra_real"


@dataclass(frozen=True)
class Source:
    name: str
    command: str  # as documented: run from the repository root, data under SHARED and SIMTEST
    output: str  # the file the command writes, relative to the repository root

    def file(self, root: Path) -> Path:
        return root / "results" / f"{self.name}.json"


def _evaluate(name: str, data: str, *options: str) -> Source:
    out = f"runs/results/{name}"
    return Source(name, " ".join(("bleedorigin evaluate", data, "--out", out, *options)), f"{out}/metrics.json")


# Default models and the baselines (added by `evaluate`), plus the source network alone.
SOURCES: dict[str, Source] = {s.name: s for s in (
    # The BleedSim test folder, one run per stage (each can be rerun alone when its stage changes).
    _evaluate("sim_onset", SIMTEST, "--stages onset"),
    _evaluate("sim_source", SIMTEST, "--stages source --models source_evidence_red --models source_evidence --models source_small"),
    _evaluate("sim_track", f"{SIMTEST}/track_long", "--stages track"),  # the full videos: sim_e2e
    _evaluate("sim_e2e", f"{SIMTEST}/full", "--stages e2e"),
    _evaluate("esd", f"{SHARED}/esd_clips", "--stages onset --stages source --stages track",
              "--models source_evidence_red --models source_evidence --models source_small"),
    # what a user sees on real video: the tracked point over the first episode (live view)
    _evaluate("esd_e2e", f"{SHARED}/esd_clips", "--stages e2e"),
    _evaluate("vlsurgpt", f"{SHARED}/vlsurgpt", "--stages onset --stages track"),
    _evaluate("extra_real", EXTRA_REAL, "--stages onset"),
    Source("bench", "bleedorigin bench --no-onnx --no-baselines --frames 200 --json runs/results/bench.json",
           "runs/results/bench.json"),
)}

# Per-clip rows and plot paths: the tables use the aggregates; the full run keeps them.
_BULK = {"by_time", "timeline"}
_MACHINE = {"data", "out"}  # absolute paths of the machine that ran it; the command names the data


def slim(result: Any) -> Any:
    """The run's JSON without per-clip bulk, floats rounded to 6 decimals."""
    if isinstance(result, dict):
        return {k: slim(v) for k, v in result.items()
                if k not in _BULK and not (k == "clips" and isinstance(v, list))}
    if isinstance(result, list):
        return [slim(v) for v in result]
    if isinstance(result, float):
        return round(result, 6)
    return result


def collect(source: Source, run_json: Path, root: Path) -> Path:
    """Write `results/<name>.json` from the JSON a run of `source.command` wrote."""
    result = read_json(run_json)
    if isinstance(result.get("config"), dict):
        result["config"] = {k: v for k, v in result["config"].items() if k not in _MACHINE}
    path = source.file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"command": source.command, **slim(result)})
    return path


def load(name: str, root: Path) -> dict[str, Any]:
    source = SOURCES[name]
    return read_json(source.file(root), missing=f"results/{name}.json missing: run `{source.command}`, "
                     f"then `python tools/tables.py collect {name}`")


def stale(root: Path) -> list[str]:
    """Results files made with another pipeline configuration than the shipped one (its hash in
    metrics.json differs): their figures may no longer be the shipped pipeline's. Code changes
    that leave the configuration alone are not seen here."""
    shipped = shipped_config().hash
    out = []
    for source in SOURCES.values():
        path = source.file(root)
        if path.is_file():
            made = (read_json(path).get("config") or {}).get("pipeline_hash")
            if made is not None and made != shipped:
                out.append(f"results/{source.name}.json was made with pipeline configuration {made}, "
                           f"the shipped one is {shipped}: rerun `{source.command}`")
    return out
