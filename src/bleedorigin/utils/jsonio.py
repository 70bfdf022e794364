"""Reading JSON with one-line errors; atomic JSON writing and a flushed JSON Lines appender, so a
crash never leaves half a file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from bleedorigin.errors import InputError
from bleedorigin.utils.files import atomic_open, open_regular


def read_json(path: str | Path, missing: str | None = None) -> Any:
    """Parsed JSON of `path`; a missing file or bad JSON raises InputError (`missing`: its message)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(missing or f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    return Path(path)


class JsonLinesWriter:
    """Appends one JSON object per line and flushes each, so results survive a crash or Ctrl-C."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = open_regular(self.path, "w")

    def write(self, obj: Any) -> None:
        self._f.write(json.dumps(obj) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
