"""Outputs are regular files in a folder: devices, FIFOs, symbolic links and kernel file systems
are refused with one line, and nothing there is replaced or written through."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bleedorigin.cli import main
from bleedorigin.errors import InputError
from bleedorigin.io.video import VideoWriter
from bleedorigin.utils.jsonio import JsonLinesWriter, write_json_atomic

BASELINES = ("--onset-model", "onset_hsv", "--source-model", "source_redmask", "--track-model", "track_lk")


def cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_detect_never_replaces_a_device_node(tiny_clip, capsys):
    code, err = cli(capsys, "-q", "detect", tiny_clip.path, "--out", "/dev/full", "--model", "onset_hsv")
    assert code == 2 and "device" in one_error_line(err)
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_device_node_outside_dev_is_not_replaced(tiny_clip, tmp_path, capsys):
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    code, err = cli(capsys, "-q", "detect", tiny_clip.path, "--out", node, "--model", "onset_hsv")
    assert code == 2 and "device" in one_error_line(err)
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_fifo_output_is_refused_without_blocking(tiny_clip, tmp_path, capsys):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    code, err = cli(capsys, "-q", "detect", tiny_clip.path, "--out", fifo, "--model", "onset_hsv")
    assert code == 2 and "FIFO" in one_error_line(err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_output_is_refused_and_its_target_untouched(tiny_clip, tmp_path, capsys):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "out" / "onset.json"
    link.parent.mkdir()
    link.symlink_to(target)
    code, err = cli(capsys, "-q", "detect", tiny_clip.path, "--out", link, "--model", "onset_hsv")
    assert code == 2 and "symbolic link" in one_error_line(err)
    assert target.read_text() == "keep me" and link.is_symlink()


@pytest.mark.parametrize("write", [
    lambda p: JsonLinesWriter(p).close(),
    lambda p: write_json_atomic(p, {"a": 1}),
    lambda p: VideoWriter(p, 30, (32, 32)).close(),
])
def test_writers_refuse_a_symlink_inside_the_output_folder(tmp_path, write):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "run" / "results.out"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(InputError, match="symbolic link"):
        write(link)
    assert target.read_text() == "keep me" and link.is_symlink()


@pytest.mark.parametrize("where", ["/proc/self/x/y.json", "/sys/kernel/x.json", "/proc/x/y"])
def test_kernel_file_systems_are_refused(tiny_clip, capsys, where):
    code, err = cli(capsys, "-q", "detect", tiny_clip.path, "--out", where, "--model", "onset_hsv")
    assert code == 2 and "kernel file system" in one_error_line(err)


def test_run_into_a_kernel_file_system_is_refused(tiny_clip, capsys):
    code, err = cli(capsys, "-q", "run", tiny_clip.path, "--out", "/sys/bleedorigin_run", *BASELINES)
    assert code == 2 and "kernel file system" in one_error_line(err)
