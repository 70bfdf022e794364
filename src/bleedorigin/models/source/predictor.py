"""`SourceLocator`: RGB frame (any size) -> bleeding source Point in input pixels.

Preprocessing (resize to the network size, Red-Mask) lives here and is shared with training,
so the network sees identical inputs in both.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from bleedorigin.config import from_dict
from bleedorigin.errors import ConfigError, InputError
from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import SourceLocatorBase, allowed
from bleedorigin.models.source.model import SourceConfig, SourceNet, refined_peak
from bleedorigin.models.weights import find_weights, resolve_device
from bleedorigin.types import Point
from bleedorigin.vision.color import field_of_view, red_mask
from bleedorigin.io.checkpoint import build_model, load_checkpoint

log = logging.getLogger(__name__)

WEIGHTS_FOLDER = "source_small"


def compute_red_mask(rgb: np.ndarray, impl: str = "local") -> np.ndarray:
    """The Red-Mask named by the config. "local" (older checkpoints) and "vision" name the same
    function, `bleedorigin.vision.color.red_mask`."""
    if impl not in ("local", "vision"):
        raise ConfigError(f"unknown red_mask implementation {impl!r}; use 'local' or 'vision'")
    return red_mask(rgb)


def check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"expected an RGB uint8 frame (H, W, 3), got {getattr(frame, 'shape', None)} "
                         f"{getattr(frame, 'dtype', None)}")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InputError(f"frame of {frame.shape[1]}x{frame.shape[0]} px is too small")
    return frame


def prepare(frame: np.ndarray, cfg: SourceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frame -> (image (3, h, w) float32 in [0, 1], red mask (1, h, w)) at cfg.input_size."""
    size = tuple(cfg.input_size)
    small = frame if frame.shape[1::-1] == size else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    img = small.transpose(2, 0, 1).astype(np.float32) * (1 / 255)
    return img, compute_red_mask(small, cfg.red_mask)[None]


def to_model(xy: np.ndarray, in_size: tuple[int, int], model_size: tuple[int, int]) -> np.ndarray:
    """Input pixels -> network pixels (the half-pixel convention of io.video.FrameMapper)."""
    return FrameMapper(in_size, model_size).to_model(xy)


def to_input(xy: np.ndarray, in_size: tuple[int, int], model_size: tuple[int, int]) -> np.ndarray:
    return FrameMapper(in_size, model_size).to_input(xy)


class SourceLocator(SourceLocatorBase):
    """Bleeding source on one frame (the onset frame in deployment mode).

    `history` is accepted for the interface but unused: the paper's localizer works on a
    single frame (`source_evidence` uses it). `last_heatmap` keeps the fused heat-map (network resolution) for overlays.
    """

    name = "source"

    def __init__(self, net: SourceNet, device: str | torch.device = "auto", model_id: str = "source"):
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.net = net.to(self.device).eval()
        self.cfg: SourceConfig = net.cfg
        self.model_id = model_id
        self.last_heatmap: np.ndarray | None = None
        self.timings_ms: dict[str, float] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "small", device: str = "auto") -> SourceLocator:
        folder = find_weights(name_or_path, WEIGHTS_FOLDER)
        config, state = load_checkpoint(folder, stage="source")
        cfg = from_dict(SourceConfig, {**config.get("model", {}), "pretrained": ""},
                        f"{folder}/config.json model")  # the trained weights already include the encoder
        net = build_model(folder, lambda: SourceNet(cfg), state)
        return cls(net, device, model_id=f"source:{folder.name}@{config['checksum'][:12]}")

    @classmethod
    def from_config(cls, cfg: SourceConfig, device: str = "cpu", seed: int = 0,
                    model_id: str = "source:random") -> SourceLocator:
        """A randomly initialised network (tests, `source_test`, `source_paper` before training)."""
        torch.manual_seed(seed)
        return cls(SourceNet(cfg), device, model_id=model_id)

    @torch.inference_mode()
    def heatmap(self, frame: np.ndarray) -> torch.Tensor:
        """Fused heat-map logits (1, 1, h, w) at the network resolution."""
        img, red = prepare(check_frame(frame), self.cfg)
        x = torch.from_numpy(img)[None].to(self.device)
        r = torch.from_numpy(red)[None].to(self.device)
        return self.net(x, r)

    @torch.inference_mode()
    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:
        t0 = time.perf_counter()
        logits = self.heatmap(frame)  # also validates the frame
        # the source is inside the lit field of view, never on the black field stop around it
        h, w = logits.shape[-2:]
        fov = field_of_view(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))
        keep = allowed(exclude, (w, h))
        if keep is not None and (fov & keep).any():  # nor on old blood
            fov &= keep
        logits = logits.masked_fill(torch.from_numpy(~fov).to(logits.device), -1e4)
        xy, conf = refined_peak(logits, self.cfg.refine_radius)
        self.last_heatmap = torch.sigmoid(logits[0, 0]).cpu().numpy()
        in_size = (frame.shape[1], frame.shape[0])
        x, y = to_input(xy[0].cpu().numpy(), in_size, tuple(self.cfg.input_size))
        self.timings_ms = {"source": (time.perf_counter() - t0) * 1e3}
        return Point(float(np.clip(x, 0, in_size[0] - 1)), float(np.clip(y, 0, in_size[1] - 1)), float(conf[0]))
