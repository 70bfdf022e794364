"""The review server over plain HTTP: the page, the run's result, saving corrections, and that
nothing outside RUN_DIR can be read or written."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from review_run import H, W, make_run

from bleedorigin.errors import InputError
from bleedorigin.review.server import ReviewRun, ReviewServer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("review"))


@pytest.fixture(autouse=True)
def _unreviewed(request):
    """Every test starts from a run without labels.json (the run and server are shared)."""
    yield
    if "run_dir" in request.fixturenames:
        (request.getfixturevalue("run_dir") / "labels.json").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def server(run_dir: Path):
    srv = ReviewServer(ReviewRun(run_dir), 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv: ReviewServer, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes, dict]:
    """The raw request, path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    hdrs = {"Content-Type": "application/json", "Origin": origin(srv)} if body is not None else {}
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, dict(resp.getheaders())


def origin(srv: ReviewServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"


def test_page_and_its_files_are_served(server):
    status, page, headers = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<video id="video" src="/video.mp4"' in page
    for name in (b"/review.js", b"/review.css"):
        assert name in page
        status, data, _ = request(server, "GET", name.decode())
        assert status == 200 and len(data) > 100
        assert b"://" not in data  # no CDN: everything comes from this server
    assert b"://" not in page


def test_result_is_the_runs_result_json(server, run_dir):
    status, data, _ = request(server, "GET", "/api/result")
    assert status == 200
    assert json.loads(data) == json.loads((run_dir / "result.json").read_text())
    status, data, _ = request(server, "GET", "/api/labels")
    assert status == 200 and json.loads(data) is None  # not reviewed yet


def test_video_range_requests(server, run_dir):
    whole = (run_dir / "overlay.mp4").read_bytes()
    status, data, headers = request(server, "GET", "/video.mp4")
    assert status == 200 and data == whole and headers["Accept-Ranges"] == "bytes"
    status, data, headers = request(server, "GET", "/video.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206 and data == whole[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    status, data, _ = request(server, "GET", "/video.mp4", headers={"Range": "bytes=-16"})
    assert status == 206 and data == whole[-16:]
    status, data, _ = request(server, "GET", "/video.mp4", headers={"Range": f"bytes={len(whole)}-"})
    assert status == 416 and data == b""
    for huge in ("9" * 5000 + "-", "-" + "9" * 5000, "0-" + "9" * 5000):  # int() of 5000 digits raises
        status, data, _ = request(server, "GET", "/video.mp4", headers={"Range": f"bytes={huge}"})
        assert status == 416 and data == b""


def test_post_labels_writes_labels_json(server, run_dir):
    body = {"onset_frame": 21, "source": [25.5, 24.0], "points": {"51": [[40.0, 24.0]]}}
    status, data, _ = request(server, "POST", "/api/labels", json.dumps(body).encode())
    assert status == 200, data
    saved = json.loads((run_dir / "labels.json").read_text())
    assert saved == body
    assert json.loads(request(server, "GET", "/api/labels")[1]) == body
    no_bleeding = {"onset_frame": None, "source": None, "points": {}}
    assert request(server, "POST", "/api/labels", json.dumps(no_bleeding).encode())[0] == 200
    assert json.loads((run_dir / "labels.json").read_text()) == no_bleeding


BAD_BODIES = {
    b"{not json": "not valid JSON",
    b"[1, 2]": "JSON object",
    b'{"onset_frame": 3, "source": null, "extra": 1}': "unknown field 'extra'",
    b'{"source": null}': "missing field 'onset_frame'",
    b'{"onset_frame": 60, "source": null}': "onset_frame 60 outside the run's frames 0..59",
    b'{"onset_frame": true, "source": null}': "onset_frame must be an integer",
    b'{"onset_frame": 5, "source": [64.0, 3]}': "outside the 64x48 frame",
    b'{"onset_frame": 5, "source": [NaN, 3]}': "two finite numbers",
    b'{"onset_frame": 5, "source": [1, 2, 3]}': "source must be [x, y]",
    b'{"onset_frame": null, "source": [1, 2]}': "no bleeding",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"3": [[1, 2]]}}': "points[3] is before the onset frame 5",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"x": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"9": []}}': "non-empty list",
    # bodies that made json.loads raise past the handler (the connection dropped, a traceback)
    b'{"onset_frame": ' + b"7" * 5000 + b', "source": null}': "integer with more than 15 digits",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"\xc2\xb2": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"\\u00b2": [[1, 2]]}}': "not a frame number",
    b"[" * 100_000 + b"]" * 100_000: "nested deeper than 8 levels",
    b'{"onset_frame": 5, "source": [1, 2], "points": ' + b"[" * 100_000 + b"]" * 100_000 + b"}": "nested deeper",
    # frame keys: canonical decimal only, within the run
    b'{"onset_frame": 5, "source": [1, 2], "points": {"040": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"\xd9\xa4\xd9\xa0": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"+40": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {" 40": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"40.0": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"60": [[1, 2]]}}': "points[60] 60 outside the run's frames 0..59",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"' + b"9" * 5000 + b'": [[1, 2]]}}': "not a frame number",
    b'{"onset_frame": 5, "source": [1, 2], "points": {"40": [[1, 2]], "40": [[3, 4]]}}': "key '40' given twice",
    b'{"onset_frame": 5, "onset_frame": 6, "source": null}': "key 'onset_frame' given twice",
}


@pytest.mark.parametrize("body", list(BAD_BODIES))
def test_bad_body_gets_400_with_one_line_and_writes_nothing(server, run_dir, body):
    status, data, _ = request(server, "POST", "/api/labels", body)
    assert status == 400
    text = data.decode()
    assert text.endswith("\n") and "\n" not in text[:-1]
    assert BAD_BODIES[body] in text
    assert not (run_dir / "labels.json").exists()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_canonical_frame_keys_are_accepted(server, run_dir):
    body = {"onset_frame": 0, "source": [1.0, 2.0], "points": {"0": [[1.0, 2.0]], "40": [[3.0, 4.0]], "59": [[5.0, 6.0]]}}
    status, data, _ = request(server, "POST", "/api/labels", json.dumps(body).encode())
    assert status == 200, data
    assert json.loads((run_dir / "labels.json").read_text()) == body


def test_post_needs_json_content_type(server, run_dir):
    status, data, _ = request(server, "POST", "/api/labels", b'{"onset_frame": null, "source": null}',
                              headers={"Content-Type": "text/plain"})
    assert status == 400 and b"application/json" in data
    assert not (run_dir / "labels.json").exists()


TRAVERSALS = ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt",
              "/video.mp4/../../secret.txt", "//secret.txt", "/static/../../secret.txt",
              "/api/../../secret.txt", "/result.json", "/overlay.mp4", "/labels.json",
              "/review.js/..%2f..%2fserver.py", "/%2e%2e%2f%2e%2e%2fsecret.txt", "/results.jsonl",
              "/static/review.js", "/..\\secret.txt", "/video.mp4%00.txt"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_outside_the_fixed_routes(server, run_dir, path):
    (run_dir.parent / "secret.txt").write_text("SECRET")
    for method in ("GET", "HEAD"):
        status, data, _ = request(server, method, path)
        assert status == 404 and b"SECRET" not in data
    status, _, _ = request(server, "POST", path, b'{"onset_frame": null, "source": null}')
    assert status == 404
    assert (run_dir.parent / "secret.txt").read_text() == "SECRET"
    assert not (run_dir / "labels.json").exists()


def test_other_host_names_are_refused(server):
    status, data, _ = request(server, "GET", "/api/result", headers={"Host": "attacker.example:8765"})
    assert status == 403 and b"127.0.0.1" in data
    assert request(server, "GET", "/api/result", headers={"Host": f"localhost:{server.server_address[1]}"})[0] == 200


def test_symlinks_leading_out_of_run_dir_are_refused(tmp_path):
    run = make_run(tmp_path, n=10, onset=5)
    outside = tmp_path / "elsewhere.mp4"
    (run / "overlay.mp4").rename(outside)
    (run / "overlay.mp4").symlink_to(outside)
    with pytest.raises(InputError, match="symlink"):
        ReviewRun(run)


def test_labels_symlink_planted_later_is_not_written_through(server, run_dir, tmp_path):
    target = tmp_path / "victim.json"
    target.write_text("{}")
    (run_dir / "labels.json").symlink_to(target)
    status, data, _ = request(server, "POST", "/api/labels", b'{"onset_frame": null, "source": null}')
    assert status == 500 and b"symlink" in data
    assert target.read_text() == "{}"


def test_cli_review_errors_are_one_line(tmp_path):
    from bleedorigin.cli import main
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        main(["review", str(empty)])
    assert e.value.code == 2


def test_saved_labels_keep_point_geometry(server):
    run = server.run
    labels = run.save_labels(json.dumps({"onset_frame": 0, "source": [-0.5, H - 0.5],
                                         "points": {"30": [[W - 0.5, 0], [1, 1]]}}).encode())
    assert labels["points"]["30"] == [[W - 0.5, 0.0], [1.0, 1.0]]


# ---- headers, origin, time-outs and exact bodies ---------------------------------------------

def raw(srv: ReviewServer, data: bytes, half_close: bool = True) -> bytes:
    """Send `data` as it is on a fresh connection, optionally end the sending side, and read the
    whole answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def post_raw(srv: ReviewServer, body: bytes, length: str | None = None, extra: str = "") -> bytes:
    port = srv.server_address[1]
    head = (f"POST /api/labels HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\n{extra}")
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + body


def status_and_line(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    text = body.decode()
    assert text.endswith("\n") and "\n" not in text[:-1], answer  # one line
    return int(head.split()[1]), text


def assert_protected(headers: dict) -> None:
    csp = headers.get("Content-Security-Policy", "")
    assert headers.get("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("method,path,body,hdrs", [
    ("GET", "/", None, {}), ("GET", "/review.js", None, {}), ("GET", "/review.css", None, {}),
    ("GET", "/api/result", None, {}), ("GET", "/api/labels", None, {}), ("GET", "/api/video", None, {}),
    ("GET", "/video.mp4", None, {}), ("GET", "/video.mp4", None, {"Range": "bytes=0-9"}),
    ("GET", "/video.mp4", None, {"Range": "bytes=999999999-"}), ("HEAD", "/", None, {}),
    ("GET", "/nope", None, {}), ("GET", "/", None, {"Host": "evil.example"}),
    ("POST", "/api/labels", b"{", {}), ("POST", "/api/labels", b"{}", {"Origin": "http://evil.example"}),
    ("PUT", "/api/labels", b"{}", {}), ("OPTIONS", "/api/labels", None, {})])
def test_every_answer_forbids_framing_and_sniffing(server, method, path, body, hdrs):
    status, _, headers = request(server, method, path, body, hdrs)
    assert_protected(headers)


def test_http_servers_own_errors_are_one_line_and_protected(server):
    answer = raw(server, f"BREW / HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\n\r\n".encode())
    status, line = status_and_line(answer)
    assert status == 501 and "BREW" in line
    head = answer.partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    assert_protected(dict(h.split(": ", 1) for h in head))


def test_page_runs_no_inline_script_or_style():
    """The page works under the strict CSP (no 'unsafe-inline'): every script and style is a file."""
    from importlib import resources
    page = resources.files("bleedorigin.review").joinpath("static", "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/review.js">']
    assert "</script>" in page and re.search(r"<script[^>]*>\s*</script>", page)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", page, re.I)


def test_post_needs_the_servers_own_origin(server, run_dir):
    port = server.server_address[1]
    body = b'{"onset_frame": null, "source": null}'
    for bad in (None, "http://evil.example", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port + 1}",
                "null", f"https://127.0.0.1:{port}", f"http://127.0.0.1:{port}.evil.example"):
        hdrs = {"Content-Type": "application/json"} | ({"Origin": bad} if bad else {})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/labels", body=body, headers=hdrs)
        resp = conn.getresponse()
        status, text = resp.status, resp.read().decode()
        assert status == 403 and text.count("\n") == 1 and "Origin" in text, (bad, text)
        assert not (run_dir / "labels.json").exists()
    for good in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        assert request(server, "POST", "/api/labels", body, {"Origin": good})[0] == 200


def test_host_must_name_the_servers_own_port(server, run_dir):
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port + 1}", "127.0.0.1", f"localhost.evil.example:{port}"):
        for method, body in (("GET", None), ("POST", b'{"onset_frame": null, "source": null}')):
            status, data, _ = request(server, method, "/api/result", body, {"Host": host})
            assert status == 403, (host, method)
    assert not (run_dir / "labels.json").exists()


def test_half_sent_requests_are_dropped_after_the_time_out(run_dir):
    """30 connections that never finish their request (headers or body half sent, or nothing)
    are all closed after the time-out, and the server answers others all along."""
    from bleedorigin.review.server import TIMEOUT
    assert TIMEOUT <= 10  # the shipped value: a few seconds
    srv = ReviewServer(ReviewRun(run_dir), 0, timeout=1.0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = srv.server_address[1]
    halves = [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1", post_raw(srv, b'{"onset_frame": nu', length="37")]
    socks = []
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(halves[i % 3])
            socks.append(s)
        assert request(srv, "GET", "/api/video")[0] == 200  # not blocked by the 30 others
        t0 = time.monotonic()
        for s in socks:  # each is answered (408/400) or closed, then reads end: b""
            s.settimeout(max(0.1, t0 + 4 - time.monotonic()))
            while s.recv(65536):
                pass
        assert time.monotonic() - t0 < 4
    finally:
        for s in socks:
            s.close()
        srv.shutdown()
        srv.server_close()
    assert not (run_dir / "labels.json").exists()


def test_body_shorter_than_its_content_length_is_not_saved(server, run_dir):
    body = b'{"onset_frame": null, "source": null}'
    status, line = status_and_line(raw(server, post_raw(server, body[:-1], length=str(len(body)))))
    assert status == 400 and "shorter than its Content-Length" in line
    assert not (run_dir / "labels.json").exists()
    answer = raw(server, post_raw(server, body, length=str(len(body))))  # the whole body: saved
    assert answer.startswith(b"HTTP/1.1 200") and (run_dir / "labels.json").exists()


@pytest.mark.parametrize("length,extra,message", [
    (None, "", "Content-Length"), ("+37", "", "Content-Length"), ("3_7", "", "Content-Length"),
    ("\u0663\u0667", "", "Content-Length"), ("-1", "", "Content-Length"),
    ("37", "Content-Length: 37\r\n", "Content-Length"), ("37", "Transfer-Encoding: chunked\r\n", "Transfer-Encoding"),
    (str(2 << 20), "", "at most")])
def test_content_length_must_be_one_plain_number_within_the_cap(server, run_dir, length, extra, message):
    body = b'{"onset_frame": null, "source": null}'
    status, line = status_and_line(raw(server, post_raw(server, body, length=length, extra=extra)))
    assert status == 400 and message in line
    assert not (run_dir / "labels.json").exists()


# ---- no symlink followed on any route ----------------------------------------------------------

@pytest.fixture
def own_server(tmp_path):
    """A server on its own run (the test may replace its files)."""
    run = make_run(tmp_path, n=10, onset=5)
    srv = ReviewServer(ReviewRun(run), 0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv, run
    srv.shutdown()
    srv.server_close()


LABELS_OUTSIDE = b'{"onset_frame": 3, "source": [1.0, 2.0], "points": {"7": [[7.0, 7.0]]}}'


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_get_labels_follows_no_symlink(own_server, tmp_path, where):
    srv, run = own_server
    target = (tmp_path if where == "outside" else run) / "other.json"
    target.write_bytes(LABELS_OUTSIDE)
    (run / "labels.json").symlink_to(target)
    status, data, _ = request(srv, "GET", "/api/labels")
    assert status == 500 and b"symlink" in data and b"7.0" not in data
    with pytest.raises(InputError, match="symlink"):  # and a restart refuses it too
        ReviewRun(run)


@pytest.mark.parametrize("name,route", [("overlay.mp4", "/video.mp4"), ("result.json", "/api/result")])
def test_run_files_replaced_by_symlinks_are_not_served(own_server, tmp_path, name, route):
    srv, run = own_server
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b'{"SECRET": 1}')
    (run / name).unlink()
    (run / name).symlink_to(secret)
    for method in ("GET", "HEAD"):
        status, data, _ = request(srv, method, route)
        assert status == 500 and b"SECRET" not in data


def test_static_files_that_are_symlinks_are_not_served(tmp_path, monkeypatch):
    from bleedorigin.review import server as server_mod
    static = tmp_path / "static"
    shutil.copytree(server_mod.STATIC_DIR, static)
    (tmp_path / "secret.js").write_text("SECRET")
    (static / "review.js").unlink()
    (static / "review.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setattr(server_mod, "STATIC_DIR", static)
    srv = ReviewServer(ReviewRun(make_run(tmp_path, n=10, onset=5)), 0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        assert request(srv, "GET", "/")[0] == 200
        status, data, _ = request(srv, "GET", "/review.js")
        assert status == 500 and b"SECRET" not in data
    finally:
        srv.shutdown()
        srv.server_close()


def test_oversized_labels_json_is_not_read_whole(own_server):
    from bleedorigin.review.server import MAX_BODY
    srv, run = own_server
    (run / "labels.json").write_bytes(b" " * (MAX_BODY + 1) + b"{}")
    status, data, _ = request(srv, "GET", "/api/labels")
    assert status == 500 and b"larger than" in data


def test_labels_fifo_does_not_hang_the_server(own_server):
    srv, run = own_server
    os.mkfifo(run / "labels.json")
    status, data, _ = request(srv, "GET", "/api/labels")
    assert status == 500 and b"not a regular file" in data


def test_labels_symlink_inside_the_run_is_not_replaced(own_server):
    srv, run = own_server
    (run / "mine.json").write_bytes(LABELS_OUTSIDE)
    (run / "labels.json").symlink_to(run / "mine.json")
    status, data, _ = request(srv, "POST", "/api/labels", b'{"onset_frame": null, "source": null}')
    assert status == 500 and b"symlink" in data
    assert (run / "labels.json").is_symlink() and (run / "mine.json").read_bytes() == LABELS_OUTSIDE
