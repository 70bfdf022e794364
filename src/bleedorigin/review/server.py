"""A local HTTP server for reviewing one run: the page, the run's result and overlay video, and
the corrections it saves.

Only a fixed set of routes exists and none of them takes a path from the request, and every file
is opened without following a symlink, so nothing outside RUN_DIR (and the page's own files) can
be read or written. It listens on 127.0.0.1 only, answers only requests addressed to its own
127.0.0.1:PORT or localhost:PORT (a web page cannot reach it through a rebound DNS name), takes
corrections only from its own page (Origin), and forbids other sites to frame it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from bleedorigin.errors import InputError
from bleedorigin.io.video import probe_video
from bleedorigin.review.labels import LABELS, LabelsError, labels_of_file, parse_labels
from bleedorigin.utils.jsonio import write_json_atomic

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
RESULT, OVERLAY = "result.json", "overlay.mp4"
STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY = 1 << 20
CHUNK = 1 << 16
TIMEOUT = 5.0  # seconds a connection may stay silent; also the most a request body may take
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/review.js": ("review.js", "text/javascript; charset=utf-8"),
          "/review.css": ("review.css", "text/css; charset=utf-8")}
RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})$")  # bounded: int() of 5000 digits raises
LENGTH = re.compile(r"[0-9]{1,12}")  # int() would also take "+5", " 5", "5_0" and "٥"
# On every answer: nothing but this server's own files run in the page, and no other site may
# frame it (a framed page can be clicked through), sniff a type into it, or embed its files.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def open_regular(dir_fd: int, name: str) -> IO[bytes]:
    """The regular file `name` of the folder open as `dir_fd`, for reading; OSError when it is a
    symlink (never followed, not even inside the folder), a device, a FIFO or a folder."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise OSError(f"{name}: not a regular file")
    return f


def read_regular(dir_fd: int, name: str) -> bytes:
    with open_regular(dir_fd, name) as f:
        return f.read()


class ReviewRun:
    """The files of one run, checked once and then opened by name in the run folder only."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).resolve()
        if not self.dir.is_dir():
            raise InputError(f"{run_dir}: not a folder")
        self.fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.static_fd = os.open(STATIC_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._check(run_dir)
        except BaseException:
            self.close()
            raise
        self._write_lock = threading.Lock()

    def _check(self, run_dir: str | Path) -> None:
        self.result = self._json(RESULT)
        try:
            self.frames, self.width, self.height = (int(self.result[k]) for k in ("frames", "width", "height"))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{self.dir / RESULT}: needs frames, width and height") from None
        if self.frames < 1:
            raise InputError(f"{self.dir / RESULT}: the run has no frames")
        self.open(OVERLAY, missing=f"{run_dir}: no {OVERLAY} (run `bleedorigin run` without --no-overlay)").close()
        info = probe_video(self.dir / OVERLAY)
        self.video = {"fps": info.fps, "frames": info.frames, "width": info.width, "height": info.height}
        self.labels()  # a broken labels.json is reported now, not in the page

    def open(self, name: str, missing: str | None = None) -> IO[bytes]:
        """RUN_DIR/name for reading; InputError when it is missing, a symlink or not a regular file."""
        try:
            return open_regular(self.fd, name)
        except FileNotFoundError:
            raise InputError(missing or f"{self.dir / name}: not found") from None
        except OSError as e:
            raise InputError(f"{self.dir / name}: refused, a symlink or not a regular file ({e.strerror or e})") from None

    def _json(self, name: str) -> Any:
        with self.open(name, missing=f"{self.dir}: no {name} (not a run folder)") as f:
            data = f.read()
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as e:  # ValueError: bad JSON, bad UTF-8, 5000-digit integers
            raise InputError(f"{self.dir / name}: not valid JSON ({str(e).splitlines()[0][:100]})") from None

    def result_json(self) -> Any:
        return self._json(RESULT)

    def labels(self) -> dict[str, Any] | None:
        """The saved corrections, or None when there are none."""
        if self._mode(LABELS) is None:
            return None
        with self.open(LABELS) as f:
            data = f.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:  # not one the server wrote: it saves at most MAX_BODY bytes
            raise InputError(f"{self.dir / LABELS}: larger than {MAX_BODY} bytes")
        return labels_of_file(data, self.dir / LABELS, self.result)

    def _mode(self, name: str) -> int | None:
        """st_mode of RUN_DIR/name itself (a symlink is not followed), None when there is none."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None

    def close(self) -> None:
        for fd in (self.fd, self.static_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.static_fd = -1

    def save_labels(self, body: bytes) -> dict[str, Any]:
        labels = parse_labels(body, self.frames, self.width, self.height)
        with self._write_lock:
            mode = self._mode(LABELS)
            if mode is not None and not stat.S_ISREG(mode):
                raise InputError(f"{self.dir / LABELS}: a symlink or not a regular file; refusing to replace it")
            write_json_atomic(self.dir / LABELS, labels)  # a new file renamed over: never written through
        return labels


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.conn_timeout  # read by StreamRequestHandler.setup
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), fmt % args)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as one plain line too."""
        self._error(code, message or HTTPStatus(code).phrase)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_POST(self) -> None:  # noqa: N802
        if not (self._host_ok() and self._origin_ok()):
            return
        if urlsplit(self.path).path != "/api/labels":
            return self._error(HTTPStatus.NOT_FOUND, "no such endpoint")
        if self.headers.get_content_type() != "application/json":
            return self._error(HTTPStatus.BAD_REQUEST, "Content-Type must be application/json")
        body = self._body()
        if body is None:
            return
        try:
            labels = self.server.run.save_labels(body)
        except LabelsError as e:
            return self._error(HTTPStatus.BAD_REQUEST, str(e))
        except (InputError, OSError) as e:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"labels not saved: {e}")
        self._json(labels)

    def _body(self) -> bytes | None:
        """The request body, exactly Content-Length bytes received within the time-out; None
        (after an error answer) otherwise."""
        if "Transfer-Encoding" in self.headers:
            return self._error(HTTPStatus.BAD_REQUEST, "Transfer-Encoding not accepted; send Content-Length")
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) != 1 or not LENGTH.fullmatch(lengths[0].strip()):
            return self._error(HTTPStatus.BAD_REQUEST, "one Content-Length (decimal digits) required")
        length = int(lengths[0])
        if length > MAX_BODY:
            return self._error(HTTPStatus.BAD_REQUEST, f"body must be at most {MAX_BODY} bytes")
        deadline, body = time.monotonic() + self.server.conn_timeout, bytearray()
        try:  # read1: returns what has arrived, so a slow trickle still meets the deadline
            while len(body) < length and time.monotonic() < deadline and (chunk := self.rfile.read1(length - len(body))):
                body += chunk
        except TimeoutError:
            pass
        if len(body) < length:
            return self._error(HTTPStatus.BAD_REQUEST,
                               f"body shorter than its Content-Length ({len(body)} of {length} bytes received)")
        return bytes(body)

    def _serve(self, head: bool) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        run = self.server.run
        try:
            if path in STATIC:
                name, ctype = STATIC[path]
                self._bytes(read_regular(run.static_fd, name), ctype, head)
            elif path == "/api/result":
                self._json(run.result_json(), head)
            elif path == "/api/labels":
                self._json(run.labels(), head)
            elif path == "/api/video":
                self._json(run.video, head)
            elif path == "/video.mp4":
                self._file(run.open(OVERLAY), "video/mp4", head)
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except (InputError, OSError) as e:  # e.g. a file of the run deleted or replaced by a symlink
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))

    def _host_ok(self) -> bool:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) == 1 and hosts[0].strip().lower() in self.server.hosts:
            return True
        self._error(HTTPStatus.FORBIDDEN, f"only requests to {self.server.hosts[0]} or {self.server.hosts[1]} are answered")
        return False

    def _origin_ok(self) -> bool:
        """A write comes from this server's own page: browsers name the page's origin in every
        POST, so a page of another site (or another port) is refused even if it could send one."""
        origins = self.headers.get_all("Origin") or []
        if len(origins) == 1 and origins[0].strip().lower() in self.server.origins:
            return True
        self._error(HTTPStatus.FORBIDDEN, f"Origin must be {self.server.origins[0]} (the review page itself)")
        return False

    def _json(self, obj: Any, head: bool = False) -> None:
        self._bytes(json.dumps(obj).encode(), "application/json", head)

    def _bytes(self, data: bytes, ctype: str, head: bool = False, status: int = HTTPStatus.OK) -> None:
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True  # an unread request body must not be taken for the next request
        self._bytes(message.splitlines()[0].encode() + b"\n",
                    "text/plain; charset=utf-8", head=self.command == "HEAD", status=status)

    def _file(self, f: IO[bytes], ctype: str, head: bool) -> None:
        """The open file, or the one byte range asked for (browsers seek in a video with ranges)."""
        with f:
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
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
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
    """One thread per connection; a connection silent for `timeout` seconds is closed, so
    half-sent requests cannot hold the server."""
    daemon_threads = True
    request_queue_size = 64  # connections waiting to be accepted; beyond it a burst waits for SYN retries

    def __init__(self, run: ReviewRun, port: int = 0, timeout: float = TIMEOUT):
        self.run, self.conn_timeout = run, timeout
        if not 0 <= port <= 65535:
            raise InputError(f"--port must be 0..65535, got {port}")
        try:
            super().__init__((HOST, port), ReviewHandler)
        except OSError as e:
            raise InputError(f"cannot listen on {HOST}:{port} ({e.strerror or e})") from None
        port = self.server_address[1]
        names = [HOST, "localhost"]
        self.hosts = [f"{n}:{port}" for n in names] + (names if port == 80 else [])
        self.origins = [f"http://{n}:{port}" for n in names] + ([f"http://{n}" for n in names] if port == 80 else [])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that failed in an unforeseen way: one line on the log, not a traceback."""
        exc = sys.exc_info()[1]
        reason = (str(exc).splitlines() or [""])[0][:200]
        log.warning("review server: a request from %s failed (%s: %s)", client_address[0], type(exc).__name__, reason)
        log.debug("request failure", exc_info=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def server_close(self) -> None:
        super().server_close()
        self.run.close()
