"""Shared fixtures: tiny synthetic clips with known truth, built in tmp_path in well under a second."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

# The real clips: $BLEEDORIGIN_SHARED_DATA, else ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get("BLEEDORIGIN_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: use --runslow")
    skip_real = pytest.mark.skip(reason=f"real data not found at {SHARED_DATA}")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "real" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_real)


# The CLI's thread budget (--threads) defaults to this: one thread per test process, and per
# subprocess a test starts, for the reason below.
os.environ.setdefault("BLEEDORIGIN_THREADS", "1")

from bleedorigin.models.base import OnsetDetectorBase, OnsetStep  # after the thread budget is set


class RaiseAt(OnsetDetectorBase):
    """A stub onset detector: raises at stream frame `at`, placing the onset `back` frames earlier
    (`back` = `at`: a stream picked up mid-bleed, back-dated to frame 0)."""

    score_threshold = 0.5

    def __init__(self, at: int, back: int):
        self.at, self.back, self.t = at, back, 0

    def reset(self) -> None:
        self.t = 0

    def step(self, frame: np.ndarray) -> OnsetStep:
        t, self.t = self.t, self.t + 1
        return OnsetStep(1.0, t - self.back) if t == self.at else OnsetStep(0.0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # tiny models on a busy 2-core machine: extra intra-op threads only spin (500 ms vs 8 ms/step)
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _input_cap_reset():
    # the CLI sets the input size cap for its process (`--max-pixels`); a test that runs the CLI
    # in-process must not leave its cap to the tests after it
    from bleedorigin.io.video import set_max_pixels
    yield
    set_max_pixels(None)


def load_tool(name: str):
    """The module of tools/NAME.py (maintainer scripts are not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@dataclass
class TinyClip:
    path: Path
    frames: np.ndarray  # (T, H, W, 3) RGB uint8 as written (before compression)
    onset_frame: int  # first frame with the red disc
    path_xy: np.ndarray  # (T, 2) disc centre per frame (x, y), also before the onset
    fps: float


def make_tiny_frames(n: int = 24, size: tuple[int, int] = (64, 48), onset: int = 8,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured pink background drifting right by 0.5 px/frame; a dark-red disc grows from
    `onset` at a point moving with the background. Returns frames and the disc centre path."""
    w, h = size
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 40, size=(h, w + n), dtype=np.int16)
    big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1)) // 3  # a little spatial correlation
    frames, path = [], []
    for t in range(n):
        shift = t * 0.5
        x0 = n - int(shift)  # a window sliding left over the texture moves its content right
        tex = big[:, x0:x0 + w]
        img = np.stack([190 + tex, 130 + tex, 140 + tex], -1).clip(0, 255).astype(np.uint8)
        cx, cy = w * 0.4 + shift, h * 0.5
        if t >= onset:
            r = 3 + (t - onset) * 0.6
            yy, xx = np.mgrid[:h, :w]
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            img[disc] = (120, 10, 15)
        frames.append(img)
        path.append((cx, cy))
    return np.stack(frames), np.array(path, dtype=np.float64)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 30, faststart: bool = False) -> None:
    """H.264 mp4; `faststart` puts the index first, so a truncated copy still opens."""
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def tiny_clip(tmp_path: Path) -> TinyClip:
    frames, path_xy = make_tiny_frames()
    video = tmp_path / "tiny.mp4"
    write_mp4(video, frames)
    return TinyClip(video, frames, 8, path_xy, 30.0)
