"""`bleedorigin bench`: speed, latency, size and memory per stage and end to end at 512x384.

Timings are wall-clock per call after a warm-up, on whatever device the models use. Peak
memory is the process's resident-set high-water mark after each stage (it only grows).
"""
from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.errors import InputError
from bleedorigin.models.loading import DEFAULT_MODELS, load_stage, model_id
from bleedorigin.utils.threads import ort_options, set_threads, threads

log = logging.getLogger(__name__)

# Paper Table 10 (A6000 GPU, 512x384): fps, latency s, GFLOPs, params M, memory MB.
PAPER_TABLE10 = {
    "onset": {"fps": 9.73, "latency_s": 0.102, "gflops": 27.45, "params_m": 107.44, "memory_mb": 5890},
    "source": {"fps": 6.51, "latency_s": 0.153, "gflops": 43.17, "params_m": 129.03, "memory_mb": 3260},
    "track": {"fps": 11.82, "latency_s": 0.084, "gflops": 90.13, "params_m": 402.82, "memory_mb": 1874},
}


@dataclass
class Timing:
    ms: np.ndarray

    def summary(self) -> dict[str, float]:
        return {"fps": float(1000.0 / self.ms.mean()), "p50_ms": float(np.percentile(self.ms, 50)),
                "p95_ms": float(np.percentile(self.ms, 95)), "mean_ms": float(self.ms.mean())}


def _time_calls(fn: Callable[[int], Any], n: int, warmup: int = 3) -> Timing:
    for i in range(warmup):
        fn(i)
    ms = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        ms[i] = (time.perf_counter() - t0) * 1e3
    return Timing(ms)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _torch_module(predictor: Any) -> Any:
    import torch
    for attr in ("model", "net", "module"):
        m = getattr(predictor, attr, None)
        if isinstance(m, torch.nn.Module):
            return m
    return None


def _params(predictor: Any) -> int | None:
    m = _torch_module(predictor)
    return None if m is None else int(sum(p.numel() for p in m.parameters()))


def _gflops(call: Callable[[], Any], predictor: Any) -> float | None:
    """FLOPs of one call counted by torch's dispatcher (matmuls/convs), None for non-torch models."""
    if _torch_module(predictor) is None:
        return None
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return counter.get_total_flops() / 1e9


MEMORY_CLIP_FRAMES = 300  # the onset window is 60 frames: shorter loops never hold a full episode


def bench_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A 512x384 bleeding clip: BleedSim when available (onset half way), else textured noise."""
    try:
        from bleedorigin.sim import generate_clip
        clip = generate_clip("full", seed=seed, size=MODEL_SIZE, num_frames=n)
        return list(clip.frames)
    except ImportError:
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 255, (MODEL_SIZE[1], MODEL_SIZE[0], 3), dtype=np.uint8)
        return [np.roll(base, i, axis=1) for i in range(n)]


def bench_stage(stage: str, name: str | None, frames: list[np.ndarray], device: str) -> dict:
    model = load_stage(stage, name, device)
    n = len(frames)
    if stage == "onset":
        model.reset()
        call = lambda i: model.step(frames[i % n])  # noqa: E731
        timing = _time_calls(call, n)
        flops = _gflops(lambda: model.step(frames[0]), model)
    elif stage == "source":
        call = lambda i: model.locate(frames[i % n])  # noqa: E731
        timing = _time_calls(call, max(10, n // 10))
        flops = _gflops(lambda: model.locate(frames[0]), model)
    else:
        h, w = frames[0].shape[:2]
        model.start(frames[0], (w / 2, h / 2), frame_index=0)
        call = lambda i: model.step(frames[1 + i % (n - 1)])  # noqa: E731
        timing = _time_calls(call, n)
        flops = _gflops(lambda: model.step(frames[1]), model)
    params = _params(model)
    return {"name": name or DEFAULT_MODELS[stage], "model": model_id(model), **timing.summary(), "params": params,
            "gflops": None if flops is None else round(flops, 3), "peak_mb": round(_peak_mb(), 1)}


POINT_COUNTS = (1, 16, 64, 256)  # points tracked at once in the tracker's many-point timing


def grid_points(count: int, w: int, h: int) -> list[tuple[float, float]]:
    """`count` points on a regular grid over the central 80 % of a w x h frame (row by row)."""
    side = int(np.ceil(np.sqrt(count)))
    gx, gy = np.meshgrid(np.linspace(0.1, 0.9, side) * w, np.linspace(0.1, 0.9, side) * h)
    return list(zip(gx.ravel()[:count], gy.ravel()[:count]))


def bench_points(name: str | None, frames: list[np.ndarray], device: str) -> dict[str, dict]:
    """Tracker speed with 1, 16, 64 and 256 points on a grid (`start_many` / `step_many`, one
    flow per frame pair for all): frames/s, points/s and ms per frame; {} for trackers that take
    one point at a time."""
    model = load_stage("track", name, device)
    if not hasattr(model, "start_many"):
        return {}
    h, w = frames[0].shape[:2]
    n, out = len(frames), {}
    for count in POINT_COUNTS:
        model.start_many(frames[0], grid_points(count, w, h), frame_index=0)
        # the same frames for every count, so the rows compare
        timing = _time_calls(lambda i: model.step_many(frames[1 + i % (n - 1)]), max(10, n - 1))
        summary = timing.summary()
        out[str(count)] = {"fps": summary["fps"], "points_per_s": round(summary["fps"] * count, 1),
                           "p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"]}
    return out


def bench_end_to_end(models: dict[str, str | None], frames: list[np.ndarray], device: str,
                     config: str | None = None) -> dict:
    from bleedorigin.pipeline import Pipeline
    pipe = Pipeline.from_pretrained(config, device, models.get("onset"), models.get("source"), models.get("track"))
    pipe.reset()
    for f in frames[:3]:  # warm-up, then start again from a clean state
        pipe.step(f)
    pipe.reset()
    ms, phases = np.empty(len(frames)), []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        res = pipe.step(f)
        ms[i] = (time.perf_counter() - t0) * 1e3
        phases.append(res.phase)
    out = Timing(ms).summary()
    for phase in ("waiting", "tracking"):
        sel = np.array([p == phase for p in phases])
        if sel.any():
            out[f"{phase}_fps"] = float(1000.0 / ms[sel].mean())
    out["frames"] = len(frames)
    out["onset_frame"] = pipe.events[0].onset.frame if pipe.events else None
    out["peak_mb"] = round(_peak_mb(), 1)
    return out


def _second_pipeline(models: dict[str, str | None], n_frames: int, device: str, config: str | None,
                     budget: int, ready: Any, stop: Any, results: Any) -> None:
    """The other job of `bench --contention` (own process): the same pipeline with the same
    thread budget, looping the clip until `stop`; puts its frames/s and p95 on `results`."""
    from bleedorigin.pipeline import Pipeline
    set_threads(budget)
    pipe = Pipeline.from_pretrained(config, device, models.get("onset"), models.get("source"), models.get("track"))
    frames = bench_frames(n_frames)
    for f in frames[:3]:
        pipe.step(f)
    ready.set()
    ms: list[float] = []
    while not stop.is_set():
        pipe.reset()
        for f in frames:
            t0 = time.perf_counter()
            pipe.step(f)
            ms.append((time.perf_counter() - t0) * 1e3)
            if stop.is_set():
                break
    results.put(Timing(np.array(ms)).summary())


def bench_contention(models: dict[str, str | None], frames: list[np.ndarray], device: str,
                     config: str | None = None, alone: dict | None = None) -> dict:
    """End to end alone, then beside a second copy of the pipeline (another process with the
    same thread budget) on the same cores: frames/s and p95 of both."""
    import multiprocessing as mp

    alone = alone or bench_end_to_end(models, frames, device, config)
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    other = ctx.Process(target=_second_pipeline, daemon=True,
                        args=(models, len(frames), device, config, threads(), ready, stop, results))
    other.start()
    try:
        while not ready.wait(1.0):
            if not other.is_alive():
                raise InputError(f"bench --contention: the second pipeline failed (exit code {other.exitcode})")
        beside = bench_end_to_end(models, frames, device, config)
        stop.set()
        second = results.get(timeout=900)  # it stops within a frame of `stop`
    finally:
        stop.set()
        other.join(60)
        if other.is_alive():
            other.terminate()
    keys = ("fps", "p50_ms", "p95_ms")
    return {"threads": threads(), "alone": {k: alone[k] for k in keys},
            "beside": {k: beside[k] for k in keys}, "second": {k: second[k] for k in keys}}


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def bench_memory(models: dict[str, str | None], minutes: float, frames: list[np.ndarray], device: str,
                 fps: float = 30.0, config: str | None = None) -> dict:
    """Resident memory while streaming `minutes` of 512x384 video through the pipeline (the clip
    is looped, so bleeding episodes start and end again and again). Flat = no growth per minute."""
    from bleedorigin.pipeline import Pipeline
    from bleedorigin.utils.progress import track
    pipe = Pipeline.from_pretrained(config, device, models.get("onset"), models.get("source"), models.get("track"))
    total = int(minutes * 60 * fps)
    per_minute = int(60 * fps)
    rss = []
    pipe_log = logging.getLogger("bleedorigin.pipeline")
    level = pipe_log.level
    pipe_log.setLevel(logging.WARNING)  # the looped clip starts an episode every pass
    try:
        for i in track(range(total), total=total, description="memory over a long stream", unit="frame"):
            pipe.step(frames[i % len(frames)])
            if i % per_minute == per_minute - 1:
                rss.append(round(_current_rss_mb(), 1))
    finally:
        pipe_log.setLevel(level)
    half = len(rss) // 2
    growth = (float(np.mean(rss[half:]) - np.mean(rss[:half])) / max(1, len(rss) - half)) if half else 0.0
    return {"minutes": minutes, "frames": total, "rss_mb_per_minute": rss, "events": len(pipe.events),
            "growth_mb_per_minute": round(growth, 2)}


def bench_onnx(frames: list[np.ndarray], models: dict[str, str | None]) -> dict:
    """onnxruntime speed of the exported networks (flow and pre-processing excluded)."""
    import tempfile

    import onnxruntime as ort

    from bleedorigin.export import export_onnx
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in ("onset", "track"):
            try:
                report = export_onnx(stage, models.get(stage), tmp, check=False)
            except InputError as e:  # e.g. track_paper: no ONNX graphs; the PyTorch timing stands
                log.warning("onnxruntime timing skipped for %s: %s", stage, e)
                continue
            sessions, feeds = [], []
            for name, r in report.items():
                if name == "onset_window":
                    continue  # runs once per frame too, but on embeddings: timed with the rest below
                sess = ort.InferenceSession(r["path"], sess_options=ort_options(), providers=["CPUExecutionProvider"])
                sessions.append(sess)
                feeds.append({i.name: np.random.default_rng(0).standard_normal(
                    [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32) for i in sess.get_inputs()})
            if stage == "onset" and "onset_window" in report:
                sess = ort.InferenceSession(report["onset_window"]["path"], sess_options=ort_options(), providers=["CPUExecutionProvider"])
                sessions.append(sess)
                feeds.append({i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                              for i in sess.get_inputs()})
            timing = _time_calls(lambda i: [s.run(None, f) for s, f in zip(sessions, feeds)], len(frames) // 2)
            out[stage] = {"graphs": sorted(report), **timing.summary()}
    return out


def run_bench(models: dict[str, str | None], frames: int = 300, device: str = "auto",
              stages: tuple[str, ...] = ("onset", "source", "track"),
              baselines: bool = True, onnx: bool = True, memory_minutes: float = 0.0,
              config: str | None = None, contention: bool = False) -> dict:
    clip = bench_frames(frames)
    result: dict[str, Any] = {"resolution": list(MODEL_SIZE), "frames": frames, "stages": {},
                              "baselines": {}, "paper_table10": PAPER_TABLE10}
    for stage in stages:
        log.info("bench %s", stage)
        result["stages"][stage] = bench_stage(stage, models.get(stage), clip, device)
        if stage == "track":
            points = bench_points(models.get("track"), clip, device)
            if points:
                result["stages"]["track"]["points"] = points
    if baselines:
        from bleedorigin.models.loading import BASELINES
        for stage, names in BASELINES.items():
            for name in names:
                if name != result["stages"].get(stage, {}).get("model"):
                    result["baselines"][name] = bench_stage(stage, name, clip, device)
    result["end_to_end"] = bench_end_to_end(models, clip, device, config)
    result["threads"] = threads()
    if contention:
        result["contention"] = bench_contention(models, clip, device, config, result["end_to_end"])
    if onnx:
        try:
            result["onnxruntime"] = bench_onnx(clip, models)
        except ImportError:
            log.warning("onnxruntime not installed: skipping the ONNX timing (pip install 'bleedorigin[onnx]')")
    if memory_minutes > 0:  # looped clip long enough for whole episodes (onset, tracking, end)
        loop = clip if len(clip) >= MEMORY_CLIP_FRAMES else bench_frames(MEMORY_CLIP_FRAMES)
        result["memory"] = bench_memory(models, memory_minutes, loop, device, config=config)
    return result


def format_bench(result: dict) -> str:
    rows = ["| stage | model | fps | p50 ms | p95 ms | params | GFLOPs | peak MB | paper fps (A6000) |",
            "|---|---|---|---|---|---|---|---|---|"]

    def row(stage: str, r: dict) -> str:
        paper = PAPER_TABLE10.get(stage, {}).get("fps", "")
        params = "-" if r["params"] is None else f"{r['params'] / 1e6:.2f} M"
        gflops = "-" if r["gflops"] is None else f"{r['gflops']:.2f}"
        return (f"| {stage} | {r['model']} | {r['fps']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
                f"| {params} | {gflops} | {r['peak_mb']:.0f} | {paper} |")

    for stage, r in result["stages"].items():
        rows.append(row(stage, r))
    for name, r in result.get("baselines", {}).items():
        rows.append(row(name.split("_")[0], r))
    e = result["end_to_end"]
    rows.append(f"| end to end | pipeline | {e['fps']:.1f} | {e['p50_ms']:.1f} | {e['p95_ms']:.1f} "
                f"| | | {e['peak_mb']:.0f} | |")
    extra = ", ".join(f"{k} {e[k]:.1f}" for k in ("waiting_fps", "tracking_fps") if k in e)
    lines = ["\n".join(rows)]
    if extra:
        lines.append(f"end to end by phase (frames/s): {extra}")
    points = result["stages"].get("track", {}).get("points", {})
    if points:
        lines.append("tracker with many points (frames/s, points/s): " + ", ".join(
            f"{k}: {r['fps']:.1f}, {r['points_per_s']:.0f}" for k, r in points.items()))
    for stage, r in result.get("onnxruntime", {}).items():
        lines.append(f"onnxruntime {stage} ({', '.join(r['graphs'])}): {r['fps']:.1f} frames/s, "
                     f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms (networks only)")
    if "contention" in result:
        c = result["contention"]
        both = "; ".join(f"{label} {c[k]['fps']:.1f} frames/s, p95 {c[k]['p95_ms']:.1f} ms"
                         for k, label in (("alone", "alone"), ("beside", "beside a second pipeline"),
                                          ("second", "that second pipeline")))
        lines.append(f"end to end with {c['threads']} thread(s): {both}")
    if "memory" in result:
        m = result["memory"]
        lines.append(f"memory over {m['minutes']:g} min ({m['frames']} frames, {m['events']} bleeding events): "
                     f"RSS per minute {m['rss_mb_per_minute']} MB, growth {m['growth_mb_per_minute']} MB/min")
    return "\n\n".join(lines)
