"""MLLM source baseline: prompt, strict answer parser, and the client against a local server."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.models import registry
from bleedorigin.models.baselines.mllm import (OUTPUT_FORMAT, PROMPT, MLLMClient, answer_to_point,
                                               parse_answer)

GOOD = "img_w:1024, img_h:960, point_x:290, point_y:633, point_ratio_x:0.283, point_ratio_y:0.655"


def test_prompt_has_four_parts_and_exact_format():
    assert PROMPT.count(OUTPUT_FORMAT) == 1 and PROMPT.rstrip().endswith(OUTPUT_FORMAT)
    for cue in ("endoscopic submucosal dissection", "dark red", "divided by", "no explanation"):
        assert cue in PROMPT


@pytest.mark.parametrize("text, expected", [
    (GOOD, (0.283 * 1240, 0.655 * 1080)),  # Figure 8: ratios times the real image size
    (f"  `{GOOD}`\n", (0.283 * 1240, 0.655 * 1080)),
    (f'"{GOOD}."', (0.283 * 1240, 0.655 * 1080)),
    ("img_w: 1000,img_h:1000 , point_x:362, point_y:606, point_ratio_x:0.362, point_ratio_y:0.606",
     (0.362 * 1240, 0.606 * 1080)),
    ("img_w:10, img_h:10, point_x:10, point_y:10, point_ratio_x:1, point_ratio_y:1", (1239.0, 1079.0)),
])
def test_parse_and_map_with_ratios(text, expected):
    p = answer_to_point(parse_answer(text), (1240, 1080))
    assert (p.x, p.y) == pytest.approx(expected)


@pytest.mark.parametrize("text, match", [
    ("The bleeding point is at (290, 633).", "malformed"),
    ("img_w:1024, img_h:960, point_x:290, point_y:633, point_ratio_x:0.283", "malformed"),  # missing key
    ("img_h:960, img_w:1024, point_x:290, point_y:633, point_ratio_x:0.283, point_ratio_y:0.655", "malformed"),
    (GOOD + "\nimg_w:1, img_h:1, point_x:0, point_y:0, point_ratio_x:0, point_ratio_y:0", "malformed"),
    ("img_w:1024, img_h:960, point_x:a, point_y:633, point_ratio_x:0.283, point_ratio_y:0.655", "malformed"),
    ("img_w:0, img_h:960, point_x:0, point_y:633, point_ratio_x:0.0, point_ratio_y:0.655", "image size"),
    ("img_w:1024, img_h:960, point_x:2900, point_y:633, point_ratio_x:2.83, point_ratio_y:0.655", "outside"),
    ("", "malformed"),
])
def test_malformed_answers_raise(text, match):
    with pytest.raises(InputError, match=match):
        parse_answer(text)


class _Handler(BaseHTTPRequestHandler):
    answers: list = []
    seen: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        kind, payload = self.answers.pop(0)
        if kind == "sleep":
            time.sleep(payload)
            kind, payload = "ok", GOOD
        if kind == "status":
            self.send_response(payload)
            self.end_headers()
            return
        data = (json.dumps({"choices": [{"message": {"role": "assistant", "content": payload}}]})
                if kind == "ok" else payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.answers, _Handler.seen = [], []
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", _Handler
    srv.shutdown()
    srv.server_close()


def test_locator_against_local_server(server, monkeypatch):
    url, handler = server
    import bleedorigin.models.baselines.mllm  # noqa: F401  registers source_mllm
    monkeypatch.setenv("TEST_MLLM_KEY", "sk-local")
    loc = registry.create("source_mllm", endpoint=url, model="qwen2.5-vl", api_key_env="TEST_MLLM_KEY", timeout=5)
    handler.answers.append(("ok", GOOD))
    frame = np.zeros((384, 512, 3), np.uint8)
    p = loc.locate(frame)
    assert (p.x, p.y) == pytest.approx((0.283 * 512, 0.655 * 384))
    req = handler.seen[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-local"
    assert req["body"]["model"] == "qwen2.5-vl"
    text, image = req["body"]["messages"][0]["content"]
    assert text["text"] == PROMPT
    url_data = image["image_url"]["url"]
    assert url_data.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url_data.split(",", 1)[1])[:2] == b"\xff\xd8"  # a JPEG


@pytest.mark.parametrize("answer, match", [
    (("ok", "I think it is near the middle."), "malformed"),
    (("status", 500), "HTTP 500"),
    (("raw", "not json"), "not JSON"),
    (("raw", json.dumps({"choices": []})), "no choices"),
    (("sleep", 1.0), "timed out"),
])
def test_client_errors_are_one_line_input_errors(server, answer, match):
    url, handler = server
    handler.answers.append(answer)
    client = MLLMClient(url, "m", api_key_env="", timeout=0.3)
    with pytest.raises(InputError, match=match):
        text = client.ask(np.zeros((32, 32, 3), np.uint8))
        parse_answer(text)


def test_factory_needs_an_http_endpoint():
    import bleedorigin.models.baselines.mllm  # noqa: F401
    with pytest.raises(ConfigError, match="needs an endpoint"):
        registry.create("source_mllm")
    with pytest.raises(ConfigError, match="http"):
        registry.create("source_mllm", endpoint="ftp://127.0.0.1/v1")
