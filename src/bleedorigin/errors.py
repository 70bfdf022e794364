"""Errors the CLI turns into one line `error: ...` and exit code 2, and the interrupt it turns
into exit code 128 + signal number."""
from __future__ import annotations

import signal
from pathlib import Path


class BleedOriginError(Exception):
    """Base class of the toolkit's expected errors."""


class InputError(BleedOriginError):
    """Bad user input: missing/corrupt video, malformed annotation, point outside the frame, ..."""


class ConfigError(BleedOriginError):
    """Bad configuration: unknown key, wrong type, unknown model name."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: commands keep what they computed and the CLI exits
    with 128 + the signal number (130, 143, 129). A KeyboardInterrupt so code that already
    stops cleanly on Ctrl-C stops the same way on the others."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def note_kept(error: BaseException, path: Path) -> None:
    """Record on `error` where the results computed before it were kept (the CLI says so)."""
    error.kept = path  # type: ignore[attr-defined]


def kept(error: BaseException) -> Path | None:
    return getattr(error, "kept", None)


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (torch and ffmpeg write whole pages)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
