"""MLLM baseline for the bleeding source (paper section 5.3.2, Figure 8).

A multimodal chat model behind any OpenAI-compatible `/chat/completions` endpoint is asked,
with a four-part prompt, for the source point. Because such models often resize the image
internally, the answer carries the image size the model saw and normalised coordinates; the
point is mapped to the real image with the ratios, as the paper does.

Only the standard library talks to the network (urllib), and only to the endpoint the user
gives; the API key is read from an environment variable, never stored.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.registry import register_model
from bleedorigin.types import Point

log = logging.getLogger(__name__)

OUTPUT_FORMAT = ("img_w:value, img_h:value, point_x:value, point_y:value, "
                 "point_ratio_x:value, point_ratio_y:value")

# The four parts of Figure 8, in our own words.
TASK_INSTRUCTION = (
    "The image is a frame from an endoscopic submucosal dissection (ESD) recorded during the "
    "operation. Find the single point where the bleeding starts (the bleeding source) in this frame. "
    "Look closely at the image and use the visual cues below. ")
VISUAL_GUIDANCE = (
    "1. The source lies in a dark red to deep crimson region. "
    "2. Blood may be spurting or seeping out of it. "
    "3. It is darker than the blood pooled around it and looks the most active. ")
OUTPUT_REQUIREMENTS = (
    "Report only: the width and height of the image as you see it, "
    "the pixel coordinates (x, y) of the bleeding source in that image, "
    "and the same coordinates divided by the width and the height (values between 0 and 1). ")
FORMAT_RESTRICTIONS = (
    "Keep the image at its size. Give exactly one point and no explanation. "
    "Answer with exactly this line: " + OUTPUT_FORMAT)

PROMPT = TASK_INSTRUCTION + VISUAL_GUIDANCE + OUTPUT_REQUIREMENTS + FORMAT_RESTRICTIONS

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_KEYS = ("img_w", "img_h", "point_x", "point_y", "point_ratio_x", "point_ratio_y")
_ANSWER = re.compile(r"\s*,\s*".join(rf"{k}\s*:\s*{_NUM}" for k in _KEYS))


@dataclass
class MLLMAnswer:
    img_w: float
    img_h: float
    point_x: float
    point_y: float
    ratio_x: float
    ratio_y: float


def parse_answer(text: str) -> MLLMAnswer:
    """The six numbers of an answer in OUTPUT_FORMAT; InputError on anything else.

    Accepted wrapping: surrounding whitespace, quotes or a code fence. Every key exactly once,
    in order; sizes positive; ratios in [0, 1].
    """
    if not isinstance(text, str):
        raise InputError(f"MLLM answer is not text: {type(text).__name__}")
    core = text.strip().strip("`").strip()
    if core.lower().startswith("text\n"):
        core = core[5:]
    core = core.strip().strip("\"'").strip().rstrip(".").strip()
    m = _ANSWER.fullmatch(core)
    if m is None:
        short = " ".join(text.split())[:120]
        raise InputError(f"malformed MLLM answer (expected '{OUTPUT_FORMAT}'): {short!r}")
    v = [float(g) for g in m.groups()]
    a = MLLMAnswer(*v)
    if a.img_w <= 0 or a.img_h <= 0:
        raise InputError(f"MLLM answer has a non-positive image size {a.img_w:g}x{a.img_h:g}")
    if not (0 <= a.ratio_x <= 1 and 0 <= a.ratio_y <= 1):
        raise InputError(f"MLLM answer ratios ({a.ratio_x:g}, {a.ratio_y:g}) are outside [0, 1]")
    if abs(a.point_x / a.img_w - a.ratio_x) > 0.05 or abs(a.point_y / a.img_h - a.ratio_y) > 0.05:
        log.warning("MLLM answer is inconsistent (point/size vs ratio); using the ratios")
    return a


def answer_to_point(answer: MLLMAnswer, image_size: tuple[int, int]) -> Point:
    """Map the normalised ratios to the real image (W, H): x = ratio_x * W, y = ratio_y * H."""
    w, h = image_size
    x = min(max(answer.ratio_x * w, 0.0), w - 1.0)
    y = min(max(answer.ratio_y * h, 0.0), h - 1.0)
    return Point(x, y, 1.0)  # chat models give no calibrated confidence


def chat_url(endpoint: str) -> str:
    """Accept a base URL (`http://host:port/v1`) or the full `/chat/completions` URL."""
    if not re.match(r"^https?://", endpoint or ""):
        raise ConfigError(f"MLLM endpoint must be an http(s) URL, got {endpoint!r}")
    url = endpoint.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def image_data_url(frame: np.ndarray, quality: int = 90) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("could not encode the frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class MLLMClient:
    """Minimal OpenAI-compatible chat-completions client (one user message: prompt + image)."""

    def __init__(self, endpoint: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, max_tokens: int = 100):
        self.url = chat_url(endpoint)
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_tokens = int(max_tokens)

    def request_body(self, frame: np.ndarray, prompt: str = PROMPT) -> dict[str, Any]:
        return {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": image_data_url(frame)}}]}]}

    def ask(self, frame: np.ndarray, prompt: str = PROMPT) -> str:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        else:
            log.info("no API key in $%s; sending the request without one", self.api_key_env)
        data = json.dumps(self.request_body(frame, prompt)).encode()
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise InputError(f"MLLM endpoint {self.url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise InputError(f"MLLM endpoint {self.url}: {reason}") from None
        except json.JSONDecodeError:
            raise InputError(f"MLLM endpoint {self.url}: response is not JSON") from None
        return _message_text(payload, self.url)


def _message_text(payload: Any, url: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise InputError(f"MLLM endpoint {url}: no choices[0].message.content in the response") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise InputError(f"MLLM endpoint {url}: message content is not text")
    return content


class MLLMSourceLocator(SourceLocatorBase):
    """`locate(frame)`: ask the chat model, parse strictly, map the ratios to input pixels."""

    name = "source_mllm"

    def __init__(self, client: MLLMClient):
        self.client = client
        self.model_id = f"source_mllm:{client.model}"
        self.last_answer: str | None = None

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:  # the chat model is not told (the paper's prompt)
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"expected an RGB uint8 frame (H, W, 3), got {getattr(frame, 'shape', None)}")
        self.last_answer = self.client.ask(frame)
        return answer_to_point(parse_answer(self.last_answer), (frame.shape[1], frame.shape[0]))


@register_model("source_mllm")
def source_mllm(endpoint: str = "", model: str = "gpt-4o", api_key_env: str = "OPENAI_API_KEY",
                timeout: float = 60.0) -> MLLMSourceLocator:
    if not endpoint:
        raise ConfigError("source_mllm needs an endpoint (an OpenAI-compatible URL, e.g. --endpoint http://host:8000/v1)")
    return MLLMSourceLocator(MLLMClient(endpoint, model, api_key_env, timeout))
