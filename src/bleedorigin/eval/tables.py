"""The documentation's tables, rendered from the committed results files (`eval/results.py`).

A table lives in README.md or docs/*.md between `<!-- table:NAME -->` and `<!-- /table -->`;
`tools/tables.py` rewrites every such block from its results file and `--check` names the
blocks that differ. Each table below says which results it reads, which rows and models it
shows and how a figure is written; a metric missing from a results file is an error naming
the table and the path, never a blank cell.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bleedorigin.errors import InputError
from bleedorigin.eval import results as results_files
from bleedorigin.utils.files import atomic_open

# Paper figures (BleedOrigin paper, its private real data): a reference row, not a measurement here.
PAPER_ONSET = {"acc": {"0": 49.92, "1": 58.57, "2": 62.80, "4": 78.42, "8": 96.85}, "err_avg": 3.69}
PAPER_SOURCE = {"acc": {"10": 10.25, "25": 15.78, "50": 43.50, "75": 58.05, "100": 70.24}, "err_avg": 68.71}
PAPER_TRACK = {"acc": {"10": 41.17, "25": 61.28, "50": 82.39, "75": 92.75, "100": 96.11}, "err_avg": 37.19}
PAPER_TRACK_CELL = f"{PAPER_TRACK['err_avg']:.2f} ({PAPER_TRACK['acc']['25']:.2f})"  # already in %

ONSET_TOLERANCES = ("0", "1", "2", "4", "8", "16")
PX = ("10", "25", "50", "75", "100")


class TableError(InputError):
    """A table cannot be rendered from its results file (missing file or metric)."""


class MissingMetric(KeyError):
    pass


class Results:
    """One results file, read by dotted paths (`track.track_mft.dense.overall.err_avg`)."""

    def __init__(self, name: str, data: dict[str, Any]):
        self.name, self.data = name, data

    def get(self, path: str) -> Any:
        node: Any = self.data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node or node[key] is None:
                raise MissingMetric(f"results/{self.name}.json has no {path!r}")
            node = node[key]
        return node


# -- how figures are written ----------------------------------------------------------------
def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def px(x: float) -> str:
    return f"{x:.2f}"


def err_acc(block: dict[str, Any]) -> str:
    """Err_avg px (Acc<25 px %), the paper's pair for tracking."""
    return f"{px(block['err_avg'])} ({pct(block['acc']['25'])})"


def markdown(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# -- the tables -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    name: str
    sources: tuple[str, ...]
    build: Callable[..., str]  # one Results per source, in order -> markdown

    def render(self, root: Path) -> str:
        try:
            return self.build(*(Results(s, results_files.load(s, root)) for s in self.sources))
        except MissingMetric as e:
            raise TableError(f"table {self.name}: {e.args[0]}") from None
        except KeyError as e:  # a key read inside a block Results.get returned
            raise TableError(f"table {self.name}: a block of {', '.join(self.sources)} has no {e.args[0]!r}") from None
        except InputError as e:  # a results file missing or unreadable
            raise TableError(f"table {self.name}: {e}") from None


TABLES: dict[str, Table] = {}


def table(name: str, *sources: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    def register(build: Callable[..., str]) -> Callable[..., str]:
        TABLES[name] = Table(name, sources, build)
        return build
    return register


def _onset_row(label: str, block: dict[str, Any], tolerances: Iterable[str]) -> list[str]:
    far = block.get("false_alarm_rate")
    return ([label] + [pct(block["acc"][k]) for k in tolerances]
            + [px(block["err_avg"]), str(block["missed"]), "–" if far is None else f"{pct(far)} %"])


ONSET_MODELS = (("onset_small", "`onset_small` (default)"), ("onset_hsv", "`onset_hsv` (baseline: red-area growth)"))


@table("onset_sim", "sim_onset")
def onset_sim(sim: Results) -> str:
    rows = [_onset_row(label, sim.get(f"onset.{m}.overall"), ("0", "8")) for m, label in ONSET_MODELS]
    rows.append(["paper, BleedOrigin-Detect-Frame", f"{PAPER_ONSET['acc']['0']:.2f}",
                 f"{PAPER_ONSET['acc']['8']:.2f}", f"{PAPER_ONSET['err_avg']:.2f}", "–", "–"])
    return markdown(["model", "Acc±0", "Acc±8", "Err_avg (frames)", "missed", "false alarms"], rows)


@table("onset_sim_full", "sim_onset")
def onset_sim_full(sim: Results) -> str:
    rows = [_onset_row(label, sim.get(f"onset.{m}.overall"), ONSET_TOLERANCES) for m, label in ONSET_MODELS]
    paper = PAPER_ONSET["acc"]
    rows.append(["paper, BleedOrigin-Detect-Frame (its real data)"]
                + [f"{paper[k]:.2f}" if k in paper else "–" for k in ONSET_TOLERANCES]
                + [f"{PAPER_ONSET['err_avg']:.2f}", "–", "–"])
    return markdown(["model"] + [f"±{k}" for k in ONSET_TOLERANCES]
                    + ["Err_avg (frames)", "missed", "false alarms"], rows)


@table("onset_sim_scenario", "sim_onset")
def onset_sim_scenario(sim: Results) -> str:
    """Acc±8 and Err_avg on the scenario's onsets; false alarms on its bleeding-free clips."""
    def cell(b: dict[str, Any]) -> str:
        return f"{pct(b['acc']['8'])}, {px(b['err_avg'])}" if b.get("n") else "–"

    def alarms(b: dict[str, Any]) -> str:
        return "–" if b.get("false_alarm_rate") is None else pct(b["false_alarm_rate"])

    small, hsv = sim.get("onset.onset_small.by_scenario"), sim.get("onset.onset_hsv.by_scenario")
    rows = [[f"{s} ({small[s]['n']} / {small[s]['negatives']})", cell(small[s]), cell(hsv[s]),
             f"{alarms(small[s])} / {alarms(hsv[s])}"] for s in sorted(small)]
    return markdown(["scenario (onsets / bleeding-free)", "`onset_small` Acc±8, Err_avg",
                     "`onset_hsv` (baseline) Acc±8, Err_avg", "false alarms % (`onset_small` / `onset_hsv`)"],
                    rows)


@table("onset_real", "esd", "vlsurgpt", "extra_real")
def onset_real(esd: Results, vl: Results, extra: Results) -> str:
    rows = []
    for m, label in ONSET_MODELS:
        e, v, x = (r.get(f"onset.{m}.real_present") for r in (esd, vl, extra))
        rows.append([f"`{m}`" + (" (default)" if m == "onset_small" else " (baseline)"),
                     f"{e['flagged']} of {e['bleeding']}", str(v["alarms"]), str(x["alarms"]),
                     f"{x['flagged']} of {x['bleeding']}"])
    e0, v0, x0 = (r.get("onset.onset_small.real_present") for r in (esd, vl, extra))
    return markdown(["model", f"ESD flagged by frame {e0['within']} (n={e0['bleeding']})",
                     f"alarms, VL-SurgPT (n={v0['bleeding_free']} entries)",
                     f"alarms, extra bleeding-free (n={x0['bleeding_free']})",
                     f"extra ESD flagged within ±{x0['within']} (n={x0['bleeding']})"], rows)


SOURCE_NOTES = {"source_small": "network alone", "source_centre": "image centre", "source_channel": "6 o'clock below the centre"}


def _source_models(r: Results, short: bool = False) -> list[tuple[str, str]]:
    """The localizers the run scored, in its order, the shipped one marked (its pipeline configuration)."""
    default = r.get("config.pipeline.source.model")
    out = []
    for m in r.get("models.source"):
        name = m["key"]
        notes = ["default"] * (name == default) + ["baseline"] * m["baseline"] + [SOURCE_NOTES.get(name, "")]
        notes = [n for n in notes if n]
        out.append((name, f"`{name}`" + (f" ({', '.join(notes)})" if notes and not short else "")))
    return out


@table("source", "sim_source", "esd")
def source_headline(sim: Results, esd: Results) -> str:
    def cell(r: Results, m: str) -> str:
        b = r.get(f"source.{m}.overall")
        return f"{px(b['err_avg'])} ({pct(b['acc']['100'])})"

    models = _source_models(sim)
    n_sim, n_esd = (r.get(f"source.{models[0][0]}.overall.n") for r in (sim, esd))
    paper = f"{PAPER_SOURCE['err_avg']:.2f} ({PAPER_SOURCE['acc']['100']:.2f})"
    return markdown(["data"] + [label for _, label in models] + ["paper"],
                    [[f"BleedSim test (n={n_sim})"] + [cell(sim, m) for m, _ in models] + [paper],
                     [f"real ESD, frame 0 (n={n_esd})"] + [cell(esd, m) for m, _ in models] + [""]])


def _accuracy_table(r: Results, stage: str, models: Iterable[tuple[str, str]], block: str,
                    paper: tuple[str, dict[str, Any]] | None = None) -> str:
    rows = []
    for m, label in models:
        b = r.get(f"{stage}.{m}.{block}")
        rows.append([label] + [pct(b["acc"][t]) for t in PX] + [px(b["err_avg"]), str(b["n"])])
    if paper:
        rows.append([paper[0]] + [f"{paper[1]['acc'][t]:.2f}" for t in PX] + [f"{paper[1]['err_avg']:.2f}", "–"])
    return markdown(["model"] + [f"<{t}" for t in PX] + ["Err_avg (px)", "n"], rows)


@table("source_sim_full", "sim_source")
def source_sim_full(sim: Results) -> str:
    return _accuracy_table(sim, "source", _source_models(sim), "overall",
                           ("paper, BleedOrigin-Detect-Pixel (its real data)", PAPER_SOURCE))


@table("source_esd_full", "esd")
def source_esd_full(esd: Results) -> str:
    return _accuracy_table(esd, "source", _source_models(esd), "overall")


def _track_default(r: Results) -> str:
    """The shipped tracker of the run's pipeline configuration."""
    return r.get("config.pipeline.track.model")


def _track_baselines(r: Results) -> list[str]:
    """The baseline trackers the run scored (evaluate adds them), in its order."""
    return [m["key"] for m in r.get("models.track") if m["baseline"]]


def _track_all(r: Results) -> tuple[tuple[str, str], ...]:
    default = _track_default(r)
    return ((default, f"`{default}` (default)"),) + tuple((b, f"`{b}` (baseline)") for b in _track_baselines(r))


def _best_baseline(r: Results, block: str) -> str:
    scores = {b: r.get(f"track.{b}.{block}") for b in _track_baselines(r)}
    best = min(scores, key=lambda b: scores[b]["err_avg"])
    return f"{err_acc(scores[best])} `{best}`"


@table("track", "sim_track", "esd", "vlsurgpt")
def track_headline(sim: Results, esd: Results, vl: Results) -> str:
    rows = []
    for label, r, block, paper in (("BleedSim test, long clips", sim, "labelled.overall", True),
                                   ("real ESD, dense", esd, "dense.overall", False),
                                   ("VL-SurgPT", vl, "labelled.overall", False)):
        default = _track_default(r)
        n = r.get(f"track.{default}.{block}.n")
        rows.append([f"{label} (n={n:,})", err_acc(r.get(f"track.{default}.{block}")),
                     _best_baseline(r, block), PAPER_TRACK_CELL if paper else ""])
    return markdown(["data", f"`{_track_default(sim)}` (default)", "best baseline", "paper, BleedOrigin-Track"], rows)


def _track_full(r: Results, block: str) -> str:
    return _accuracy_table(r, "track", _track_all(r), block)


for _name, _source, _block in (("track_sim_long", "sim_track", "labelled.overall"),
                               ("track_sim_long_dense", "sim_track", "dense.overall"),
                               ("track_esd_dense", "esd", "dense.overall"),
                               ("track_esd", "esd", "labelled.overall"),
                               ("track_vlsurgpt", "vlsurgpt", "labelled.overall")):
    table(_name, _source)(lambda r, block=_block: _track_full(r, block))


def _by_group(r: Results, stage: str, models: Iterable[tuple[str, str]] | str | None, block: str, first: str,
              names: dict[str, str] | None = None) -> str:
    """One row per group (scenario, clip kind) of `stage.MODEL.block`: Err_avg px (Acc<25 %), n
    (`models` None: the default tracker and the run's baselines; "source": the run's localizers)."""
    models = (_source_models(r, short=True) if models == "source"
              else tuple(models) if models is not None else _track_all(r))
    groups = {m: r.get(f"{stage}.{m}.{block}") for m, _ in models}
    keys = sorted(groups[models[0][0]])
    rows = [[(names or {}).get(k, k)] + [err_acc(groups[m][k]) for m, _ in models] + [str(groups[models[0][0]][k]["n"])]
            for k in keys]
    return markdown([first] + [label for _, label in models] + ["n"], rows)


VL_KINDS = {"0_instrument_key_points": "instrument key points", "deformation": "deforming tissue"}

for _name, _source, _stage, _models, _block, _first, _names in (
        ("source_sim_scenario", "sim_source", "source", "source", "by_scenario", "scenario", None),
        ("track_sim_scenario", "sim_track", "track", None, "labelled.by_scenario", "scenario", None),
        ("track_esd_scenario", "esd", "track", None, "dense.by_scenario", "scenario (one clip each)", None),
        ("track_vlsurgpt_kind", "vlsurgpt", "track", None, "labelled.by_scenario", "point kind", VL_KINDS)):
    table(_name, _source)(lambda r, a=(_stage, _models, _block, _first, _names): _by_group(r, *a))


def _e2e_row(label: str, b: dict[str, Any]) -> list[str]:
    return [label, pct(b["onset"]["acc"]["8"]), px(b["track"]["err_avg"]), pct(b["track"]["acc"]["25"]),
            f"{100 * b['coverage']:.1f} %"]


def _e2e_keys(r: Results) -> tuple[str, str]:
    """The run's default pipeline (evaluate runs the first choice of each stage first) and its
    all-baseline pipeline."""
    default = "+".join(r.get("config.e2e_pipelines")[0])
    baselines = next(m["key"] for m in r.get("models.e2e") if m["baseline"])
    return default, baselines


def _pipeline_label(r: Results, key: str) -> str:
    default, baselines = _e2e_keys(r)
    return " → ".join(key.split("+")) + {default: " (default)", baselines: " (baselines)"}.get(key, "")


@table("e2e", "sim_e2e")
def e2e_headline(sim: Results) -> str:
    return markdown(["pipeline", "onset Acc±8", "track Err_avg (px)", "track Acc<25", "coverage"],
                    [_e2e_row(_pipeline_label(sim, key), sim.get(f"e2e.{key}")) for key in _e2e_keys(sim)])


@table("e2e_full", "sim_e2e")
def e2e_full(sim: Results) -> str:
    """Every pipeline the run scored (the default, the default with each baseline localizer, the
    baselines)."""
    def row(label: str, b: dict[str, Any]) -> list[str]:
        o, t = b["onset"], b["track"]
        return [label, pct(o["acc"]["0"]), pct(o["acc"]["8"]), px(o["err_avg"]), pct(t["acc"]["10"]),
                pct(t["acc"]["25"]), pct(t["acc"]["100"]), px(t["err_avg"]), f"{100 * b['coverage']:.1f} %"]

    return markdown(["pipeline", "onset ±0", "±8", "Err_avg (frames)", "track <10 px", "<25 px", "<100 px",
                     "Err_avg (px)", "coverage"],
                    [row(_pipeline_label(sim, key), b) for key, b in sim.get("e2e").items()])


@table("e2e_per_video", "sim_e2e")
def e2e_per_video(sim: Results) -> str:
    def rows(key: str, label: str) -> list[list[str]]:
        return [[c["clip"], label, str(c["gt"]), "–" if c["pred"] is None else str(c["pred"]),
                 "–" if c["err_avg"] is None else px(c["err_avg"]), f"{100 * c['coverage']:.1f} %"]
                for c in sim.get(f"e2e.{key}.per_clip")]

    return markdown(["clip", "pipeline", "true onset", "detected", "track Err_avg (px)", "coverage"],
                    rows(_e2e_keys(sim)[0], "default") + rows(_e2e_keys(sim)[1], "baselines"))


@table("e2e_real", "esd_e2e")
def e2e_real(esd: Results) -> str:
    """The point a user sees on the real clips: the live view over every frame of the first
    episode (a frame before the alarm has no point and counts as a miss), the source where it
    was first located, and how many clips end within 25 px of the reference and stay there."""
    def row(key: str) -> list[str]:
        e = esd.get(f"e2e.{key}.episode")
        live, located, settle = e["live"]["points"], e["located"], e["live"]["settle"]["25"]
        return [_pipeline_label(esd, key), px(live["err_avg"]), pct(live["acc"]["25"]), pct(live["acc"]["50"]),
                pct(live["acc"]["100"]), f"{live['missed']} of {live['n']}", px(located["err_avg"]),
                f"{settle['settled']} of {settle['clips']}"]

    keys = list(esd.get("e2e"))
    default, baselines = _e2e_keys(esd)
    order = [default] + [k for k in keys if k not in (default, baselines)] + [baselines]
    return markdown(["pipeline", "Err_avg (px)", "Acc<25", "Acc<50", "Acc<100", "frames without a point",
                     "source as located (px)", "clips settled within 25 px"], [row(k) for k in order])


@table("results_files")
def results_commands() -> str:
    """results/README.md: each results file with the command that regenerates it."""
    return markdown(["file", "command that regenerates it"],
                    [[f"`{s.name}.json`", f"`{s.command}`"] for s in results_files.SOURCES.values()])


@table("speed", "bench")
def speed(bench: Results) -> str:
    """Each stage alone and the pipeline end to end, beside the paper's GPU figures (Table 10)."""
    paper = bench.get("paper_table10")

    def size(r: dict[str, Any]) -> tuple[str, str]:
        return ("– (no network)" if r.get("params") is None else f"{r['params'] / 1e6:.2f} M",
                "–" if r.get("gflops") is None else f"{r['gflops']:.2f}")

    rows = [[stage, f"`{r.get('name', r['model'])}`", f"{r['fps']:.1f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", *size(r),
             f"{paper[stage]['fps']:.2f}" if stage in paper else ""]
            for stage, r in bench.get("stages").items()]
    e = bench.get("end_to_end")
    rows.append(["end to end", "the three above", f"{e['fps']:.1f}", f"{e['p50_ms']:.1f}", f"{e['p95_ms']:.1f}",
                 "", "", ""])
    return markdown(["stage", "model", "frames/s", "p50 ms", "p95 ms", "params", "GFLOPs",
                     "paper frames/s (A6000 GPU)"], rows)


@table("speed_points", "bench")
def speed_points(bench: Results) -> str:
    """The tracker with many points at once (one flow per frame pair serves them all)."""
    points = bench.get("stages.track.points")
    return markdown(["points", "frames/s", "points/s", "p50 ms", "p95 ms"],
                    [[n, f"{r['fps']:.1f}", f"{r['points_per_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}"]
                     for n, r in points.items()])


# -- documents ------------------------------------------------------------------------------
BLOCK = re.compile(r"(<!-- table:(?P<name>[A-Za-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def documents(root: Path) -> list[Path]:
    """The files whose tables are generated: README.md, docs/*.md and results/README.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "results" / "README.md"]


def rewrite(text: str, root: Path, where: str = "") -> tuple[str, list[str]]:
    """`text` with every table block rendered afresh, and the names of the blocks that changed."""
    changed: list[str] = []

    def fill(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in TABLES:
            raise TableError(f"{where}: unknown table {name!r} (known: {', '.join(sorted(TABLES))})")
        body = TABLES[name].render(root) + "\n"
        if body != m["body"]:
            changed.append(name)
        return m[1] + body + m[4]

    return BLOCK.sub(fill, text), changed


def update(root: Path, write: bool = True) -> list[tuple[str, str]]:
    """Render every table block of the documents; (file, table) for each block that differed,
    written back when `write`."""
    stale: list[tuple[str, str]] = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        new, changed = rewrite(text, root, str(path.relative_to(root)))
        stale += [(str(path.relative_to(root)), name) for name in changed]
        if write and new != text:
            with atomic_open(path, "wb") as f:
                f.write(new.encode("utf-8"))
    return stale


def used(root: Path) -> dict[str, list[str]]:
    """table name -> the documents that show it."""
    out: dict[str, list[str]] = {}
    for path in documents(root):
        for m in BLOCK.finditer(path.read_text(encoding="utf-8")):
            out.setdefault(m["name"], []).append(str(path.relative_to(root)))
    return out
