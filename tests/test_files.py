"""Result files: atomic replacement with ordinary permissions, and the early --out check."""
from __future__ import annotations

import json
import os
import stat

import pytest

from bleedorigin.errors import InputError
from bleedorigin.utils.files import atomic_open, check_writable
from bleedorigin.utils.jsonio import write_json_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_of_a_plain_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_json_atomic(tmp_path / "sub" / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_check_writable_creates_nothing_and_names_the_path(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper", folder=True) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=f"cannot write {blocker}/out.json"):
        check_writable(blocker / "out.json", folder=False)
    with pytest.raises(InputError, match="it is a file, not a folder"):
        check_writable(blocker, folder=True)
    with pytest.raises(InputError, match="it is a folder"):
        check_writable(tmp_path, folder=False)
