"""metrics.json -> report.md: paper-style tables (Tables 3, 4 and 7 of the paper), overall and
per scenario / site, one row per model, baselines and the paper's published numbers as
reference rows. Every number printed here is read from the metrics dict (never recomputed).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bleedorigin.utils.files import atomic_open

log = logging.getLogger(__name__)

# Published numbers (paper section 5, on the authors' private real ESD data), as percentages.
PAPER_LABEL = "paper (real data)"
PAPER = {
    "onset": {"name": "BleedOrigin-Detect-Frame", "table": "Table 3",
              "acc": {"0": 49.92, "1": 58.57, "2": 62.80, "4": 78.42, "8": 96.85}, "err_avg": 3.69},
    "source": {"name": "BleedOrigin-Detect-Pixel", "table": "Table 4",
               "acc": {"10": 10.25, "25": 15.78, "50": 43.50, "75": 58.05, "100": 70.24},
               "err_avg": 68.71},
    "track": {"name": "BleedOrigin-Track", "table": "Table 7",
              "acc": {"10": 41.17, "25": 61.28, "50": 82.39, "75": 92.75, "100": 96.11},
              "err_avg": 37.19},
}
DASH = "–"


def _pct(v: Any) -> str:
    return DASH if v is None else f"{100 * float(v):.2f}"


def _num(v: Any) -> str:
    return DASH if v is None else f"{float(v):.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def _models(metrics: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    """Models of a stage, the evaluated ones first, baselines after."""
    ms = metrics.get("models", {}).get(stage, [])
    return [m for m in ms if not m["baseline"]] + [m for m in ms if m["baseline"]]


def _label(m: dict[str, Any]) -> str:
    return f"{m['name']} (baseline)" if m["baseline"] else m["name"]


def _keys(metrics: dict[str, Any], kind: str) -> list[str]:
    return list(metrics["config"]["onset_tolerances" if kind == "onset" else "pixel_thresholds"])


# -- row builders -------------------------------------------------------------------------------
def onset_row(label: str, b: dict[str, Any], tols: Sequence[Any]) -> list[str]:
    acc = b.get("acc", {})
    return [label, *(_pct(acc.get(str(t))) for t in tols), _num(b.get("err_avg")),
            str(b.get("missed", DASH)), _pct(b.get("false_alarm_rate")), str(b.get("n", 0)),
            str(b.get("negatives", 0))]


def point_row(label: str, b: dict[str, Any] | None, ths: Sequence[Any]) -> list[str]:
    b = b or {}
    acc = b.get("acc", {})
    return [label, *(_pct(acc.get(str(t))) for t in ths), _num(b.get("err_avg")), str(b.get("n", 0))]


def paper_row(stage: str, keys: Sequence[Any], point: bool) -> list[str]:
    p = PAPER[stage]
    cells = [f"{p['acc'][str(k)]:.2f}" if str(k) in p["acc"] else DASH for k in keys]
    tail = [DASH] if point else [DASH, DASH, DASH, DASH]
    return [f"{p['name']} — {PAPER_LABEL}, {p['table']}", *cells, f"{p['err_avg']:.2f}", *tail]


def onset_header(tols: Sequence[Any], first: str = "Model") -> list[str]:
    return [first, *(f"±{t}" for t in tols), "Err_avg (frames)", "missed", "false alarms %",
            "n", "negatives"]


def point_header(ths: Sequence[Any], first: str = "Model") -> list[str]:
    return [first, *(f"<{t}px" for t in ths), "Err_avg (px)", "n"]


# -- sections ---------------------------------------------------------------------------------
def _grouped_rows(metrics: dict[str, Any], stage: str, group: str, row: Any, keys: Sequence[Any],
                  sub: str | None = None) -> list[list[str]]:
    rows = []
    groups = sorted({g for m in _models(metrics, stage)
                     for g in (_block(metrics, stage, m["key"], sub) or {}).get(f"by_{group}", {})})
    for g in groups:
        for m in _models(metrics, stage):
            b = (_block(metrics, stage, m["key"], sub) or {}).get(f"by_{group}", {}).get(g)
            if b is not None:
                rows.append(row(f"{g} · {_label(m)}", b, keys))
    return rows


def _group_tables(metrics: dict[str, Any], stage: str, title: str, header: Callable, row: Callable,
                  keys: Sequence[Any], sub: str | None = None) -> list[str]:
    """One table per grouping (scenario, site) of every model's results."""
    out: list[str] = []
    for group in ("scenario", "site"):
        out += [f"### {title.format(group)}", ""]
        out += _table(header(keys, group.capitalize() + " · model"),
                      _grouped_rows(metrics, stage, group, row, keys, sub=sub))
    return out


def _block(metrics: dict[str, Any], stage: str, key: str, sub: str | None) -> dict[str, Any] | None:
    s = metrics.get(stage, {}).get(key)
    return s if sub is None or s is None else s.get(sub)


def present_section(metrics: dict[str, Any]) -> list[str]:
    """"Real bleeding present": per model, real sample clips that bleed flagged in time and
    alarms on bleeding-free ones, then the onset frame and score of every clip."""
    models = [m for m in _models(metrics, "onset") if metrics["onset"][m["key"]].get("real_present")]
    if not models:
        return []
    first = metrics["onset"][models[0]["key"]]["real_present"]
    out = ["## Real bleeding present", "",
           f"Real sample clips: those that bleed from their first frame must be flagged with an "
           f"onset at frame 0..{first['within']} (bleeding from frame b: an onset within "
           f"±{first['within']} of b); bleeding-free ones must raise no alarm.", ""]
    rows = []
    for m in models:
        b = metrics["onset"][m["key"]]["real_present"]
        rows.append([_label(m), f"{b['flagged']} of {b['bleeding']}", f"{b['alarms']} of {b['bleeding_free']}"])
    out += _table(["Model", f"Bleeding flagged in time (±{first['within']})", "Alarms on bleeding-free"], rows)
    clips = sorted({c["clip"] for m in models for c in metrics["onset"][m["key"]]["real_present"]["clips"]})
    per = {m["key"]: {c["clip"]: c for c in metrics["onset"][m["key"]]["real_present"]["clips"]} for m in models}
    header = ["Clip", "Bleeding"] + [f"{_label(m)} onset (score)" for m in models]
    table = []
    for clip in clips:
        cells = [per[m["key"]].get(clip) for m in models]
        truth = next(c for c in cells if c is not None)
        start = truth.get("gt") or 0
        bleeding = ("from " + str(start) if start else "yes") if truth["real_bleeding"] else "no"
        table.append([clip, bleeding] + [
            DASH if c is None else ("none" if c["pred"] is None else
                                    f"{c['pred']} ({_num(c['confidence'])})") for c in cells])
    return out + _table(header, table)


def onset_section(metrics: dict[str, Any]) -> list[str]:
    tols = _keys(metrics, "onset")
    models = _models(metrics, "onset")
    if not any(metrics["onset"][m["key"]]["clips"] for m in models):
        return present_section(metrics)
    rows = [onset_row(_label(m), metrics["onset"][m["key"]]["overall"], tols) for m in models]
    rows.append(paper_row("onset", tols, point=False))
    out = ["## Onset detection (paper Table 3)", "",
           "Accuracy within ±k frames (%), mean |Δframe| over detected onsets; missed onsets "
           "count as misses at every tolerance. False alarms: share of bleeding-free clips with "
           "an onset raised.", ""]
    out += _table(onset_header(tols), rows)
    return (out + _group_tables(metrics, "onset", "Onset by {}", onset_header, onset_row, tols)
            + present_section(metrics))


def source_section(metrics: dict[str, Any]) -> list[str]:
    ths = _keys(metrics, "point")
    rows = [point_row(_label(m), metrics["source"][m["key"]]["overall"], ths) for m in _models(metrics, "source")]
    rows.append(paper_row("source", ths, point=True))
    out = ["## Source localisation on the GT onset frame (paper Table 4)", "",
           "Accuracy below d px (%) and mean error (px), errors scaled to 512x384.", ""]
    out += _table(point_header(ths), rows)
    return out + _group_tables(metrics, "source", "Source by {}", point_header, point_row, ths)


def track_section(metrics: dict[str, Any]) -> list[str]:
    ths = _keys(metrics, "point")
    models = _models(metrics, "track")
    out = ["## Point tracking from the GT start point (paper Table 7)", "",
           "Scored on every labelled frame after the start (\"labelled\") and, where the clip has "
           "dense truth (gt.npz, or labels_dense.json of an imported clip), on every frame (\"dense\"). "
           "Errors scaled to 512x384.", ""]
    rows = []
    for m in models:
        s = metrics["track"][m["key"]]
        rows.append(point_row(f"{_label(m)} · labelled", s["labelled"]["overall"], ths))
        if s.get("dense"):
            rows.append(point_row(f"{_label(m)} · dense", s["dense"]["overall"], ths))
    rows.append(paper_row("track", ths, point=True))
    out += _table(point_header(ths), rows)
    out += tapvid_section(metrics, models)
    out += _group_tables(metrics, "track", "Tracking by {} (labelled frames)", point_header, point_row, ths,
                         sub="labelled")
    bins = sorted({b["since"]: b["since_max"] for m in models
                   for b in metrics["track"][m["key"]]["by_time"]["labelled"]}.items(), key=lambda kv: kv[1])
    if bins:
        out += ["### Tracking error (px) against frames since the start (labelled frames)", ""]
        rows = []
        for since, _ in bins:
            cells = []
            for m in models:
                b = {x["since"]: x for x in metrics["track"][m["key"]]["by_time"]["labelled"]}.get(since)
                cells.append(DASH if b is None else f"{_num(b.get('err_avg'))} (n={b['n']})")
            rows.append([since, *cells])
        out += _table(["Frames since start", *(_label(m) for m in models)], rows)
    return out


def tapvid_section(metrics: dict[str, Any], models: Sequence[dict[str, Any]]) -> list[str]:
    """TAP-Vid's AJ, delta_avg and OA (eval.tap), mean over clips, beside the paper's metrics."""
    tv = metrics["config"].get("tapvid", {})
    rows = []
    for m in models:
        blocks = metrics["track"][m["key"]].get("tapvid") or {}
        for which in ("labelled", "dense"):
            b = (blocks.get(which) or {}).get("overall")
            if b:
                rows.append([f"{_label(m)} · {which}", _pct(b["aj"]), _pct(b["delta_avg"]), _pct(b["oa"]),
                             str(b["clips"])])
    if not rows:
        return []
    size = "x".join(str(v) for v in tv.get("size", ()))
    ths = ", ".join(str(v) for v in tv.get("thresholds", ()))
    out = ["### Tracking in TAP-Vid's metrics", "",
           f"Average Jaccard (AJ), delta_avg (share within {{{ths}}} px, averaged) and occlusion accuracy "
           f"(OA), %, TAP-Vid definitions with distances scaled to {size} as TAP-Vid does (not 512x384); "
           "per clip, then the mean over clips. A null label on a labelled frame counts as a hidden point. "
           "track_still is the zero-motion control (the start point, never moved).", "",
           *_table(["Model", "AJ", "delta_avg", "OA", "clips"], rows)]
    redetection = [(m, (metrics["track"][m["key"]].get("tapvid") or {}).get("redetection")) for m in models]
    redetection = [(m, rd) for m, rd in redetection if rd and rd["events"]]
    if redetection:
        rd_rows = [[_label(m), _pct(rd["aj_rd"]), *(_pct(v) for v in rd["by_min_hidden"].values()), str(rd["events"])]
                   for m, rd in redetection]
        out += ["Re-detection (TAPNext++'s AJ_RD, %, dense truth): for each time the point becomes visible "
                "again after a longer hidden stretch than before on its track, the Jaccard of the rest of "
                "the track, averaged over such events hidden at least d_min frames, then over the thresholds "
                "and d_min.", "",
                *_table(["Model", "AJ_RD", *(f"d_min {d}" for d in redetection[0][1]["by_min_hidden"]), "events"],
                        rd_rows)]
    return out


def e2e_section(metrics: dict[str, Any]) -> list[str]:
    tols, ths = _keys(metrics, "onset"), _keys(metrics, "point")
    models = _models(metrics, "e2e")
    out = ["## End to end (deployment mode) on full videos", "",
           "The pipeline's own onset, source and track. Tracking is scored against the dense "
           "truth from the GT onset on, on frames where the pipeline has a point; coverage is the "
           "share of those frames that have one.", ""]
    out += _table(onset_header(tols, "Pipeline"),
                  [onset_row(_label(m), metrics["e2e"][m["key"]]["onset"], tols) for m in models])
    out += _table([*point_header(ths, "Pipeline"), "coverage %"],
                  [[*point_row(_label(m), metrics["e2e"][m["key"]]["track"], ths),
                    _pct(metrics["e2e"][m["key"]]["coverage"])] for m in models])
    out += episode_lines(metrics, models)
    rows = [[f"{c['clip']} · {_label(m)}", DASH if c["gt"] is None else str(c["gt"]),
             DASH if c["pred"] is None else str(c["pred"]), _num(c["err_avg"]), _pct(c["coverage"]),
             f"[timeline]({c['timeline']})" if c.get("timeline") else DASH]
            for m in models for c in metrics["e2e"][m["key"]].get("per_clip", [])]
    if rows:
        out += ["### Per clip", "",
                "Timeline: onset score with the threshold, detected and true onset, the bleeding "
                "episodes and the tracked point's confidence over the video.", ""]
        out += _table(["Clip · pipeline", "true onset", "detected onset", "track Err_avg (px)",
                       "coverage %", "timeline"], rows)
    return out


def stir_section(metrics: dict[str, Any]) -> list[str]:
    """STIR 2026: AJ, ATA and OA over its thresholds (input pixels), latency, the control row."""
    r = metrics["stir"]
    cfg = metrics["config"]
    ths = ", ".join(str(t) for t in r["thresholds"])
    out = ["# BleedOrigin STIR-style evaluation", "",
           f"Sequences of `{cfg['data']}` from the start points of `{cfg['stir_start']}`; "
           + (f"scored against `{cfg['stir_end']}`." if cfg.get("stir_end") else "no end points given: not scored."),
           "", f"AJ (average Jaccard), ATA (average tracking accuracy) and OA (occlusion accuracy), %, over "
           f"{{{ths}}} {r['units']}, pooled over every scored point; latency per frame (resize and all points) "
           f"without the first {cfg['latency_skip']} frames of each sequence, on this machine. Zero-motion "
           "control: the start points, never moved. Submission files: the preds.json of each row.", ""]
    rows = [[name, _pct(b.get("aj")), _pct(b.get("ata")), _pct(b.get("oa")), str(b.get("n", DASH)),
             _num(b["latency"]["p95_ms"]), _num(b["latency"]["mean_ms"]), f"`{b['preds']}`"]
            for name, b in r["models"].items()]
    c = r.get("control")
    if c:
        rows.append(["zero-motion control", _pct(c.get("aj")), _pct(c.get("ata")), _pct(c.get("oa")),
                     str(c.get("n", DASH)), DASH, DASH, DASH])
    return out + _table(["Model", "AJ", "ATA", "OA", "n", "p95 ms", "mean ms", "preds"], rows)


def episode_lines(metrics: dict[str, Any], models: Sequence[dict[str, Any]]) -> list[str]:
    """What the user sees (eval.e2e): every frame of the first episode, live and as in result.json,
    and the frames until the point is within 25 / 50 px for good."""
    models = [m for m in models if "episode" in metrics["e2e"][m["key"]]]
    if not models:
        return []
    ths = _keys(metrics, "point")
    header = [*point_header(ths, "Pipeline · view"), "settled <25 (clips)", "frames to <25 (median)",
              "settled <50 (clips)", "frames to <50 (median)", "revisions"]
    rows = []
    for m in models:
        ep = metrics["e2e"][m["key"]]["episode"]
        for view in ("live", "result"):
            settle = ep[view]["settle"]
            rows.append([*point_row(f"{_label(m)} · {view}", ep[view]["points"], ths),
                         *(f"{settle[d]['settled']}/{settle[d]['clips']}" if i == 0 else _num(settle[d]["median_frames"])
                           for d in ("25", "50") for i in (0, 1)),
                         str(ep["revisions"])])
    out = ["### Every frame of the first episode", "",
           "Errors (px at 512x384) on every frame from the true start of the episode to the end of the "
           "reference; a frame without a point counts as a miss. `live`: the point drawn on each frame as "
           "the stream went; `result`: the first event's track in result.json (the source it ended with). "
           "Settled: the point is within d px from that frame to the end.", ""]
    out += _table(header, rows)
    out += ["The source at the onset frame: as the localizer first placed it (on the frame the onset was "
            "raised) and as kept at the end of the episode (after its revisions).", ""]
    out += _table(["Pipeline", "located Err_avg (px)", "kept Err_avg (px)", "clips", "revisions"],
                  [[_label(m), _num(ep["located"].get("err_avg")), _num(ep["source"].get("err_avg")),
                    str(ep["source"].get("n", 0)), str(ep["revisions"])]
                   for m in models for ep in [metrics["e2e"][m["key"]]["episode"]]])
    return out


def to_markdown(metrics: dict[str, Any], plots: Sequence[str | Path] = ()) -> str:
    if "stir" in metrics:
        return "\n".join(stir_section(metrics))
    cfg = metrics["config"]
    data = metrics["data"]
    kinds = ", ".join(f"{k}: {n}" for k, n in data["by_kind"].items())
    lines = ["# BleedOrigin evaluation report", "",
             f"Data: `{cfg['data']}` — {data['clips']} clips ({kinds}). "
             f"Protocol v{metrics['protocol_version']}, bleedorigin {cfg['bleedorigin']}, "
             f"device {cfg['device']}.", "",
             "Evaluation mode of Algorithm 1: each stage fed with ground truth and scored on its "
             f"own. Reference rows labelled \"{PAPER_LABEL}\" are the paper's published numbers "
             "on its (non-public) data set, not results of this run.", ""]
    sections = {"onset": onset_section, "source": source_section, "track": track_section,
                "e2e": e2e_section}
    for stage, section in sections.items():
        if metrics.get(stage):
            lines += section(metrics)
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).as_posix()})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(metrics: dict[str, Any], path: str | Path, plots: Sequence[str | Path] = ()) -> Path:
    path = Path(path)
    with atomic_open(path) as f:
        f.write(to_markdown(metrics, plots))
    log.info("wrote %s", path)
    return path
