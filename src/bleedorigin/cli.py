"""Command line: `bleedorigin <command>` (also `python -m bleedorigin`). See DESIGN.md."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from bleedorigin.errors import BleedOriginError, InputError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Bleeding onset detection, source localisation and tracking in ESD video.\n\n"
                  "Examples:\n\n  bleedorigin demo --out runs/demo\n\n"
                  "  bleedorigin run video.mp4 --out runs/case1\n\n"
                  "  bleedorigin track video.mp4 --point 250 180 --start 0 --out track.json")
data_app = typer.Typer(no_args_is_help=True, help="Benchmark folders: validate.")
app.add_typer(data_app, name="data")

_state = {"debug": False}

VIDEO = typer.Argument(..., help="Video file, image folder, image, camera index or rtsp/http URL.")
DEVICE = typer.Option("auto", "--device", help="auto | cpu | cuda")


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
             verbose: bool = typer.Option(False, "--verbose", "-v"),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or logs.")
             ) -> None:
    _state["debug"] = debug
    _state["quiet"] = quiet
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    from rich.logging import RichHandler
    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(show_path=False, console=_stderr_console())])


def _stderr_console():  # noqa: ANN202
    from rich.console import Console
    return Console(stderr=True)


def _progress() -> bool:
    return not _state.get("quiet", False)


def _source(video: str) -> str | int:
    return int(video) if video.isdigit() else video


@app.command()
def detect(video: str = VIDEO, out: Path = typer.Option(..., help="Output JSON file."),
           model: Optional[str] = typer.Option(None, help="Onset model name or checkpoint folder."),
           device: str = DEVICE) -> None:
    """Onset only: first bleeding frame and per-frame scores."""
    from bleedorigin.commands import detect_onset
    detect_onset(_source(video), out, model, device, _progress())


@app.command()
def locate(video: str = typer.Argument(..., help="Video file or image."),
           frame: int = typer.Option(0, help="Frame index (0-based)."),
           out: Path = typer.Option(..., help="Output JSON file."),
           model: Optional[str] = typer.Option(None, help="Source model name or checkpoint folder."),
           device: str = DEVICE) -> None:
    """Bleeding source on one frame."""
    from bleedorigin.commands import locate_source
    locate_source(video, frame, out, model, device)


@app.command()
def track(video: str = VIDEO,
          point: tuple[float, float] = typer.Option(..., help="Start point X Y (input pixels)."),
          start: int = typer.Option(0, help="Start frame (0-based)."),
          out: Path = typer.Option(..., help="Output JSON file."),
          model: Optional[str] = typer.Option(None, help="Tracker name or checkpoint folder."),
          device: str = DEVICE) -> None:
    """Track a point from a start frame to the end of the video."""
    from bleedorigin.commands import track_point
    track_point(_source(video), point, start, out, model, device, _progress())


@app.command()
def run(video: Optional[str] = typer.Argument(None, help="Video file, folder, image or URL."),
        camera: Optional[int] = typer.Option(None, help="Camera index instead of VIDEO."),
        out: Path = typer.Option(..., help="Output folder (result.json, results.jsonl, overlay.mp4)."),
        onset_model: Optional[str] = typer.Option(None, help="Onset model name or folder."),
        source_model: Optional[str] = typer.Option(None, help="Source model name or folder."),
        track_model: Optional[str] = typer.Option(None, help="Tracker name or folder."),
        no_overlay: bool = typer.Option(False, help="Skip overlay.mp4."),
        device: str = DEVICE) -> None:
    """Deployment mode end to end: onset -> source -> tracking."""
    from bleedorigin.commands import run_pipeline
    if (video is None) == (camera is None):
        raise InputError("give either VIDEO or --camera N")
    run_pipeline(camera if video is None else _source(video), out, onset_model, source_model,
                 track_model, device, not no_overlay, _progress())


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="Output folder.")) -> None:
    """Run the pipeline on the shipped sample clip with the default models."""
    from bleedorigin.commands import run_demo
    run_demo(out, _progress())


@data_app.command("check")
def data_check(root: Path = typer.Argument(..., help="Benchmark folder.")) -> None:
    """List every problem in a benchmark folder; exit 1 if there are any."""
    from bleedorigin.io.check import check_bench, summarize
    problems = check_bench(root)
    typer.echo(summarize(problems))
    raise typer.Exit(1 if problems else 0)


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one line `error: ...` and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(2)
    except click.exceptions.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except BleedOriginError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - one line for users, --debug for developers
        if debug:
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (rerun with --debug for details)",
              file=sys.stderr)
        sys.exit(1)
