"""A local HTTP server for reviewing one run: the page, the run's result and overlay video, and
the corrections it saves.

Only a fixed set of routes exists and none of them takes a path from the request, so nothing
outside RUN_DIR (and the page's own files) can be read or written; files of RUN_DIR that are
symlinks leading elsewhere are refused. It listens on 127.0.0.1 only and answers only requests
addressed to 127.0.0.1 or localhost (a web page cannot reach it through a rebound DNS name).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bleedorigin.errors import InputError
from bleedorigin.review.labels import LABELS, LabelsError, load_labels, parse_labels
from bleedorigin.utils.jsonio import read_json, write_json_atomic

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
RESULT, OVERLAY = "result.json", "overlay.mp4"
MAX_BODY = 1 << 20
CHUNK = 1 << 16
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/review.js": ("review.js", "text/javascript; charset=utf-8"),
          "/review.css": ("review.css", "text/css; charset=utf-8")}
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class ReviewRun:
    """The files of one run, checked once; every path it hands out lies inside the run folder."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).resolve()
        if not self.dir.is_dir():
            raise InputError(f"{run_dir}: not a folder")
        self.result_path = self.inside(RESULT)
        self.result = read_json(self.result_path, missing=f"{run_dir}: no {RESULT} (not a run folder)")
        try:
            self.frames, self.width, self.height = (int(self.result[k]) for k in ("frames", "width", "height"))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{self.result_path}: needs frames, width and height") from None
        if self.frames < 1:
            raise InputError(f"{self.result_path}: the run has no frames")
        self.overlay = self.inside(OVERLAY)
        if not self.overlay.is_file():
            raise InputError(f"{run_dir}: no {OVERLAY} (run `bleedorigin run` without --no-overlay)")
        self.inside(LABELS)  # a labels.json symlinked out of the run is refused at start
        load_labels(self.dir, self.result)  # a broken labels.json is reported now, not in the page
        self._write_lock = threading.Lock()

    def inside(self, name: str) -> Path:
        """RUN_DIR/name; an error when it is a symlink that leads out of RUN_DIR."""
        path = self.dir / name
        if not path.resolve().is_relative_to(self.dir):
            raise InputError(f"{path}: leads outside the run folder; refusing to serve it")
        return path

    def video_info(self) -> dict[str, Any]:
        from bleedorigin.io.video import probe_video
        info = probe_video(self.overlay)
        return {"fps": info.fps, "frames": info.frames, "width": info.width, "height": info.height}

    def save_labels(self, body: bytes) -> dict[str, Any]:
        labels = parse_labels(body, self.frames, self.width, self.height)
        with self._write_lock:
            write_json_atomic(self.inside(LABELS), labels)
        return labels


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/api/labels":
            return self._error(HTTPStatus.NOT_FOUND, "no such endpoint")
        if self.headers.get_content_type() != "application/json":
            return self._error(HTTPStatus.BAD_REQUEST, "Content-Type must be application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(HTTPStatus.BAD_REQUEST, "Content-Length required")
        if not 0 <= length <= MAX_BODY:
            return self._error(HTTPStatus.BAD_REQUEST, f"body must be at most {MAX_BODY} bytes")
        body = self.rfile.read(length)
        try:
            labels = self.server.run.save_labels(body)
        except LabelsError as e:
            return self._error(HTTPStatus.BAD_REQUEST, str(e))
        except (InputError, OSError) as e:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"labels not saved: {e}")
        self._json(labels)

    def _serve(self, head: bool) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        run = self.server.run
        try:
            if path in STATIC:
                name, ctype = STATIC[path]
                self._bytes(resources.files("bleedorigin.review").joinpath("static", name).read_bytes(), ctype, head)
            elif path == "/api/result":
                self._json(read_json(run.inside(RESULT)), head)
            elif path == "/api/labels":
                self._json(load_labels(run.dir, run.result), head)
            elif path == "/api/video":
                self._json(run.video_info(), head)
            elif path == "/video.mp4":
                self._file(run.inside(OVERLAY), "video/mp4", head)
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except (InputError, OSError) as e:  # e.g. a file of the run deleted while serving
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host in (HOST, "localhost"):
            return True
        self._error(HTTPStatus.FORBIDDEN, "only requests to 127.0.0.1 or localhost are answered")
        return False

    def _json(self, obj: Any, head: bool = False) -> None:
        self._bytes(json.dumps(obj).encode(), "application/json", head)

    def _bytes(self, data: bytes, ctype: str, head: bool = False, status: int = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True  # an unread request body must not be taken for the next request
        self._bytes(message.splitlines()[0].encode() + b"\n",
                    "text/plain; charset=utf-8", status=status)

    def _file(self, path: Path, ctype: str, head: bool) -> None:
        """The file, or the one byte range asked for (browsers seek in a video with ranges)."""
        with open(path, "rb") as f:  # opened before any header goes out: a failure is still a clean 500
            size = os.fstat(f.fileno()).st_size
            span = self._range(size)
            if span is None:
                return self._unsatisfiable(size)
            start, end = span
            partial = (start, end) != (0, size - 1) or "Range" in self.headers
            self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
            self.send_header("Content-Type", ctype)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head:
                return
            f.seek(start)
            left = end - start + 1
            try:
                while left > 0 and (chunk := f.read(min(CHUNK, left))):
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the browser dropped the request (it seeks elsewhere)

    def _range(self, size: int) -> tuple[int, int] | None:
        """First and last byte to send: the whole file, or the one range of the Range header;
        None when that range cannot be served."""
        wanted = self.headers.get("Range")
        if not wanted:
            return 0, size - 1
        m = RANGE.match(wanted.strip())
        if m is None or m.groups() == ("", ""):
            return None
        if m[1]:
            start, end = int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(0, size - int(m[2])), size - 1
        return (start, end) if start <= end else None

    def _unsatisfiable(self, size: int) -> None:
        self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, run: ReviewRun, port: int = 0):
        self.run = run
        if not 0 <= port <= 65535:
            raise InputError(f"--port must be 0..65535, got {port}")
        try:
            super().__init__((HOST, port), ReviewHandler)
        except OSError as e:
            raise InputError(f"cannot listen on {HOST}:{port} ({e.strerror or e})") from None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

