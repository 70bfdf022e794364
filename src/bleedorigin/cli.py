"""Command line: `bleedorigin <command>` (also `python -m bleedorigin`); README.md lists the commands."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import click
import typer

from bleedorigin.errors import BleedOriginError, InputError, Interrupted, kept

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Bleeding onset detection, source localisation and tracking in ESD video.\n\n"
                  "Examples:\n\n  bleedorigin demo --out runs/demo\n\n"
                  "  bleedorigin run video.mp4 --out runs/case1\n\n"
                  "  bleedorigin track video.mp4 --point 250 180 --start 0 --out track.json")
data_app = typer.Typer(no_args_is_help=True, help="Benchmark folders: validate, compare with real clips.")
app.add_typer(data_app, name="data")
export_app = typer.Typer(no_args_is_help=True, help="Export trained models.")
app.add_typer(export_app, name="export")

_state: dict = {"debug": False}

VIDEO = typer.Argument(..., help="Video file, image folder, image, camera index or rtsp/http URL.")
DEVICE = typer.Option("auto", "--device", help="auto | cpu | cuda")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an earlier run in --out (it is moved to "
                         "OUT/previous/ first and deleted once this run has finished).")
THREADS = typer.Option(None, "--threads", min=1, help="Threads for torch, OpenCV, onnxruntime and video "
                       "decoding together (default: $BLEEDORIGIN_THREADS, else the cores this process may use).")
CONFIG = typer.Option(None, "--config", help="Pipeline configuration YAML (default: the shipped configs/pipeline.yaml).")


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
             verbose: bool = typer.Option(False, "--verbose", "-v"),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or logs."),
             max_pixels: Optional[int] = typer.Option(
                 None, "--max-pixels", help="Refuse inputs with more pixels per frame (default "
                 "$BLEEDORIGIN_MAX_PIXELS or 7680x4320, 8K).")
             ) -> None:
    from bleedorigin.io.video import quiet_libraries, set_max_pixels
    _state["debug"] = debug
    _state["quiet"] = quiet
    set_max_pixels(max_pixels)
    quiet_libraries(verbose or debug)
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    from rich.logging import RichHandler
    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(show_path=False, console=_stderr_console())])


def _stderr_console():  # noqa: ANN202
    from rich.console import Console
    return Console(stderr=True)


def _progress() -> bool:
    return not _state.get("quiet", False)


def _budget(threads: Optional[int]) -> None:
    """One thread budget for every library (utils.threads)."""
    from bleedorigin.utils.threads import set_threads
    set_threads(threads)


def _source(video: str) -> str | int:
    return int(video) if video.isdigit() else video


def _shipped_recipe(name: Path) -> Path:
    """A training recipe shipped in the package's configs/ folder, by name (`.yaml` optional)."""
    configs = Path(__file__).resolve().parent / "configs"
    for candidate in (configs / name, configs / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.relative_to(configs).with_suffix("").as_posix() for p in configs.rglob("*.yaml")
                   if p.name != "pipeline.yaml")
    raise InputError(f"--config {name}: no such file, nor a shipped recipe ({', '.join(known)})")


def _check_config(config: Path | None) -> None:
    """Load the pipeline configuration once up front, so a bad file fails before any work."""
    if config is not None:
        from bleedorigin.pipeline_config import load_pipeline_config
        load_pipeline_config(config)


def _writable(path: Path, folder: bool) -> None:
    """Fail on an output path that cannot be written before any work starts. An output folder
    that does not exist yet is removed again if the command fails before writing into it."""
    from bleedorigin.utils.files import check_writable, missing_folders
    check_writable(path, folder)
    if folder:
        _state.setdefault("new_folders", []).extend(missing_folders(path))


def _appearance(text: str, texture_from: Optional[Path] = None):  # noqa: ANN202
    """BleedSim v2 appearance features named by --appearance (and real tissue texture from the
    clips under --texture-from), or None when none is on."""
    from bleedorigin.sim.appearance import Appearance
    try:
        look = Appearance.parse(text).with_texture(_texture(texture_from))
    except ValueError as e:
        raise InputError(f"--appearance: {e}") from None
    return look if look.enabled else None


def _texture(folder: Optional[Path]) -> Optional[str]:
    """--texture-from as the string BleedSim takes, or None; a bad folder fails here, before any work."""
    if folder is None:
        return None
    from bleedorigin.sim.appearance_layers import texture_frames
    texture_frames(str(folder))
    return str(folder)


TEXTURE_FROM = typer.Option(None, "--texture-from", help="Folder of real clips whose bleeding-free frames "
                            "give BleedSim real tissue texture (those clips are then no evidence of "
                            "generalisation; docs/realism.md).")



@app.command()
def detect(video: str = VIDEO, out: Path = typer.Option(..., help="Output JSON file."),
           model: Optional[str] = typer.Option(None, help="Onset model name or checkpoint folder."),
           threads: Optional[int] = THREADS, device: str = DEVICE) -> None:
    """Onset only: first bleeding frame and per-frame scores ("complete": false when the stream
    ended before the frame count its header announces; exit code 0 then, with a warning)."""
    from bleedorigin.commands import detect_onset
    _writable(out, folder=False)
    _budget(threads)
    detect_onset(_source(video), out, model, device, _progress())


@app.command()
def locate(video: str = typer.Argument(..., help="Video file or image."),
           frame: int = typer.Option(0, help="Frame index (0-based)."),
           out: Path = typer.Option(..., help="Output JSON file."),
           model: Optional[str] = typer.Option(None, help="Source model name or checkpoint folder."),
           history: Optional[int] = typer.Option(
               None, help="Frames before F the localizer may use (default: what the pipeline holds, 90)."),
           threads: Optional[int] = THREADS, device: str = DEVICE) -> None:
    """Bleeding source on one frame."""
    from bleedorigin.commands import locate_source
    _writable(out, folder=False)
    _budget(threads)
    locate_source(video, frame, out, model, device, history)


@app.command()
def track(video: str = VIDEO,
          point: Optional[tuple[float, float]] = typer.Option(None, help="Start point X Y (input pixels)."),
          start: int = typer.Option(0, help="Start frame (0-based)."),
          points: Optional[Path] = typer.Option(None, help="Many points instead: a CSV (frame,x,y rows) or "
                                                "JSON ([[frame, x, y], ...]) file; each is tracked from its frame."),
          out: Path = typer.Option(..., help="Output JSON file."),
          model: Optional[str] = typer.Option(None, help="Tracker name or checkpoint folder."),
          threads: Optional[int] = THREADS, device: str = DEVICE) -> None:
    """Track a point (or the points of a file) from a start frame to the end of the video."""
    from bleedorigin.commands import track_point, track_points
    from bleedorigin.io.points import read_points
    if (point is None) == (points is None):
        raise InputError("give either --point X Y (with --start) or --points FILE")
    queries = read_points(points) if points is not None else None
    _writable(out, folder=False)
    _budget(threads)
    if queries is not None:
        track_points(_source(video), queries, out, model, device, _progress())
        return
    assert point is not None
    track_point(_source(video), point, start, out, model, device, _progress())


@app.command()
def run(video: Optional[str] = typer.Argument(None, help="Video file, folder, image or URL."),
        camera: Optional[int] = typer.Option(None, help="Camera index instead of VIDEO."),
        out: Path = typer.Option(..., help="Output folder (result.json, results.jsonl, overlay.mp4)."),
        onset_model: Optional[str] = typer.Option(None, help="Onset model name or folder."),
        source_model: Optional[str] = typer.Option(None, help="Source model name or folder."),
        track_model: Optional[str] = typer.Option(None, help="Tracker name or folder."),
        no_overlay: bool = typer.Option(False, help="Skip overlay.mp4."),
        show: bool = typer.Option(False, help="Also show the overlay live in a window (needs a display)."),
        overwrite: bool = OVERWRITE, threads: Optional[int] = THREADS,
        config: Optional[Path] = CONFIG, device: str = DEVICE) -> None:
    """Deployment mode end to end: onset -> source -> tracking. result.json says "complete":
    false when the stream ended before the frame count its header announces (exit code 0, with
    a warning) or was interrupted (exit code 128 + signal)."""
    from bleedorigin.commands import run_pipeline
    if (video is None) == (camera is None):
        raise InputError("give either VIDEO or --camera N")
    _check_config(config)
    _writable(out, folder=True)
    _budget(threads)
    run_pipeline(camera if video is None else _source(video), out, onset_model, source_model,
                 track_model, device, not no_overlay, _progress(), show, config, overwrite)


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="Output folder."),
         overwrite: bool = OVERWRITE) -> None:
    """Run the pipeline on the shipped sample clip with the default models."""
    from bleedorigin.commands import run_demo
    _writable(out, folder=True)
    run_demo(out, _progress(), overwrite)


@app.command()
def bench(json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON here."),
          frames: int = typer.Option(300, help="Frames per stage timing."),
          onset_model: Optional[str] = typer.Option(None, help="Onset model name or folder."),
          source_model: Optional[str] = typer.Option(None, help="Source model name or folder."),
          track_model: Optional[str] = typer.Option(None, help="Tracker name or folder."),
          baselines: bool = typer.Option(True, help="Also time the baselines."),
          onnx: bool = typer.Option(True, help="Also time the ONNX graphs in onnxruntime."),
          memory_minutes: float = typer.Option(0.0, help="Also stream this many minutes of video and "
                                               "report resident memory per minute (30 for the paper's check)."),
          contention: bool = typer.Option(False, help="Also time end to end beside a second copy of the "
                                          "pipeline (another process, same --threads) on the same cores."),
          threads: Optional[int] = THREADS,
          batch: bool = typer.Option(False, "--batch", help="Instead: archive throughput of `batch` "
                                     "(videos/hour, real-time factor) with each of --batch-workers."),
          batch_videos: int = typer.Option(6, help="--batch: copies of the sample clip in the archive."),
          batch_workers: list[int] = typer.Option([1, 2], help="--batch: worker counts (repeat the option)."),
          batch_clip: Optional[Path] = typer.Option(None, help="--batch: the clip copied into the archive "
                                                    "(default: the shipped sample, 10 s, 2/3 of it bleeding)."),
          config: Optional[Path] = CONFIG, device: str = DEVICE) -> None:
    """Speed, latency, parameters, GFLOPs and peak memory per stage and end to end (512x384)."""
    from bleedorigin.bench import format_bench, run_bench
    from bleedorigin.utils.jsonio import write_json_atomic
    if frames < 10:
        raise InputError(f"--frames must be >= 10, got {frames}")
    _check_config(config)
    if json_out is not None:
        _writable(json_out, folder=False)
    _budget(threads)
    if batch:
        from bleedorigin.batch.bench import bench_batch, format_batch_bench
        from bleedorigin.commands import SAMPLE_CLIP
        result = bench_batch(batch_videos, tuple(batch_workers), batch_clip or SAMPLE_CLIP,
                             "cpu" if device == "auto" else device)
        typer.echo(format_batch_bench(result))
        if json_out is not None:
            write_json_atomic(json_out, result)
        return
    result = run_bench({"onset": onset_model, "source": source_model, "track": track_model},
                       frames, device, baselines=baselines, onnx=onnx, memory_minutes=memory_minutes,
                       config=None if config is None else str(config), contention=contention)
    typer.echo(format_bench(result))
    if json_out is not None:
        write_json_atomic(json_out, result)


@app.command()
def batch(inputs: list[str] = typer.Argument(..., help="Video files, folders (searched recursively for videos "
                                             "and image-folder clips) or text files listing paths."),
          out: Path = typer.Option(..., help="Batch folder: one result folder per video, events.csv, "
                                   "events.parquet, failures.csv, report.html."),
          workers: int = typer.Option(1, help="Local worker processes (the cores are shared out among them)."),
          engine: str = typer.Option("local", help="local | ray"),
          address: Optional[str] = typer.Option(None, help="Ray cluster address (default: a running local "
                                                "instance, or a new one)."),
          cpus_per_task: float = typer.Option(1.0, help="Ray: CPUs per video."),
          gpus_per_task: float = typer.Option(0.0, help="Ray: GPUs per video."),
          overlay: bool = typer.Option(False, help="Also write overlay.mp4 per video."),
          retries: int = typer.Option(2, help="Extra attempts for a video whose worker died or hit an "
                                      "unexpected error (bad input is not retried)."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no line per video."),
          threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Local: compute threads per "
                                                "worker (default: the cores shared out among the workers)."),
          config: Optional[Path] = CONFIG, device: str = DEVICE) -> None:
    """Screen an archive: `run` on every video, resumable; a failing video never stops it."""
    from bleedorigin.batch import make_engine, run_batch
    if quiet:  # as `bleedorigin -q batch ...`
        _state["quiet"] = True
        logging.getLogger().setLevel(logging.WARNING)
    _writable(out, folder=True)
    _check_config(config)
    summary = run_batch(inputs, out, make_engine(engine, workers, address, cpus_per_task, gpus_per_task, threads),
                        overlay, retries, _progress(), device, config)
    if _progress():
        typer.echo(f"{len(summary.done)} done, {summary.skipped} finished earlier, {len(summary.failed)} failed; "
                   f"events: {out / 'events.csv'}  report: {out / 'report.html'}")


@app.command()
def evaluate(data: Path = typer.Argument(..., help="Benchmark folder, BleedSim output or sample clip folders."),
             out: Path = typer.Option(..., help="Output folder (metrics.json, report.md, plots/)."),
             models: list[str] = typer.Option([], "--models", help="Model names or checkpoint folders to "
                                              "compare (repeat the option); default: shipped models."),
             stages: list[str] = typer.Option([], "--stages", help="onset | source | track | e2e "
                                              "(repeat; default: all that apply)."),
             workers: int = typer.Option(1, help="Worker processes."),
             baselines: bool = typer.Option(True, help="Include the baseline reference rows."),
             threads: Optional[int] = THREADS,
             stir_start: Optional[Path] = typer.Option(None, "--stir-start", help="STIR-style start points "
                                                       "{seq: [[x, y], ...]}: track DATA's sequences from them and "
                                                       "write a STIR 2026 preds.json per tracker."),
             stir_end: Optional[Path] = typer.Option(None, "--stir-end", help="With --stir-start: end points "
                                                     "to score against (AJ, ATA, OA over 2-32 px)."),
             calibration: bool = typer.Option(False, "--calibration", help="Also tabulate each source and "
                                              "track model's confidence against its error (calibration.md)."),
             onset_thresholds: bool = typer.Option(False, "--onset-thresholds", help="Also replay the onset "
                                                   "model at several thresholds and refinement radii on DATA's "
                                                   "clips (validation clips, never the test set)."),
             leave_one_out: Optional[str] = typer.Option(None, "--leave-one-out", help="source | track: train on "
                                                         "all clip folders of DATA but one, score on that one, "
                                                         "for each (loo.json)."),
             steps: int = typer.Option(300, help="With --leave-one-out: training steps per fold."),
             base: Optional[str] = typer.Option(None, help="With --leave-one-out: model to start from "
                                                "(default source_small / track_small_blood)."),
             settings: list[str] = typer.Option([], "--set", help="With --leave-one-out: source: a training "
                                                "override key=value; track: lr=, rank=, kind=, window=, seed="),
             config: Optional[Path] = CONFIG, device: str = DEVICE) -> None:
    """Evaluation mode of Algorithm 1 on every applicable clip, with the paper's metrics and
    TAP-Vid's (AJ, delta_avg, OA); or, with --stir-start, the STIR protocol and submission file
    (--threads is shared out among the --workers)."""
    from bleedorigin.eval.runner import DEFAULT_STAGES, evaluate as run_evaluation, evaluate_stir_models
    if not data.exists():
        raise InputError(f"{data}: not found")
    if stir_end is not None and stir_start is None:
        raise InputError("--stir-end needs --stir-start")
    _check_config(config)
    _writable(out, folder=True)
    _budget(threads)
    if leave_one_out is not None:
        from bleedorigin.eval import leave_one_out as loo
        summary = loo.leave_one_out(leave_one_out, data, out, steps, base, settings, device)
        typer.echo(loo.to_markdown(summary) + f"\n{out / 'loo.json'}")
        return
    if stir_start is not None:
        result = evaluate_stir_models(data, out, stir_start, stir_end, models or None, device, baselines)
        preds = [b["preds"] for b in result["stir"]["models"].values()]
        typer.echo(f"report: {out / 'report.md'}  preds.json: {', '.join(preds)}")
        return
    result = run_evaluation(data, out, models or None, tuple(stages) or DEFAULT_STAGES, workers, _progress(),
                            device, baselines, config, calibration)
    if calibration:
        from bleedorigin.eval.calibration import to_markdown
        typer.echo(to_markdown(result["calibration"]))
    if onset_thresholds:
        from bleedorigin.eval import onset_threshold
        typer.echo(onset_threshold.to_markdown(onset_threshold.check(data, out, models, device, _progress())))
    failed = result.get("errors") or []
    typer.echo(f"report: {out / 'report.md'}  metrics: {out / 'metrics.json'}"
               + (f"  ({len(failed)} clip(s) failed, listed in metrics.json)" if failed else ""))


@export_app.command("onnx")
def export_onnx_cmd(stage: str = typer.Argument(..., help="onset | track"),
                    out: Path = typer.Option(..., help="Output folder for the .onnx files."),
                    model: Optional[str] = typer.Option(None, help="Model name or checkpoint folder "
                                                        "(default: the shipped small model)."),
                    check: bool = typer.Option(True, help="Compare with PyTorch in onnxruntime.")) -> None:
    """ONNX graphs of the onset detector or the tracker step (state passed in and out)."""
    from bleedorigin.export import export_onnx
    _writable(out, folder=True)
    report = export_onnx(stage, model, out, "cpu", check)
    for name, r in report.items():
        diff = "not checked" if r["max_abs_diff"] is None else f"max abs diff {r['max_abs_diff']:.2e}"
        typer.echo(f"{r['path']}  ({diff})")


@app.command()
def sim(out: Path = typer.Option(..., help="Output benchmark folder."),
        n: int = typer.Option(10, help="Number of clips."),
        seed: int = typer.Option(0, help="Random seed (output is deterministic per seed)."),
        kind: str = typer.Option("detect", help="detect | track | track_short | track_long | full | negative"),
        width: int = typer.Option(512), height: int = typer.Option(384),
        appearance: str = typer.Option("none", help="BleedSim v2 appearance features: none | all | every | a "
                                       "comma list of them (docs/realism.md)."),
        texture_from: Optional[Path] = TEXTURE_FROM,
        local_motion: bool = typer.Option(False, "--local-motion/--no-local-motion",
                                          help="Tissue also deforms locally and follows instruments that "
                                          "grasp it (docs/bleedsim.md); off: it moves with the camera only."),
        scenario: Optional[str] = typer.Option(None, help="Render every clip in this scenario, e.g. a hard "
                                               "case: point_bleed | white_mound | crimson_bed (default: drawn "
                                               "at random).")) -> None:
    """BleedSim: synthetic ESD bleeding clips with dense ground truth, in the benchmark layout."""
    from bleedorigin.sim import write_bench
    if n < 1:
        raise InputError(f"--n must be >= 1, got {n}")
    look = _appearance(appearance, texture_from)
    _writable(out, folder=True)
    clips = write_bench(out, n, seed, kind, size=(width, height), progress=_progress(), appearance=look,
                        local_motion=local_motion, scenario=scenario)
    typer.echo(f"wrote {len(clips)} {kind} clips to {out}")


@app.command()
def train(stage: str = typer.Argument(..., help="onset | source | track"),
          config: Optional[Path] = typer.Option(None, help="Recipe YAML, or the name of a shipped recipe "
                                                "(e.g. source_v2, paper/source_paper; default: the small preset)."),
          out: Path = typer.Option(..., help="Output folder (checkpoints, logs, model card)."),
          set_: list[str] = typer.Option([], "--set", help="Override a recipe key: key=value."),
          resume: bool = typer.Option(False, help="Continue from OUT's last checkpoint."),
          seed: Optional[int] = typer.Option(None, help="Random seed."),
          device: str = DEVICE) -> None:
    """Train a stage (one trainer for all; multi-process under torchrun)."""
    from bleedorigin.training.trainer import train_main
    if config is not None and not config.is_file():
        config = _shipped_recipe(config)
    _writable(out, folder=True)
    result = train_main(stage, config, out, set_, resume, seed, device)
    typer.echo(f"checkpoints in {out}: best score {result.get('best_score')}")


@app.command()
def finetune(stage: str = typer.Argument(..., help="track (LoRA fine-tuning on sparse labels)"),
             data: Path = typer.Argument(..., help="Benchmark folder or sample clip folders with sparse labels."),
             out: Path = typer.Option(..., help="Output checkpoint folder (use it with --model)."),
             model: str = typer.Option("track_small_blood", help="Tracker to start from: a checkpoint folder or "
                                       "a configuration of the shipped weights (track_small, track_small_blood, ...)."),
             steps: int = typer.Option(100, help="Optimisation steps."),
             kind: str = typer.Option("lora", help="lora | adalora"),
             rank: int = typer.Option(8, help="Adapter rank."),
             lr: float = typer.Option(5e-4, help="Learning rate."),
             seed: int = typer.Option(0, help="Random seed.")) -> None:
    """Fine-tune a trained model on your own annotated clips (tracker: LoRA/AdaLoRA, paper 4.2)."""
    if stage != "track":
        raise InputError(f"fine-tuning on sparse labels covers the tracker ('track'), not {stage!r}; "
                         "retrain other stages with `bleedorigin train`")
    from bleedorigin.models.track.learned.finetune import finetune_tracker
    _writable(out, folder=True)
    path = finetune_tracker(data, out, model, steps, kind, rank, lr, seed=seed, progress=_progress())
    typer.echo(f"fine-tuned tracker: {path}")


@app.command()
def review(run_dir: Path = typer.Argument(..., help="Output folder of `bleedorigin run`."),
           port: int = typer.Option(8765, help="Port on 127.0.0.1 (0: any free port)."),
           open_: bool = typer.Option(False, "--open", help="Open the page in the default browser.")) -> None:
    """Check and correct a run in the browser; corrections go to RUN_DIR/labels.json."""
    from bleedorigin.review.server import ReviewRun, ReviewServer
    server = ReviewServer(ReviewRun(run_dir), port)
    typer.echo(f"reviewing {server.run.dir} at {server.url}  (Ctrl-C to stop)")
    if open_:
        import webbrowser
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@data_app.command("check")
def data_check(root: Path = typer.Argument(..., help="Benchmark folder.")) -> None:
    """List every problem in a benchmark folder; exit 1 if there are any, 2 when the folder
    cannot be checked at all."""
    from bleedorigin.io.check import check_bench, summarize
    if not root.is_dir():
        raise InputError(f"not a folder: {root}")
    try:
        problems = check_bench(root)
    except BleedOriginError:
        raise
    except Exception as e:  # noqa: BLE001 - exit 1 means "problems found": a crash on the input is bad input
        raise InputError(f"{root}: cannot check ({type(e).__name__}: {e})") from None
    typer.echo(summarize(problems))
    raise typer.Exit(1 if problems else 0)


@data_app.command("import-review")
def data_import_review(run_dirs: list[Path] = typer.Argument(..., help="Run folders reviewed with `bleedorigin review`."),
                       out: Path = typer.Option(..., help="Benchmark folder to write (created or added to).")) -> None:
    """Corrected runs -> benchmark clips (detect, track, negative) for `train` and `finetune`."""
    from collections import Counter
    from bleedorigin.review.importer import import_review
    clips = import_review(run_dirs, out)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(Counter(c.kind for c in clips).items())) or "none"
    typer.echo(f"wrote {len(clips)} clip(s) to {out} ({kinds}); check with: bleedorigin data check {out}")


@data_app.command("stage-extra")
def data_stage_extra(repos: Path = typer.Option(..., help="Folder of <owner>+<name> git copies of the source "
                                                "repositories (docs/data-extra.md)."),
                     out: Path = typer.Option(..., help="Output folder (OUT/<category>/<name>/video.mp4 + meta.json)."),
                     only: list[str] = typer.Option([], "--only", help="Clip name to stage (repeat; default: all).")
                     ) -> None:
    """Stage the extra public real clips (bleeding status only) as clip folders for onset checks."""
    from bleedorigin.io.extra_real import stage_all
    if not repos.is_dir():
        raise InputError(f"{repos}: not a folder")
    _writable(out, folder=True)
    for folder in stage_all(repos, out, only):
        typer.echo(str(folder))


@data_app.command("realism")
def data_realism(sim_dir: Path = typer.Argument(..., help="BleedSim output folder."),
                 real_dir: Path = typer.Argument(..., help="Folder of real clips (e.g. ../shared/data/esd_clips)."),
                 json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON here."),
                 classifier: bool = typer.Option(True, help="Also run the classifier two-sample test.")) -> None:
    """Compare synthetic and real clips: statistics (HSV, red area, sharpness, motion) and the
    leave-one-real-clip-out ROC AUC of a small CNN telling them apart."""
    from bleedorigin.sim.realism import format_realism, realism_report
    from bleedorigin.utils.jsonio import write_json_atomic
    if json_out:
        _writable(json_out, folder=False)
    report = realism_report(sim_dir, real_dir, classifier=classifier)
    typer.echo(format_realism(report))
    if json_out:
        write_json_atomic(json_out, report)


@app.command()
def weights(check: Optional[Path] = typer.Option(None, "--check", help="Judge a local checkpoint file: size, "
                                                 "sha256 and key layout against the released one."),
            download: bool = typer.Option(False, "--download", help="Fetch the hub-hosted files through "
                                          "huggingface_hub (honours HF_ENDPOINT) into the paper weights folder."),
            preset: Optional[str] = typer.Option(None, help="Only this preset: track_paper | source_paper.")) -> None:
    """Released checkpoints the paper presets load: where to get them; check or download them.

    Exit code 1 when --check finds a mismatch."""
    from bleedorigin.models import paper_weights as pw
    presets = sorted({e.preset for e in pw.CATALOG})
    if preset is not None and preset not in presets:
        raise InputError(f"unknown preset {preset!r}; expected one of {', '.join(presets)}")
    if check is not None:
        r = pw.check_file(check)
        typer.echo(f"{r.path}: {r.size / 1e6:.1f} MB (layout tensors ~{pw.expected_bytes(r.layout) / 1e6:.0f} MB "
                   f"in fp32), sha256 {r.sha256}")
        typer.echo(r.verdict())
        if not r.ok:
            raise typer.Exit(1)
        return
    if download:
        for e in pw.CATALOG:
            if (preset and e.preset != preset) or not e.repo_id:
                continue
            path = pw.download(e)
            typer.echo(f"{e.preset}: {path}  {pw.check_file(path, e.layout).verdict()}")
        return
    for line in pw.describe(preset):
        typer.echo(line)


@data_app.command("realism-features")
def data_realism_features(real_dir: Path = typer.Argument(..., help="Folder of real clips (e.g. ../shared/data/esd_clips)."),
                          n: int = typer.Option(12, help="BleedSim clips generated (the same for every variant)."),
                          seed: int = typer.Option(0, help="BleedSim seed."),
                          repeats: int = typer.Option(3, help="Classifier runs per variant (fresh crops and network)."),
                          ablation: bool = typer.Option(True, help="Also every feature on, and every feature but one."),
                          texture_from: Optional[Path] = TEXTURE_FROM,
                          json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON here.")) -> None:
    """Classifier realism AUC of BleedSim v1, v2 (Appearance.all()) and, with --ablation, every
    appearance feature on and every feature but one; paired differences with 95 % bootstrap
    intervals over the real clips."""
    import statistics

    from bleedorigin.sim.c2st import C2STConfig, appearance_ablation
    from bleedorigin.sim.realism import collect_clips
    from bleedorigin.utils.jsonio import write_json_atomic
    if n < 2:
        raise InputError(f"--n must be >= 2, got {n}")
    if repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {repeats}")
    if json_out:
        _writable(json_out, folder=False)
    real = collect_clips(real_dir)
    if len(real) < 2:
        raise InputError(f"{real_dir}: the classifier test needs at least 2 real clips")
    report = appearance_ablation(real, n_clips=n, seed=seed, cfg=C2STConfig(repeats=repeats), ablation=ablation,
                                 texture_from=_texture(texture_from))
    typer.echo(f"Classifier realism AUC (0.5 = indistinguishable), leave one real clip out, "
               f"n = {report['n_real']} real, {report['n_sim']} BleedSim clips, {repeats} repeats "
               f"(mean, sd over repeats; paired difference [95 % bootstrap over real clips]):")
    for name, auc in report["variants"].items():
        sd = statistics.pstdev(report["repeat_auc"][name])
        line = f"  {name:<22} {auc:.3f} sd {sd:.3f}"
        for ref in ("v1", "v2", "every"):
            d = report[f"vs_{ref}"].get(name)
            if d:
                line += f"  vs {ref} {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
        typer.echo(line)
    if json_out:
        write_json_atomic(json_out, report)


@data_app.command("contact-sheet")
def data_contact_sheet(out: Path = typer.Option(Path("docs/bleedsim_contact_sheet.png"), help="Output PNG."),
                       real_dir: Optional[Path] = typer.Option(None, "--real", help="Real clips to show beside."),
                       seed: int = typer.Option(0, help="BleedSim seed."),
                       appearance: str = typer.Option("none", help="BleedSim v2 features for all but the first "
                                                      "synthetic column: none | all | every | a comma list."),
                       texture_from: Optional[Path] = TEXTURE_FROM) -> None:
    """One row per scenario: BleedSim frames next to frames of the real clip of that scenario."""
    from bleedorigin.sim.contact_sheet import make_contact_sheet
    look = _appearance(appearance, texture_from)
    _writable(out, folder=False)
    typer.echo(f"wrote {make_contact_sheet(out, real_dir, seed, appearance=look)}")


# Signals that stop a command the way Ctrl-C does: what was computed is kept (`"complete": false`)
# and the exit code is 128 + the signal number (SIGINT 130, SIGTERM 143, SIGHUP 129).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _stop(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:  # a second signal while results are being kept ends at once
        signal.signal(sig, lambda n, f: os._exit(128 + n))
    # kept here too: typer turns a KeyboardInterrupt into a bare exit code 130
    _state["interrupted"] = error = Interrupted(signum)
    raise error


def _report_interrupt(error: BaseException | None) -> None:
    signum = getattr(error, "signum", signal.SIGINT)
    print(f"error: interrupted by {signal.Signals(signum).name}{_kept_note(error)}", file=sys.stderr)
    sys.exit(128 + signum)


def _kept_note(error: BaseException | None) -> str:
    where = kept(error) if error is not None else None
    return f"; what was computed is kept in {where}" if where else ""


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one line `error: ...` and exit code 2; SIGINT,
    SIGTERM and SIGHUP one line and exit code 128 + signal. A failed command leaves no empty
    output folder behind."""
    from bleedorigin.utils.files import remove_empty_folders
    from bleedorigin.utils.threads import passive_waiting
    passive_waiting()  # before torch is imported: OpenMP reads it once, when it loads
    _state["new_folders"] = []
    try:
        _main(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        if e.code not in (0, None):
            remove_empty_folders(_state["new_folders"])
        raise


def _main(args: list[str]) -> None:
    debug = "--debug" in args
    # handlers can be set only from the main thread (main() called from another keeps Python's)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS} if in_main else {}
    _state["interrupted"] = None
    try:
        # Without standalone mode click returns typer.Exit codes (and command results) instead.
        code = app(args=args, standalone_mode=False)
        if _state["interrupted"] is not None:
            _report_interrupt(_state["interrupted"])
        sys.exit(code if isinstance(code, int) else 0)
    except (click.exceptions.Exit, typer.Exit) as e:
        if _state["interrupted"] is not None:
            _report_interrupt(_state["interrupted"])
        sys.exit(e.exit_code)
    except (click.exceptions.ClickException, typer.TyperException) as e:  # typer>=0.29 vendors click
        if hasattr(e, "show"):
            e.show()
        else:
            print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt) as e:
        _report_interrupt(_state["interrupted"] or (e if isinstance(e, KeyboardInterrupt) else e.__cause__))
    except (BleedOriginError, OSError) as e:
        if debug:
            raise
        print(f"error: {_os_error(e) if isinstance(e, OSError) else e}{_kept_note(e)}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - one line for users, --debug for developers
        if debug:
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (rerun with --debug for details)",
              file=sys.stderr)
        sys.exit(1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _os_error(e: OSError) -> str:
    """A failed system call (full disk, no permission, read-only file system) in one line."""
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"
