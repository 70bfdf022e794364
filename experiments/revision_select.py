"""Choose the source-revision constants by the rule of docs/revision.md ("How the constants are
chosen"): margin x patience settings and the pipeline without revision, run end to end on
BleedSim validation full videos and the shared real clips, scored by eval.e2e.

    python experiments/revision_select.py --sim SIM_DIR --real REAL_DIR --out OUT [--config FILE] [--only NAME ...]

One record per (setting, clip) in OUT/records/ (a rerun only computes what is missing); prints
the table and the choice (overall and leaving each real clip out).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from bleedorigin.eval import e2e, protocol
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.loading import load_stage
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import STAGES, RevisionConfig, load_pipeline_config

SETTINGS = {"none": RevisionConfig(candidates=1),
            **{f"m{m:g}_p2": RevisionConfig(margin=m, patience=2) for m in (0.25, 0.5, 1.0)}}
TIE_PX = 2.0


def run(settings: list[str], sets: dict[str, Path], out: Path, config: Path | None = None) -> None:
    shipped = load_pipeline_config(config)
    stages = [load_stage(s, shipped.stage(s).model, "cpu", shipped.stage(s).options) for s in STAGES]
    for name in settings:
        for kind, root in sets.items():
            for clip in discover_clips(root):
                if not protocol.applicable("e2e", clip):
                    continue
                path = out / "records" / name / f"{kind}__{clip.id}.json"
                if path.is_file():
                    continue
                record = e2e.eval_end_to_end(Pipeline(*stages, dataclasses.replace(shipped, revision=SETTINGS[name])), clip)
                record.pop("timeline", None)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record))
                print(name, kind, clip.id, flush=True)


def live_errors(records: list[dict]) -> list[float]:
    return [e for r in records for e in r["episode"]["live"] if e is not None]


def table(out: Path) -> None:
    recs: dict[str, dict[str, list[dict]]] = {}
    for path in sorted((out / "records").glob("*/*.json")):
        kind, _ = path.stem.split("__", 1)
        recs.setdefault(path.parent.name, {}).setdefault(kind, []).append(json.loads(path.read_text()))
    names = [n for n in SETTINGS if n in recs and len(recs[n]) == 2]
    print("| setting | sim mean px | real mean px | objective | real <25 % | moves (sim, real) |")
    print("|---|---|---|---|---|---|")
    objective = {}
    for n in names:
        sim, real = (float(np.mean(live_errors(recs[n][k]))) for k in ("sim", "real"))
        objective[n] = (sim + real) / 2
        e = np.array([np.inf if v is None else v for r in recs[n]["real"] for v in r["episode"]["live"]])
        moves = [sum(v["why"] == "moved" for r in recs[n][k] for v in r["revisions"]) for k in ("sim", "real")]
        print(f"| {n} | {sim:.1f} ({len(recs[n]['sim'])} clips) | {real:.1f} ({len(recs[n]['real'])}) | "
              f"{objective[n]:.1f} | {100 * (e < 25).mean():.1f} | {moves[0]}, {moves[1]} |")
    print("chosen:", choose(objective, names))
    # leave one real clip out: choose on sim + the other real clips, score the one left out
    clips = sorted(r["clip"] for r in recs[names[0]]["real"])
    held = []
    for c in clips:
        obj = {}
        for n in names:
            sim = float(np.mean(live_errors(recs[n]["sim"])))
            real = float(np.mean(live_errors([r for r in recs[n]["real"] if r["clip"] != c])))
            obj[n] = (sim + real) / 2
        pick = choose(obj, names)
        rec = next(r for r in recs[pick]["real"] if r["clip"] == c)
        held.append((c, pick, rec["episode"]["live"]))
        print(f"  leave out {c}: chosen {pick}")
    e = np.array([np.inf if v is None else v for _, _, errs in held for v in errs])
    print(f"leave-one-out real: mean {np.mean(e[np.isfinite(e)]):.1f} px, <25 {100 * (e < 25).mean():.1f} %, "
          f"<50 {100 * (e < 50).mean():.1f} %, <100 {100 * (e < 100).mean():.1f} %, n={len(e)} frames")


def choose(objective: dict[str, float], names: list[str]) -> str:
    """Lowest objective; within TIE_PX the larger margin; revision only if it beats no revision."""
    best = min(objective.values())
    tied = [n for n in names if n != "none" and objective[n] <= best + TIE_PX]
    if not tied:
        return "none"
    pick = max(tied, key=lambda n: SETTINGS[n].margin)
    return pick if objective[pick] < objective.get("none", np.inf) else "none"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", type=Path, required=True)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=list(SETTINGS))
    ap.add_argument("--config", type=Path, help="pipeline configuration (default: the shipped one)")
    ap.add_argument("--sets", nargs="*", default=["real", "sim"], help="which sets to run now")
    ap.add_argument("--table", action="store_true", help="only print the table of the records made")
    args = ap.parse_args()
    if not args.table:
        run(args.only, {k: v for k, v in (("real", args.real), ("sim", args.sim)) if k in args.sets}, args.out,
            args.config)
    table(args.out)


if __name__ == "__main__":
    main()
