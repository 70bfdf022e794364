"""Writing results safely: atomic replacement of a file, and an early check that an output path
can be written at all (so a long run does not fail at its very end)."""
from __future__ import annotations

import os
import shutil
import stat
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
    refuse_non_regular(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, _plain_file_mode())
        with os.fdopen(fd, mode) as f:
            yield f
        refuse_non_regular(path)  # again: something may have appeared there meanwhile
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path, folder: bool) -> Path:
    """Raise InputError `cannot write PATH: ...` unless `path` (a folder when `folder`, else a
    file) could be created or replaced. Creates nothing."""
    path = Path(path)
    if not folder:
        refuse_non_regular(path)
    refuse_kernel_file_system(path)
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


# Kernel file systems: writing there changes the system, never stores a result (/dev/shm is memory).
KERNEL_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))
MEMORY_FOLDER = Path("/dev/shm")

_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def refuse_non_regular(path: str | Path) -> None:
    """InputError unless `path` is absent or a regular file: outputs never replace or write
    through a device, a FIFO, a socket or a symbolic link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    raise InputError(f"cannot write {path}: it is {kind}, not a regular file")


def refuse_kernel_file_system(path: str | Path) -> None:
    """InputError for a path under /proc, /sys or /dev (but /dev/shm), symbolic links followed."""
    real = Path(os.path.realpath(path))
    if real == MEMORY_FOLDER or MEMORY_FOLDER in real.parents:
        return
    for root in KERNEL_FILE_SYSTEMS:
        if real == root or root in real.parents:
            raise InputError(f"cannot write {path}: {root} is a kernel file system, not storage")


def open_regular(path: str | Path, mode: str = "w") -> IO:
    """`open(path, mode)` for writing that refuses a path that is not a regular file and never
    follows a symbolic link put there meanwhile."""
    path = Path(path)
    refuse_non_regular(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    return os.fdopen(fd, mode)


def set_aside(folder: Path, names: tuple[str, ...], aside: str = "previous") -> Path | None:
    """Create `folder` and move those of `names` found in it into `folder/aside` (replacing an
    older one), so new outputs never sit beside old ones; the aside folder, or None when there
    was nothing to move."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        present = [n for n in names if os.path.lexists(folder / n)]
        if not present:
            return None
        target = folder / aside
        if target.is_symlink() or target.is_file():
            target.unlink()
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for name in present:
            os.rename(folder / name, target / name)
    except OSError as e:
        raise InputError(f"cannot write {folder}: {e.strerror or e}") from None
    return target


def missing_folders(path: str | Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first."""
    out = []
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove those of `folders` (deepest first) that exist and are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, not there or not ours to remove: leave it
            pass
