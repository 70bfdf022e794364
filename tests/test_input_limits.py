"""Inputs above the size cap, damaged images and silent streams: one line of ours, exit 2."""
from __future__ import annotations

import socket
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from bleedorigin.cli import main
from bleedorigin.errors import InputError
from bleedorigin.io import video


def cli(capfd, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), capfd.readouterr().err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_header_claiming_60000x60000_is_refused_before_decoding(tmp_path, capfd):
    png = tmp_path / "huge.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                    + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b""))
    code, err = cli(capfd, "-q", "detect", png, "--out", tmp_path / "o.json", "--model", "onset_hsv")
    assert code == 2 and "60000x60000" in one_error_line(err) and "--max-pixels" in err


def test_size_cap_is_configurable(tiny_clip, tmp_path, capfd, monkeypatch):
    args = ("-q", "detect", tiny_clip.path, "--out", tmp_path / "o.json", "--model", "onset_hsv")
    code, err = cli(capfd, "--max-pixels", 1000, *args)
    assert code == 2 and "64x48" in one_error_line(err)
    monkeypatch.setenv("BLEEDORIGIN_MAX_PIXELS", "1000")
    assert cli(capfd, *args)[0] == 2
    assert cli(capfd, "--max-pixels", 64 * 48, *args)[0] == 0  # the option wins over the variable


def test_opencv_says_nothing_before_our_line(tmp_path, capfd):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.zeros((48, 64, 3), np.uint8))
    (folder / "001.png").symlink_to(tmp_path / "missing.png")
    (folder / "002.png").write_bytes(b"GIF89a")
    code, err = cli(capfd, "-q", "detect", folder, "--out", tmp_path / "o.json", "--model", "onset_hsv")
    assert code == 2 and "001.png" in one_error_line(err)
    (folder / "001.png").unlink()
    code, err = cli(capfd, "-q", "detect", folder, "--out", tmp_path / "o.json", "--model", "onset_hsv")
    assert code == 2 and "002.png: not an image file" in one_error_line(err)


def test_silent_stream_times_out_in_words(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(video, "STREAM_TIMEOUT_S", 0.5)
    try:
        with pytest.raises(InputError, match=r"no data for 0.5 s \(timed out\)"):
            video.open_video(f"http://127.0.0.1:{server.getsockname()[1]}/live.mp4")
    finally:
        server.close()
