"""PNG plots (matplotlib, Agg): of an evaluation, accuracy-vs-threshold curves, tracking error
against frames since the start, onset-confidence timelines and per-scenario bars; of one
pipeline run, its timeline (`run_timeline`, the `timeline.png` of `bleedorigin run`).
Curves and bars read metrics.json's dict; timelines read per-frame records.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bleedorigin.utils.files import atomic_open  # noqa: E402

log = logging.getLogger(__name__)

TIMELINE_CLIPS = 4  # onset timelines drawn (first clips with an onset, then a negative)
DPI = 110


def _models(metrics: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    ms = metrics.get("models", {}).get(stage, [])
    return [m for m in ms if not m["baseline"]] + [m for m in ms if m["baseline"]]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
    finally:
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
        if ax.get_legend_handles_labels()[0]:  # a folder of unlabelled real clips plots nothing
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


def timeline_record(scores: Sequence[float], phases: Sequence[str], events: Sequence[Any],
                    threshold: float | None) -> dict[str, Any]:
    """What `run_timeline` draws, as plain JSON: per-frame onset scores (None while tracking,
    when the detector does not run), the detector's threshold, and per bleeding episode its
    onset frame and the tracked point's frames and confidences."""
    return {"threshold": threshold,
            "scores": [None if p == "tracking" else round(float(s), 4) for s, p in zip(scores, phases)],
            "events": [{"onset": int(e.onset.frame), "frames": [int(t.frame) for t in e.track],
                        "confidence": [round(float(t.confidence), 4) for t in e.track]} for e in events]}


def run_timeline(record: dict[str, Any], path: Path, title: str = "",
                 true_onset: int | None = None) -> Path:
    """One run over time: onset score and threshold, detected onsets, bleeding episodes (shaded)
    and, below, the tracked point's confidence; `true_onset` adds the labelled onset."""
    scores = [float("nan") if s is None else s for s in record["scores"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.5, 4.2), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    top.plot(range(len(scores)), scores, lw=1.2, color="C3", label="onset score")
    if record.get("threshold") is not None:
        top.axhline(record["threshold"], color="grey", lw=0.9, ls=":",
                    label=f"threshold {record['threshold']:g}")
    for k, e in enumerate(record["events"]):
        end = e["frames"][-1] if e["frames"] else e["onset"]
        for ax in (top, bottom):
            ax.axvspan(e["onset"], end, color="C3", alpha=0.08, lw=0,
                       label="bleeding episode (tracking)" if ax is top and k == 0 else None)
        top.axvline(e["onset"], color="C1", lw=1.6, label="detected onset" if k == 0 else None)
        bottom.plot(e["frames"], e["confidence"], lw=1.2, color="C0",
                    label="tracked point" if k == 0 else None)
    if true_onset is not None:
        top.axvline(true_onset, color="k", lw=1, ls="--", label="true onset")
    if record["events"]:
        bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        bottom.text(0.5, 0.5, "no bleeding detected", ha="center", va="center",
                    transform=bottom.transAxes, color="grey")
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("onset score")
    top.set_title(title, fontsize=9)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside: the curve stays visible
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("track confidence")
    bottom.set_xlabel("frame")
    bottom.set_xlim(0, max(1, len(scores) - 1))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def timeline_file(pipeline_name: str, clip_id: str) -> Path:
    """Where `bleedorigin evaluate` puts a clip's end-to-end timeline, inside its output folder."""
    return Path("plots") / "timelines" / pipeline_name / f"{clip_id}.png"


def write_e2e_timelines(metrics: dict[str, Any], by_model: dict[tuple[str, str], list[dict[str, Any]]],
                        out_dir: str | Path) -> list[Path]:
    """The timeline of every end-to-end run (evaluation folder `out_dir`), as metrics.json lists them."""
    files = []
    for m in _models(metrics, "e2e"):
        for r in by_model.get(("e2e", m["key"]), []):
            if r.get("timeline"):
                files.append(run_timeline(r["timeline"], Path(out_dir) / timeline_file(m["name"], r["clip"]),
                                          f"{r['clip']} — {m['name']}", true_onset=r["gt"]))
    if files:
        log.info("wrote %d end-to-end timelines to %s", len(files), Path(out_dir) / "plots" / "timelines")
    return files


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
