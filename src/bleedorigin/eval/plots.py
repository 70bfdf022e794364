"""PNG plots of an evaluation (matplotlib, Agg): accuracy-vs-threshold curves, tracking error
against frames since the start, onset-confidence timelines and per-scenario bars.
Curves and bars read metrics.json's dict; timelines read the onset records (per-frame scores).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

TIMELINE_CLIPS = 4  # onset timelines drawn (first clips with an onset, then a negative)
DPI = 110


def _models(metrics: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    ms = metrics.get("models", {}).get(stage, [])
    return [m for m in ms if not m["baseline"]] + [m for m in ms if m["baseline"]]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def accuracy_curves(metrics: dict[str, Any], path: Path) -> Path | None:
    """Accuracy against tolerance (onset, frames) and against threshold (source/track, px)."""
    panels = [(s, k) for s, k in (("onset", "onset_tolerances"), ("source", "pixel_thresholds"),
                                  ("track", "pixel_thresholds")) if metrics.get(s)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (stage, key) in zip(axes[0], panels):
        xs = metrics["config"][key]
        for m in _models(metrics, stage):
            s = metrics[stage][m["key"]]
            block = s["labelled"]["overall"] if stage == "track" else s["overall"]
            if "acc" not in block:
                continue
            ax.plot(xs, [100 * block["acc"][str(x)] for x in xs], marker="o",
                    linestyle="--" if m["baseline"] else "-", label=m["name"])
        ax.set_title({"onset": "Onset", "source": "Source", "track": "Tracking (labelled)"}[stage])
        ax.set_xlabel("tolerance ±k (frames)" if stage == "onset" else "threshold (px @512x384)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def track_error_over_time(metrics: dict[str, Any], path: Path) -> Path | None:
    """Mean tracking error per 30-frame bin of frames since the start (dense lines, labelled dots)."""
    models = _models(metrics, "track")
    if not models:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, m in enumerate(models):
        color = f"C{i % 10}"
        by_time = metrics["track"][m["key"]]["by_time"]
        for kind, style in (("dense", "-"), ("labelled", "o")):
            bins = [b for b in by_time[kind] if b.get("n")]
            if bins:
                ax.plot([b["since_max"] for b in bins], [b["err_avg"] for b in bins], style, color=color,
                        label=f"{m['name']} ({kind})")
    ax.set_xlabel("frames since start (bin end)")
    ax.set_ylabel("mean error (px @512x384)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def onset_timelines(records: Sequence[dict[str, Any]], path: Path, label: str = "",
                    n: int = TIMELINE_CLIPS, threshold: float = 0.5) -> Path | None:
    """Per-frame onset confidence of a few clips, GT onset (dashed) and raised onset (dot)."""
    pos = [r for r in records if r["gt"] is not None]
    neg = [r for r in records if r["gt"] is None]
    chosen = (pos[: n - 1] + neg[:1]) if neg else pos[:n]
    chosen = chosen or neg[:n]
    if not chosen:
        return None
    fig, axes = plt.subplots(len(chosen), 1, figsize=(6.4, 1.7 * len(chosen)), sharex=False, squeeze=False)
    for ax, r in zip(axes[:, 0], chosen):
        ax.plot(r["scores"], lw=1.2, color="C3")
        ax.axhline(threshold, color="grey", lw=0.8, ls=":")
        if r["gt"] is not None:
            ax.axvline(r["gt"], color="k", ls="--", lw=1, label="GT onset")
        if r["pred"] is not None:
            ax.plot([r["pred"]], [threshold], "o", color="C0", label="predicted onset")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("score")
        ax.set_title(f"{r['clip']} ({r['kind']}, {r['scenario']})", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(f"onset confidence — {label}", fontsize=9)
    return _save(fig, path)


def scenario_bars(metrics: dict[str, Any], path: Path) -> Path | None:
    """Per-scenario bars: onset Acc ±8, source and tracking mean error."""
    panels = []
    if metrics.get("onset"):
        panels.append(("onset", "onset Acc ±8 (%)", lambda s: s.get("by_scenario", {}),
                       lambda b: 100 * b["acc"]["8"] if "acc" in b else None))
    if metrics.get("source"):
        panels.append(("source", "source Err_avg (px)", lambda s: s.get("by_scenario", {}),
                       lambda b: b.get("err_avg")))
    if metrics.get("track"):
        panels.append(("track", "tracking Err_avg (px, labelled)",
                       lambda s: s["labelled"].get("by_scenario", {}), lambda b: b.get("err_avg")))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.8 * len(panels)), squeeze=False)
    for ax, (stage, title, groups, value) in zip(axes[:, 0], panels):
        models = _models(metrics, stage)
        scen = sorted({g for m in models for g in groups(metrics[stage][m["key"]])})
        width = 0.8 / max(1, len(models))
        for i, m in enumerate(models):
            g = groups(metrics[stage][m["key"]])
            vals = [value(g[s]) if s in g else None for s in scen]
            xs = [j + i * width for j, v in enumerate(vals) if v is not None]
            ax.bar(xs, [v for v in vals if v is not None], width, label=m["name"])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scen))])
        ax.set_xticklabels(scen, rotation=20, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=6)
    return _save(fig, path)


def write_plots(metrics: dict[str, Any], by_model: dict[tuple[str, str], list[dict[str, Any]]],
                out_dir: str | Path) -> list[Path]:
    """All plots into `out_dir`; returns the files written."""
    out = Path(out_dir)
    made = [accuracy_curves(metrics, out / "accuracy_curves.png"),
            track_error_over_time(metrics, out / "track_error_over_time.png"),
            scenario_bars(metrics, out / "per_scenario.png")]
    for m in _models(metrics, "onset")[:2]:  # the evaluated model and one baseline at most
        records = by_model.get(("onset", m["key"]), [])
        made.append(onset_timelines(records, out / f"onset_timeline_{m['key']}.png", m["name"]))
    files = [p for p in made if p is not None]
    log.info("wrote %d plots to %s", len(files), out)
    return files
