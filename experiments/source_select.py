"""Choose the shipped source configuration end to end by the rule of docs/revision.md ("How the
source configuration is chosen"): each localizer with and without the source revision, run end to
end on BleedSim validation full videos and the shared real clips, scored by eval.e2e (the live
point on every frame of the first episode), plus frame-0 `locate` on the real clips.

    python experiments/source_select.py --sim SIM_DIR --real REAL_DIR --out OUT [--only NAME ...] [--sets real sim]

One record per (setting, clip) in OUT/records/ (a rerun only computes what is missing); prints
the table and the choice.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.eval import e2e, metrics, protocol
from bleedorigin.io.bench import discover_clips
from bleedorigin.io.video import FrameMapper, read_frames
from bleedorigin.models.loading import load_stage
from bleedorigin.pipeline import Pipeline
from bleedorigin.pipeline_config import RevisionConfig, StageConfig, load_pipeline_config

RED_OPTIONS = dict(w_net=0.1, w_red=1.0, red_sigma=3.0, w_dark=1.0, w_growth=0.0, w_flow=0.0, prior_sigma=1.5,
                   estimate="peak", rim_fraction=0.25)  # the red fusion's tuned options (configs/pipeline.yaml)
LOCALIZERS = {"red": ("source_evidence_red", RED_OPTIONS), "stump": ("source_evidence", {}),
              "persist": ("source_evidence_persist", {})}
FITTED = {"red"}  # settings fitted on the shared real clips (their real figures are in-sample)
REVISION = {"": RevisionConfig(candidates=1), "_rev": RevisionConfig(candidates=4)}
SETTINGS = {f"{loc}{rev}": (loc, cfg) for loc in LOCALIZERS for rev, cfg in REVISION.items()}
TIE_PX = 5.0


def run(settings: list[str], sets: dict[str, Path], out: Path, config: Path | None = None) -> None:
    base = load_pipeline_config(config)
    onset, track = (load_stage(s, base.stage(s).model, "cpu", base.stage(s).options) for s in ("onset", "track"))
    for name in settings:
        loc, revision = SETTINGS[name]
        model, options = LOCALIZERS[loc]
        source = load_stage("source", model, "cpu", options)
        cfg = dataclasses.replace(base, source=StageConfig(model, options), revision=revision)
        for kind, root in sets.items():
            for clip in discover_clips(root):
                path = out / "records" / name / f"{kind}__{clip.id}.json"
                if path.is_file() or not protocol.applicable("e2e", clip):
                    continue
                record = e2e.eval_end_to_end(Pipeline(onset, source, track, cfg), clip)
                record.pop("timeline", None)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record))
                print(name, kind, clip.id, flush=True)


def frame0(real: Path) -> dict[str, float]:
    """Mean error (px at 512x384) of frame-0 `locate` (no history) of each localizer on the real clips."""
    out = {}
    clips = [c for c in discover_clips(real) if protocol.dense_source(c) is not None]
    for loc, (model, options) in LOCALIZERS.items():
        source, errs = load_stage("source", model, "cpu", options), []
        for clip in clips:
            f = read_frames(clip.video)[0]
            p = source.locate(FrameMapper(f.shape[1::-1], MODEL_SIZE).resize(f))
            xy = FrameMapper(f.shape[1::-1], MODEL_SIZE).to_input(np.array([[p.x, p.y]]))
            errs.append(float(metrics.point_errors(xy, protocol.dense_source(clip)[:1], f.shape[1::-1])[0]))
        out[loc] = float(np.mean(errs))
    return out


def live(records: list[dict]) -> np.ndarray:
    return np.array([np.inf if v is None else v for r in records for v in r["episode"]["live"]])


def choose(objective: dict[str, float], acc25: dict[str, float]) -> str:
    """Lowest objective; within TIE_PX of it an unfitted localizer first, then the higher Acc<25."""
    best = min(objective.values())
    tied = [n for n in objective if objective[n] <= best + TIE_PX]
    return max(tied, key=lambda n: (SETTINGS[n][0] not in FITTED, acc25[n]))


def table(out: Path, real: Path | None) -> None:
    recs: dict[str, dict[str, list[dict]]] = {}
    for path in sorted((out / "records").glob("*/*.json")):
        kind, _ = path.stem.split("__", 1)
        recs.setdefault(path.parent.name, {}).setdefault(kind, []).append(json.loads(path.read_text()))
    print("| setting | real mean px | real <25 % | sim val mean px | sim val <25 % | objective | moves (real, sim) |")
    print("|---|---|---|---|---|---|---|")
    objective, acc25 = {}, {}
    for n in SETTINGS:
        if n not in recs:
            continue
        cells, means, accs = [], [], []
        for k in ("real", "sim"):
            e = live(recs[n].get(k, []))
            m, a = (float(np.mean(e[np.isfinite(e)])), 100 * float((e < 25).mean())) if len(e) else (np.nan, np.nan)
            means.append(m), accs.append(a)
            cells += [f"{m:.1f} (n={len(e)}, {len(recs[n].get(k, []))} clips)", f"{a:.1f}"]
        moves = [sum(v["why"] == "moved" for r in recs[n].get(k, []) for v in r["revisions"]) for k in ("real", "sim")]
        if len(recs[n]) == 2:
            objective[n], acc25[n] = float(np.mean(means)), float(np.mean(accs))
        print(f"| {n} | " + " | ".join(cells) + f" | {np.mean(means):.1f} | {moves[0]}, {moves[1]} |")
    if objective:
        print("chosen:", choose(objective, acc25))
    if real is not None:
        print("frame-0 locate (px at 512x384, real clips):", {k: round(v, 1) for k, v in frame0(real).items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", type=Path, required=True)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=list(SETTINGS))
    ap.add_argument("--config", type=Path, help="pipeline configuration for onset, track, episode (default: shipped)")
    ap.add_argument("--sets", nargs="*", default=["real", "sim"], help="which sets to run now")
    ap.add_argument("--table", action="store_true", help="only print the table of the records made")
    args = ap.parse_args()
    if not args.table:
        run(args.only, {k: v for k, v in (("real", args.real), ("sim", args.sim)) if k in args.sets}, args.out,
            args.config)
    table(args.out, args.real)


if __name__ == "__main__":
    main()
