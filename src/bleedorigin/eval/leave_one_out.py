"""`bleedorigin evaluate DATA --leave-one-out source|track`: does training on your own labelled
clips help on a clip it never saw?

For every clip folder under DATA, train on the others and evaluate on the held-out one:
- source: `bleedorigin train source` from the shipped weights with the other clips mixed into
  BleedSim (`data.bench_dirs`), scored on the held-out clip's first labelled frame;
- track: `bleedorigin finetune track` (LoRA) on the other clips, scored on all labels; it starts
  from the learned tracker `track_small_blood` (`base="track_small"` for the bare network).
The starting model is scored on the same clips, so the two columns compare like with like.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.eval.runner import evaluate
from bleedorigin.models.track.learned.finetune import finetune_tracker
from bleedorigin.training.trainer import train_main
from bleedorigin.utils.jsonio import write_json_atomic

STAGES = ("source", "track")
STARTING_POINT = {"source": "source_small", "track": "track_small_blood"}
SOURCE_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "source_small.yaml"
FINETUNE_OPTIONS = {"lr": float, "rank": int, "kind": str, "window": int, "seed": int}  # track settings


def clip_folders(data: Path) -> list[Path]:
    return sorted(p for p in data.iterdir() if (p / "video.mp4").is_file() and (p / "labels.json").is_file())


def _finetune_kwargs(settings: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in FINETUNE_OPTIONS:
            raise ConfigError(f"--set {item}: track takes {', '.join(k + '=' for k in FINETUNE_OPTIONS)}")
        try:
            out[key] = FINETUNE_OPTIONS[key](value)
        except ValueError:
            raise ConfigError(f"--set {item}: {key} must be a {FINETUNE_OPTIONS[key].__name__}") from None
    return out


def train_fold(stage: str, base: str, others: Path, out: Path, steps: int, settings: Sequence[str]) -> Path:
    if stage == "source":
        overrides = [f"train.steps={steps}", f"train.init_from={base}",
                     f"data.bench_dirs=[{others}]", "train.lr=0.0005", "train.warmup_steps=20",
                     f"train.val_every={steps}", f"train.save_every={steps}", "train.progress=false", *settings]
        train_main("source", SOURCE_RECIPE, out, overrides)
        return out / "last"
    return finetune_tracker(others, out / "tuned", model=base, steps=steps, progress=False,
                            **_finetune_kwargs(settings))


def mean_error(result: dict[str, Any], stage: str, model: str) -> tuple[float, int]:
    block = result[stage][model]
    block = (block["labelled"] if stage == "track" else block)["overall"]
    return block["err_avg"], block["n"]


def leave_one_out(stage: str, data: str | Path, out: str | Path, steps: int = 300, base: str | None = None,
                  settings: Sequence[str] = (), device: str = "auto") -> dict[str, Any]:
    """One row per held-out clip (shipped vs trained on the others, Err_avg and n), the
    label-weighted means; written to OUT/loo.json."""
    if stage not in STAGES:
        raise ConfigError(f"--leave-one-out takes {' or '.join(STAGES)}, got {stage!r}")
    if stage == "track":
        _finetune_kwargs(settings)  # a bad setting fails before any training
    data, out = Path(data), Path(out)
    if not data.is_dir():
        raise InputError(f"{data}: not a folder")
    folders = clip_folders(data)
    if len(folders) < 2:
        raise InputError(f"{data}: need at least two clip folders (video.mp4 + labels.json)")
    base = base or STARTING_POINT[stage]
    rows = []
    for held in folders:
        fold = out / held.name
        others = fold / "train_clips"
        others.mkdir(parents=True, exist_ok=True)
        for f in folders:
            link = others / f.name
            if f != held and not link.exists():
                link.symlink_to(f.resolve())
        model = train_fold(stage, base, others, fold / "model", steps, settings)
        result = evaluate(held, fold / "eval", models={stage: [base, str(model)]}, stages=[stage],
                          progress=False, device=device, baselines=False)
        shipped, tuned = (mean_error(result, stage, m) for m in result[stage])
        rows.append({"clip": held.name, "n": tuned[1], "shipped": shipped[0], "trained": tuned[0]})
    n = sum(r["n"] for r in rows)
    summary = {"stage": stage, "base": base, "steps": steps, "rows": rows,
               "mean": {k: sum(r[k] * r["n"] for r in rows) / n if n else None for k in ("shipped", "trained")}}
    write_json_atomic(out / "loo.json", summary)
    return summary


def to_markdown(summary: dict[str, Any]) -> str:
    lines = [f"Leave one clip out ({summary['stage']}, from {summary['base']}, {summary['steps']} steps): "
             "Err_avg (px at 512x384) on the held-out clip.", "",
             "| held-out clip | n | shipped | trained on the others |", "|---|---|---|---|"]
    lines += [f"| {r['clip']} | {r['n']} | {r['shipped']:.2f} | {r['trained']:.2f} |" for r in summary["rows"]]
    m = summary["mean"]
    if m["shipped"] is not None:
        lines.append(f"| mean over labels | {sum(r['n'] for r in summary['rows'])} | {m['shipped']:.2f} | "
                     f"{m['trained']:.2f} |")
    return "\n".join(lines) + "\n"
