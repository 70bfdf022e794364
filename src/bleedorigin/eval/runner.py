"""`bleedorigin evaluate`: run the evaluation protocol over a benchmark folder for every model,
cache per-clip records, aggregate them into metrics.json and write report.md, plots, config.

    evaluate("bench/", "runs/eval", models={"track": ["track_small", "ckpt/track_v2"]})

Baselines (models.loading.BASELINES) are always added as reference rows. `workers > 1`
spreads clips over a spawn pool; each worker process loads each model once.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bleedorigin import __version__
from bleedorigin.errors import ConfigError, InputError
from bleedorigin.eval import calibration as calib
from bleedorigin.eval import metrics, protocol, stir, tap
from bleedorigin.eval.cache import PROTOCOL_VERSION, ResultCache, model_key
from bleedorigin.pipeline_config import PipelineConfig, load_pipeline_config, shipped_config
from bleedorigin.utils.files import atomic_open
from bleedorigin.utils.threads import threads as thread_budget
from bleedorigin.utils.jsonio import write_json_atomic
from bleedorigin.utils.progress import track as progress_track

log = logging.getLogger(__name__)

STAGES = ("onset", "source", "track", "e2e")
DEFAULT_STAGES = ("onset", "source", "track", "e2e")
MODEL_STAGES = ("onset", "source", "track")


@dataclass(frozen=True)
class Task:
    stage: str  # onset | source | track | e2e
    models: tuple[str, ...]  # one name/path, or (onset, source, track) for e2e
    key: str  # cache key of the model (e2e: the three keys joined by "+")
    clip: Any
    model_id: str = ""  # id of the loaded predictor(s) (weights checksum), e2e: joined by "+"


# -- models -----------------------------------------------------------------------------------
def group_models(names: Sequence[str]) -> dict[str, list[str]]:
    """`--models A B ...` -> {stage: [...]}: registry names by their `<stage>_` prefix,
    checkpoint folders by the `stage` field of their config.json."""
    import json

    out: dict[str, list[str]] = {}
    for name in names:
        cfg = Path(name) / "config.json"
        if cfg.is_file():
            try:
                stage = json.loads(cfg.read_text()).get("stage")
            except json.JSONDecodeError as e:
                raise InputError(f"{cfg}: unreadable JSON ({e.msg}, line {e.lineno})") from None
        else:
            stage = next((s for s in MODEL_STAGES if str(name).startswith(s + "_")), None)
        if stage not in MODEL_STAGES:
            raise ConfigError(f"cannot tell the stage of model {name!r}: use a name starting with "
                              f"onset_/source_/track_ or a checkpoint folder whose config.json has 'stage'")
        out.setdefault(stage, []).append(str(name))
    return out


def model_lists(models: dict[str, Sequence[str]] | Sequence[str] | None, stages: Sequence[str],
                baselines: bool = True, defaults: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Models to evaluate per stage: the user's (else `defaults`, else the shipped ones), then
    the baselines (deduplicated, in order)."""
    from bleedorigin.models.loading import BASELINES, DEFAULT_MODELS

    models = dict(models) if isinstance(models, dict) else group_models(models or [])
    unknown = set(models) - set(MODEL_STAGES)
    if unknown:
        raise ConfigError(f"models given for unknown stage(s) {sorted(unknown)}; expected {MODEL_STAGES}")
    out: dict[str, list[str]] = {}
    for stage in MODEL_STAGES:
        if stage not in stages and not ("e2e" in stages):
            continue
        names = [str(m) for m in models.get(stage, [])] or [(defaults or DEFAULT_MODELS)[stage]]
        names += BASELINES[stage] if baselines else []
        out[stage] = list(dict.fromkeys(names))
    return out


def e2e_combos(lists: dict[str, list[str]], baselines: bool = True) -> list[tuple[str, str, str]]:
    """Pipelines run end to end: the first model of each stage (the user's first choice) and,
    as reference, the same pipeline with each source baseline (red mask, centre guess) in place
    of its localizer, and the all-baseline pipeline."""
    from bleedorigin.models.loading import BASELINES

    first = tuple(lists[s][0] for s in MODEL_STAGES)
    combos = [first]
    if baselines:
        combos += [(first[0], source, first[2]) for source in BASELINES["source"]]
        combos.append(tuple(BASELINES[s][0] for s in MODEL_STAGES))
    return list(dict.fromkeys(combos))  # type: ignore[arg-type]


_LOADED: dict[tuple[str, str], Any] = {}  # per process: each model loaded once
_DEVICE = "cpu"
_PIPELINE: PipelineConfig = shipped_config()  # `--config`: the e2e episode settings and each model's options


def _predictor(stage: str, name: str) -> Any:
    if (stage, name) not in _LOADED:
        from bleedorigin.models.loading import load_stage
        own = _PIPELINE.stage(stage)  # the configuration's model runs with its options
        _LOADED[(stage, name)] = load_stage(stage, name, _DEVICE, own.options if name == own.model else {})
    return _LOADED[(stage, name)]


def run_task(task: Task, cache_root: str | None = None) -> dict[str, Any]:
    """Evaluate one (stage, model, clip); stores the record in the cache when given one."""
    clip = task.clip
    try:
        record = _evaluate_task(task)
    except InputError as e:  # a broken clip is reported, not fatal, and not cached
        log.warning("%s on %s failed: %s", task.stage, clip.id, e)
        return {"stage": task.stage, **protocol.clip_meta(clip), "model": task.key, "failed": str(e)}
    used = loaded_id(task.stage, task.models)
    if task.model_id and used != task.model_id:  # e.g. weights replaced while evaluating: not cached
        return {"stage": task.stage, **protocol.clip_meta(clip), "model": task.key, "changed": True,
                "failed": f"{'+'.join(task.models)} changed during the evaluation ({task.model_id} -> {used})"}
    record["model"] = task.key
    if cache_root is not None:
        record = ResultCache(cache_root).put(task.stage, task.key, clip, record, task.model_id)
    return record


def loaded_id(stage: str, models: Sequence[str]) -> str:
    """Id of the predictor(s) a task runs (loaded once per process), weights checksum included."""
    from bleedorigin.models.loading import model_id
    stages = MODEL_STAGES if stage == "e2e" else (stage,)
    return "+".join(model_id(_predictor(s, m)) for s, m in zip(stages, models))


def _evaluate_task(task: Task) -> dict[str, Any]:
    clip = task.clip
    if task.stage == "onset":
        record = protocol.eval_onset(_predictor("onset", task.models[0]), clip)
    elif task.stage == "source":
        record = protocol.eval_source(_predictor("source", task.models[0]), clip)
    elif task.stage == "track":
        record = protocol.eval_track(_predictor("track", task.models[0]), clip)
    else:
        from bleedorigin.eval import e2e
        from bleedorigin.pipeline import Pipeline
        pipeline = Pipeline(*(_predictor(s, m) for s, m in zip(MODEL_STAGES, task.models)), _PIPELINE)
        record = e2e.eval_end_to_end(pipeline, clip)
    return record


def _init_worker(device: str, threads: int, pipeline: PipelineConfig) -> None:
    global _DEVICE, _PIPELINE
    _DEVICE, _PIPELINE = device, pipeline
    try:  # one model per worker: keep workers from fighting over the cores
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass


def _run_indexed(args: tuple[int, Task, str]) -> tuple[int, dict[str, Any]]:
    i, task, root = args
    return i, run_task(task, root)


def _execute(tasks: list[Task], cache_root: Path, workers: int, device: str,
             progress: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    jobs = [(i, t, str(cache_root)) for i, t in enumerate(tasks)]
    if workers <= 1 or len(jobs) <= 1:
        global _DEVICE
        _DEVICE = device
        last: tuple[str, ...] | None = None
        for job in progress_track(jobs, len(jobs), "evaluate", progress, "clip"):
            if last is not None and job[1].models != last and job[1].stage != "e2e":
                _LOADED.clear()  # tasks come grouped by model: free the previous one
            last = job[1].models
            yield _run_indexed(job)
        _LOADED.clear()
        return
    threads = max(1, thread_budget() // workers)
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(device, threads, _PIPELINE)) as pool:
        results = pool.imap_unordered(_run_indexed, jobs, chunksize=1)
        yield from progress_track(results, len(jobs), "evaluate", progress, "clip")


# -- main entry ---------------------------------------------------------------------------------
def build_tasks(clips: Sequence[Any], stages: Sequence[str], lists: dict[str, list[str]],
                combos: Iterable[tuple[str, str, str]], with_ids: bool = False) -> list[Task]:
    """One task per (stage, model, applicable clip); `with_ids` loads each model here once to
    record the id of its weights (the cache then notices replaced weights)."""
    ident = loaded_id if with_ids else (lambda stage, models: "")
    tasks: list[Task] = []
    for stage in MODEL_STAGES:
        if stage not in stages:
            continue
        for name in lists[stage]:
            key, mid = model_key(name), ident(stage, (name,))
            tasks += [Task(stage, (name,), key, c, mid) for c in clips if protocol.applicable(stage, c)]
    if "e2e" in stages:
        full = [c for c in clips if protocol.applicable("e2e", c)]
        for combo in combos:
            key, mid = "+".join(model_key(m) for m in combo), ident("e2e", combo)
            tasks += [Task("e2e", tuple(combo), key, c, mid) for c in full]
    _LOADED.clear()
    return tasks


def evaluate(data_path: str | Path, out_dir: str | Path,
             models: dict[str, Sequence[str]] | Sequence[str] | None = None,
             stages: Sequence[str] = DEFAULT_STAGES, workers: int = 1, progress: bool = True,
             device: str = "auto", baselines: bool = True,
             config: str | Path | None = None, calibration: bool = False) -> dict[str, Any]:
    """Evaluate every model on every applicable clip of `data_path`; returns metrics.json's dict.

    Maps 1:1 to `bleedorigin evaluate DATA --out DIR [--models A B ...] [--stages ...]
    [--workers N] [--device D] [--config FILE]`: `models` is a list of names/checkpoint folders (stage inferred,
    see group_models) or a {stage: [names]} dict. Writes OUT/metrics.json, OUT/report.md, OUT/plots/*.png, OUT/config.yaml and
    OUT/cache/<configuration hash>/ (per-clip records; a rerun only computes what is missing).
    `config` is a pipeline configuration file (default: the shipped one). `calibration` adds
    metrics.json "calibration" and OUT/calibration.md (eval.calibration, `--calibration`).
    """
    global _PIPELINE
    from bleedorigin.io.bench import discover_clips

    stages = tuple(stages)
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise ConfigError(f"unknown stage(s) {bad}; expected some of {', '.join(STAGES)}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    clips = discover_clips(data_path)
    if not clips:
        raise InputError(f"{data_path}: no clips found")
    _PIPELINE = load_pipeline_config(config)
    # stage models default to the configuration's
    defaults = {s: _PIPELINE.stage(s).model for s in MODEL_STAGES}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_root = out / "cache" / _PIPELINE.hash  # results depend on the configuration
    cache = ResultCache(cache_root)
    lists = model_lists(models, stages, baselines, defaults)
    combos = e2e_combos(lists, baselines) if "e2e" in stages else []
    tasks = build_tasks(clips, stages, lists, combos, with_ids=True)

    records: list[dict[str, Any] | None] = [cache.get(t.stage, t.key, t.clip, t.model_id) for t in tasks]
    todo = [i for i, r in enumerate(records) if r is None]
    log.info("%d clips, %d tasks, %d cached, %d to run", len(clips), len(tasks),
             len(tasks) - len(todo), len(todo))
    for j, record in _execute([tasks[i] for i in todo], cache_root, workers, device, progress):
        records[todo[j]] = record
    changed = [r["failed"] for r in records if r is not None and r.get("changed")]
    if changed:
        raise ConfigError(f"{changed[0]}; run the command again (finished clips are cached)")

    config = effective_config(data_path, out, lists, combos, stages, workers, device, baselines)
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failed = [r for r in records if r is not None and "failed" in r]
    for t, r in zip(tasks, records):
        if r is not None and "failed" not in r:
            by_model.setdefault((t.stage, t.key), []).append(r)
    result = summarize(by_model, tasks, clips, config)
    result["errors"] = [{k: r[k] for k in ("stage", "model", "clip", "failed")} for r in failed]
    if calibration:
        result["calibration"] = calib.calibration_block(by_model)
        with atomic_open(out / "calibration.md") as f:
            f.write(calib.to_markdown(result["calibration"]))
    write_outputs(out, result, by_model, config)
    return result


def evaluate_stir_models(data_path: str | Path, out_dir: str | Path, start_file: str | Path,
                         end_file: str | Path | None = None,
                         models: dict[str, Sequence[str]] | Sequence[str] | None = None,
                         device: str = "auto", baselines: bool = True) -> dict[str, Any]:
    """`bleedorigin evaluate DATA --stir-start S.json [--stir-end E.json]`: every track model
    (the user's, else the default, then the baselines) on the STIR-style sequences of DATA;
    writes OUT/stir/<model>/preds.json, OUT/metrics.json {"stir": ...} and OUT/report.md."""
    from bleedorigin.eval.report import write_report
    from bleedorigin.models.loading import load_stage

    # the zero-motion control is scored from the start points themselves (stir.still_predictions):
    # the track_still baseline is run only when asked for by name
    asked = model_lists(models, ("track",), baselines=False)["track"]
    names = [n for n in model_lists(models, ("track",), baselines)["track"] if n != "track_still" or n in asked]
    out = Path(out_dir)
    trackers = {model_key(n): load_stage("track", n, device) for n in names}
    result = stir.evaluate_stir(data_path, start_file, end_file, trackers, out / "stir")
    config = {"bleedorigin": __version__, "data": str(Path(data_path).resolve()), "out": str(out.resolve()),
              "stir_start": str(Path(start_file).resolve()),
              "stir_end": None if end_file is None else str(Path(end_file).resolve()),
              "models": {"track": names}, "baselines": baselines, "device": device,
              "latency_skip": stir.LATENCY_SKIP}
    metrics_out = {"config": config, "stir": result}
    write_json_atomic(out / "metrics.json", metrics_out)
    write_report(metrics_out, out / "report.md")
    return metrics_out


def effective_config(data_path: str | Path, out: Path, lists: dict[str, list[str]],
                     combos: Sequence[tuple[str, str, str]], stages: Sequence[str], workers: int,
                     device: str, baselines: bool) -> dict[str, Any]:
    return {"bleedorigin": __version__, "protocol_version": PROTOCOL_VERSION,
            "data": str(Path(data_path).resolve()), "out": str(out.resolve()),
            "stages": list(stages), "models": {s: list(v) for s, v in lists.items()},
            "e2e_pipelines": [list(c) for c in combos], "baselines": baselines,
            "workers": workers, "device": device,
            "onset_tolerances": list(metrics.ONSET_TOLERANCES),
            "pixel_thresholds": list(metrics.PIXEL_THRESHOLDS),
            "tapvid": {"size": list(tap.TAPVID_SIZE), "thresholds": list(tap.TAPVID_THRESHOLDS)},
            "history_frames": protocol.HISTORY_FRAMES,
            "pipeline": _PIPELINE.to_dict(), "pipeline_hash": _PIPELINE.hash}


def write_outputs(out: Path, result: dict[str, Any], by_model: dict[tuple[str, str], list[dict[str, Any]]],
                  config: dict[str, Any]) -> None:
    from bleedorigin.eval.plots import write_e2e_timelines, write_plots
    from bleedorigin.eval.report import write_report

    write_json_atomic(out / "metrics.json", result)
    with atomic_open(out / "config.yaml") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    plots = write_plots(result, by_model, out / "plots")
    write_e2e_timelines(result, by_model, out)
    write_report(result, out / "report.md", plots=[p.relative_to(out) for p in plots])


# -- aggregation: records -> metrics.json -----------------------------------------------------
GROUPS = ("scenario", "site", "kind")
TIME_BIN = 30  # frames per bin of "frames since start" (labels come every 30 frames)


def onset_block(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Paper onset metrics on clips with an onset, false-alarm rate on negative clips."""
    pos = [r for r in records if r["gt"] is not None]
    neg = [r for r in records if r["gt"] is None]
    block: dict[str, Any] = {"n": len(pos), "negatives": len(neg)}
    if pos:
        s = metrics.onset_summary([r["pred"] for r in pos], [r["gt"] for r in pos])
        block.update(acc={str(k): float(v) for k, v in s["acc"].items()}, err_avg=s["err_avg"],
                     missed=int(s["missed"]))
    block["false_alarm_rate"] = float(metrics.false_alarm_rate([r["pred"] for r in neg])) if neg else None
    return block


def present_block(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """"Real bleeding present" on real sample clips: bleeding clips flagged within
    protocol.PRESENT_WITHIN frames of their start, alarms on bleeding-free clips, one row per clip."""
    bleeding = [r for r in records if r["real_bleeding"]]
    free = [r for r in records if not r["real_bleeding"]]
    rows = [{k: r[k] for k in ("clip", "scenario", "real_bleeding", "gt", "pred", "raised_at", "confidence",
                                   "flagged")}
            for r in records]
    return {"within": protocol.PRESENT_WITHIN, "bleeding": len(bleeding),
            "flagged": sum(bool(r["flagged"]) for r in bleeding),
            "bleeding_free": len(free), "alarms": sum(r["pred"] is not None for r in free), "clips": rows}


def point_block(errors: Sequence[float]) -> dict[str, Any]:
    if not len(errors):
        return {"n": 0}
    s = metrics.point_summary(list(errors))
    return {"n": len(errors), "acc": {str(k): float(v) for k, v in s["acc"].items()},
            "err_avg": s["err_avg"]}


def _grouped(items: Sequence[dict[str, Any]], block: Any, key: str = "errors") -> dict[str, Any]:
    """overall + by_scenario/by_site/by_kind, each computed by `block` on the items' values."""
    def run(sub: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return block([v for it in sub for v in it[key]]) if key else block(sub)
    out = {"overall": run(items)}
    for g in GROUPS:
        groups: dict[str, list[dict[str, Any]]] = {}
        for it in items:
            groups.setdefault(str(it[g]), []).append(it)
        out[f"by_{g}"] = {name: run(sub) for name, sub in sorted(groups.items())}
    return out


def _by_time(pairs: Sequence[tuple[int, float]]) -> list[dict[str, Any]]:
    bins: dict[int, list[float]] = {}
    for since, err in pairs:
        bins.setdefault((since - 1) // TIME_BIN, []).append(err)
    return [{"since": f"{b * TIME_BIN + 1}-{(b + 1) * TIME_BIN}", "since_max": (b + 1) * TIME_BIN,
             **point_block(v)} for b, v in sorted(bins.items())]


def tapvid_pairs(record: dict[str, Any], which: str) -> tuple[list[float], list[bool], list[bool]]:
    """(distance at 256x256, predicted visible, truly visible) of every scored (point, frame)
    pair of a track record: `which` = "labelled" (labelled frames; a null label is a hidden point)
    or "dense" (every frame with dense truth)."""

    dist: list[float] = []
    pred_vis: list[bool] = []
    gt_vis: list[bool] = []
    size = tuple(record["image_size"])
    for p in record["points"]:
        visible_at = _said_visible(record, p)
        if which == "labelled":
            rows = p["labelled"]
            if rows:
                dist += list(metrics.point_errors([r["pred"] for r in rows], [r["gt"] for r in rows], size,
                                                  scale_to=tap.TAPVID_SIZE))
            pred_vis += [visible_at[r["frame"]] for r in rows]
            gt_vis += [True] * len(rows)
            hidden = p.get("hidden", [])
            dist += [float("inf")] * len(hidden)
            pred_vis += [visible_at[f] for f in hidden]
            gt_vis += [False] * len(hidden)
        elif p["dense"]:
            d = p["dense"]
            dist += d["errors_tapvid"]
            pred_vis += [visible_at[f] for f in d["frames"]]
            gt_vis += d["visible"] if d.get("visible") is not None else [True] * len(d["frames"])
    return dist, pred_vis, gt_vis


def tapvid_block(records: Sequence[dict[str, Any]], which: str) -> dict[str, Any] | None:
    """TAP-Vid AJ, delta_avg and OA (eval.tap) per clip and their mean over clips (as TAP-Vid
    averages over videos); None when no clip has pairs of this kind."""
    per_clip = {}
    for r in records:
        dist, pred_vis, gt_vis = tapvid_pairs(r, which)
        if dist:
            per_clip[r["clip"]] = tap.jaccard_metrics(dist, pred_vis, gt_vis, tap.TAPVID_THRESHOLDS)
    if not per_clip:
        return None
    return {"overall": tap.average_over_clips(list(per_clip.values())), "per_clip": per_clip}


def redetection_block(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """TAPNext++'s AJ_RD (eval.tap) over the dense truth of every point that says where it is
    hidden (BleedSim's `source_visible`), events pooled over clips; None when no point says."""
    tracks = []
    for r in records:
        for p in r["points"]:
            d = p["dense"]
            if d and d.get("visible") is not None:
                visible_at = _said_visible(r, p)
                tracks.append((d["errors_tapvid"], [visible_at[f] for f in d["frames"]], d["visible"]))
    return tap.redetection_metrics(tracks) if tracks else None


def _said_visible(record: dict[str, Any], point: dict[str, Any]) -> dict[int, bool]:
    """Frame -> whether the tracker said the point was visible there."""
    return {record["start"] + i: bool(row[3]) for i, row in enumerate(point["pred"])}


def track_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    meta = [{g: r[g] for g in GROUPS} for r in records]
    labelled = [dict(m, errors=[row["error"] for p in r["points"] for row in p["labelled"]])
                for m, r in zip(meta, records)]
    dense = [dict(m, errors=[e for p in r["points"] if p["dense"] for e in p["dense"]["errors"]])
             for m, r in zip(meta, records)]
    has_dense = any(d["errors"] for d in dense)
    lab_time = [(row["since"], row["error"]) for r in records for p in r["points"] for row in p["labelled"]]
    dense_time = [(f - r["start"], e) for r in records for p in r["points"] if p["dense"]
                  for f, e in zip(p["dense"]["frames"], p["dense"]["errors"])]
    return {"clips": len(records),
            "points": sum(len(r["points"]) for r in records),
            "labelled": _grouped(labelled, point_block),
            "dense": _grouped([d for d in dense if d["errors"]], point_block) if has_dense else None,
            "by_time": {"labelled": _by_time(lab_time), "dense": _by_time(dense_time) if has_dense else []},
            "tapvid": {"labelled": tapvid_block(records, "labelled"),
                       "dense": tapvid_block(records, "dense") if has_dense else None,
                       "redetection": redetection_block(records) if has_dense else None}}


def e2e_summary(records: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """Overall onset/track/coverage, and per clip with the path of its timeline plot (relative
    to the evaluation folder; cached records made without a timeline have none)."""
    from bleedorigin.eval import e2e
    from bleedorigin.eval.plots import timeline_file

    per_clip = [{"clip": r["clip"], "gt": r["gt"], "pred": r["pred"],
                 "err_avg": point_block(r["errors"]).get("err_avg"), "coverage": r["coverage"],
                 **e2e.per_clip_row(r),
                 "timeline": timeline_file(name, r["clip"]).as_posix() if r.get("timeline") else None}
                for r in records]
    return {"clips": len(records), "onset": onset_block(records),
            "track": point_block([e for r in records for e in r["errors"]]),
            "coverage": float(sum(r["coverage"] for r in records) / len(records)) if records else 0.0,
            "episode": e2e.episode_summary(records),
            "per_clip": per_clip}


def summarize(by_model: dict[tuple[str, str], list[dict[str, Any]]], tasks: Sequence[Task],
              clips: Sequence[Any], config: dict[str, Any]) -> dict[str, Any]:
    """metrics.json: per stage and model, overall and per scenario/site/kind."""
    from bleedorigin.models.loading import BASELINES

    baseline_names = {m for names in BASELINES.values() for m in names}
    names = {(t.stage, t.key): t.models for t in tasks}
    result: dict[str, Any] = {
        "protocol_version": PROTOCOL_VERSION, "config": config,
        "data": {"clips": len(clips),
                 **{f"by_{g}": _count(str(getattr(c, g) or "unknown") for c in clips) for g in GROUPS}},
        "models": {}}
    for (stage, key), records in by_model.items():
        models = names[(stage, key)]
        name = "+".join(Path(m).name for m in models)
        result["models"].setdefault(stage, []).append(
            {"key": key, "name": name, "source": list(models),
             "baseline": all(m in baseline_names for m in models)})
        if stage == "onset":
            real = [r for r in records if "real_bleeding" in r]
            sim = [r for r in records if "real_bleeding" not in r]
            summary = _grouped(sim, onset_block, key="")
            summary["clips"] = len(sim)
            summary["real_present"] = present_block(real) if real else None
        elif stage == "source":
            summary = _grouped([dict(r, errors=[r["error"]]) for r in records], point_block)
            summary["clips"] = len(records)
        elif stage == "track":
            summary = track_summary(records)
        else:
            summary = e2e_summary(records, name)
        result.setdefault(stage, {})[key] = summary
    return result


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
