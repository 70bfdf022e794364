"""Writing results safely: atomic replacement of a file, and an early check that an output path
can be written at all (so a long run does not fail at its very end)."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bleedorigin.errors import InputError


def _plain_file_mode() -> int:
    """The mode open() would give a new file: 0o666 less the umask (0o644 under umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A temp file beside `path` that replaces it when the block ends without an error, so a
    crash never leaves half a file. The result gets the permissions of a plainly written file
    (the temp file alone would be private to its owner)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, _plain_file_mode())
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path, folder: bool) -> Path:
    """Raise InputError `cannot write PATH: ...` unless `path` (a folder when `folder`, else a
    file) could be created or replaced. Creates nothing."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise InputError(f"cannot write {path}: it is a file, not a folder")
        if not folder and path.is_dir():
            raise InputError(f"cannot write {path}: it is a folder")
        target = path if folder else path.parent
    else:
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise InputError(f"cannot write {path}: {target} is a file, not a folder")
    if not os.access(target, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: {target} is not writable")
    return path
