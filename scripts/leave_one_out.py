"""Leave-one-clip-out: does training on your own labelled clips help on a clip it never saw?

For every clip folder under DATA, train on the others and evaluate on the held-out one (run
from the repository root: it starts from weights/ and configs/):
  - source: `bleedorigin train source` from the shipped weights with the other clips mixed into
    BleedSim (`data.bench_dirs`), scored on the held-out clip's first labelled frame;
  - track: `bleedorigin finetune track` (LoRA) on the other clips, scored on all labels; it
    starts from the learned tracker `track_small_blood` (`--base track_small` for the bare network).
The starting model is scored on the same clips, so the two columns compare like with like.

    python scripts/leave_one_out.py source ../shared/data/esd_clips --out runs/loo_source --steps 300
    python scripts/leave_one_out.py track ../shared/data/esd_clips --out runs/loo_track --steps 100
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bleedorigin.eval.runner import evaluate

SHIPPED = {"source": "weights/source_small", "track": "track_small_blood"}  # starting points
FINETUNE_OPTIONS = {"lr": float, "rank": int, "kind": str, "window": int, "seed": int}  # track --set keys


def clip_folders(data: Path) -> list[Path]:
    return sorted(p for p in data.iterdir() if (p / "video.mp4").is_file() and (p / "labels.json").is_file())


def train_fold(stage: str, base: str, others: Path, out: Path, steps: int, extra: list[str]) -> Path:
    if stage == "source":
        from bleedorigin.training.trainer import train_main
        overrides = [f"train.steps={steps}", f"train.init_from={base}",
                     f"data.bench_dirs=[{others}]", "train.lr=0.0005", "train.warmup_steps=20",
                     f"train.val_every={steps}", f"train.save_every={steps}", "train.progress=false", *extra]
        train_main("source", "configs/source_small.yaml", out, overrides)
        return out / "last"
    from bleedorigin.models.track.learned.finetune import finetune_tracker
    options = dict(item.split("=", 1) for item in extra)  # e.g. lr=0.002 rank=4 kind=adalora
    kwargs = {k: FINETUNE_OPTIONS[k](v) for k, v in options.items()}
    return finetune_tracker(others, out / "tuned", model=base, steps=steps, progress=False, **kwargs)


def mean_error(result: dict, stage: str, model: str) -> tuple[float, int]:
    block = result[stage][model]
    block = (block["labelled"] if stage == "track" else block)["overall"]
    return block["err_avg"], block["n"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["source", "track"])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--base", help="model to start from (default: source weights/source_small, "
                                   "track track_small_blood)")
    ap.add_argument("--set", dest="extra", action="append", default=[],
                    help="source: a training override (key=value); track: a finetune option "
                         f"({', '.join(k + '=' for k in FINETUNE_OPTIONS)})")
    args = ap.parse_args()
    if args.stage == "track":
        unknown = [item for item in args.extra if item.split("=", 1)[0] not in FINETUNE_OPTIONS or "=" not in item]
        if unknown:
            ap.error(f"--set {unknown[0]}: track takes {', '.join(k + '=' for k in FINETUNE_OPTIONS)}")
    if not args.data.is_dir():
        ap.error(f"{args.data}: not a folder")
    folders = clip_folders(args.data)
    if len(folders) < 2:
        ap.error(f"{args.data}: need at least two clip folders")
    base = args.base or SHIPPED[args.stage]
    rows = []
    for held in folders:
        fold = args.out / held.name
        others = fold / "train_clips"
        others.mkdir(parents=True, exist_ok=True)
        for f in folders:
            link = others / f.name
            if f != held and not link.exists():
                link.symlink_to(f.resolve())
        model = train_fold(args.stage, base, others, fold / "model", args.steps, args.extra)
        result = evaluate(held, fold / "eval", models={args.stage: [base, str(model)]},
                          stages=[args.stage], progress=False, baselines=False)
        names = list(result[args.stage])
        shipped, tuned = (mean_error(result, args.stage, m) for m in names)
        rows.append({"clip": held.name, "n": tuned[1], "shipped": shipped[0], "trained": tuned[0]})
        print(f"{held.name:24s} shipped {shipped[0]:8.2f}  trained on the others {tuned[0]:8.2f}  (n={tuned[1]})",
              flush=True)
    n = sum(r["n"] for r in rows)
    summary = {k: sum(r[k] * r["n"] for r in rows) / n for k in ("shipped", "trained")}
    print(f"{'mean over labels':24s} shipped {summary['shipped']:8.2f}  trained on the others {summary['trained']:8.2f}")
    (args.out / "loo.json").write_text(json.dumps({"stage": args.stage, "steps": args.steps, "rows": rows,
                                                   "mean": summary}, indent=2, allow_nan=True) + "\n")


if __name__ == "__main__":
    main()
