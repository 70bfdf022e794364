"""`PointTracker`: the streaming predictor around TrackOnSmall (input pixels in and out).

Frames of any size are resized to the model's 512x384; points map with the half-pixel-centre
convention (x_model = (x + 0.5) * 512 / W - 0.5). The network state is held here between
calls; the network itself stays stateless.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from bleedorigin import MODEL_SIZE
from bleedorigin.config import from_dict
from bleedorigin.errors import InputError
from bleedorigin.io.video import FrameMapper
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.backbones.cnn import SepBlock, fallback_red_mask, red_mask
from bleedorigin.models.track.learned.memory import TrackState
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.vision.motion import MotionHint, check_hint_mode
from bleedorigin.types import TrackPoint
from bleedorigin.models.weights import find_weights, resolve_device
from bleedorigin.io.checkpoint import build_model, load_checkpoint

log = logging.getLogger(__name__)

WEIGHTS_FOLDER = "track_small"
BLOOD_WINDOW = 16  # half-width (model px) of the window whose blood share `blood_fallback` reads
BLOOD_PIXEL = 0.5  # Red-Mask value above which a pixel counts as blood
# the tiny `track_test` preset (same as configs/track_test.yaml `model:`), random weights, seed 0
TEST_MODEL: dict[str, Any] = {"dim": 32, "heads": 2, "layers": 1, "ffn": 64, "memory": 4, "topk": 4, "c4": 8,
                              "c8": 16, "c16": 16, "feat_dim": 16, "corr_dim": 16, "red_dim": 4,
                              "red_mask_source": "fallback", "refresh_every": 6}


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm into the preceding convolution (inference only; ~15 % faster)."""
    def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
        bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)

    for mod in net.modules():
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv2d) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    fold(mod[i], mod[i + 1])
                    mod[i + 1] = nn.Identity()
        elif isinstance(mod, SepBlock) and isinstance(mod.bn, nn.BatchNorm2d):
            fold(mod.pw, mod.bn)
            mod.bn = nn.Identity()
    return net


def load_tracker_net(name_or_path: str | Path = "small") -> tuple[TrackOnSmall, dict[str, Any], Path]:
    """The trained network of a tracker checkpoint folder (or "small"), its config.json and folder."""
    folder = find_weights(name_or_path, WEIGHTS_FOLDER)
    config, state = load_checkpoint(folder, stage="track")
    cfg = from_dict(TrackerConfig, config.get("model", {}), f"{folder}/config.json model")
    net = build_model(folder, lambda: TrackOnSmall(cfg), state)
    return net, config, folder


def blood_share(mask: np.ndarray, points: np.ndarray, half: int = BLOOD_WINDOW) -> np.ndarray:
    """Share of blood pixels (Red-Mask > BLOOD_PIXEL) in the window around each point (K, 2)."""
    h, w = mask.shape
    out = np.zeros(len(points))
    for i, (x, y) in enumerate(np.round(points).astype(int)):
        win = mask[max(0, y - half):min(h, y + half + 1), max(0, x - half):min(w, x + half + 1)]
        out[i] = float((win > BLOOD_PIXEL).mean()) if win.size else 0.0
    return out


class PointTracker(PointTrackerBase):
    """Online tracker of one or several points. `start(frame, (x, y))`, then `step(frame)`."""

    name = "track"

    def __init__(self, net: TrackOnSmall, device: str | torch.device = "auto", model_id: str = "track",
                 visible_threshold: float = 0.5, motion_hint: bool = False, flow_fallback: float = 0.0,
                 blood_fallback: float = 0.0, **overrides: Any):
        """`motion_hint`: centre the network's motion prior on the last point carried by DIS flow
        (camera motion) instead of the last point itself. `flow_fallback`: below this confidence
        the flow-carried point replaces the network's answer (0: never). `blood_fallback`: when
        more than this share of the window around the flow-carried point is blood, that point
        replaces the network's answer (0: never): blood hides the tissue's texture and spreads on
        its own, so there the network follows the pool, while the tissue under it moves with the
        scene. A network trained with `motion_mix` (config) gets the flow-carried point as a
        second prior centre."""
        self.device = resolve_device(device)
        if overrides:  # e.g. refresh_every=30: thresholds/periods are read from cfg at run time
            net.cfg = dataclasses.replace(net.cfg, **overrides)
        net = net.eval()
        self.net = fold_batchnorm(copy.deepcopy(net)).to(self.device).eval()
        self.cfg: TrackerConfig = self.net.cfg
        check_hint_mode(self.cfg.hint_mode)  # also when no hint runs: a typo is an error, not ignored
        self.motion_hint, self.flow_fallback, self.blood_fallback = motion_hint, flow_fallback, blood_fallback
        needs_motion = motion_hint or self.cfg.motion_mix or flow_fallback > 0 or blood_fallback > 0
        self.motion = MotionHint(self.cfg.hint_mode) if needs_motion else None
        self.model_id = model_id
        self.visible_threshold = visible_threshold
        self.state: TrackState | None = None
        self.frame_index = 0
        self.in_size: tuple[int, int] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "small", device: str = "auto", label: str = "track",
                        **overrides: Any) -> PointTracker:
        """`overrides` win over the run-time settings a fine-tuned checkpoint carries ("runtime");
        `label` names the configuration in the model id (`label:folder@checksum`)."""
        net, config, folder = load_tracker_net(name_or_path)
        settings = {**config.get("runtime", {}), **overrides}
        return cls(net, device, model_id=f"{label}:{folder.name}@{config['checksum'][:12]}", **settings)

    @classmethod
    def tiny(cls, device: str = "cpu", seed: int = 0, **overrides: Any) -> PointTracker:
        """The `track_test` preset: tiny random network with a fixed seed (tests, plumbing)."""
        torch.manual_seed(seed)
        return cls(TrackOnSmall(TrackerConfig(**TEST_MODEL)), device, model_id="track:test", **overrides)

    # ------------------------------------------------------------------ frames and points
    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """The frame at the model size, its Red-Mask and the network input (1, 4, H, W)."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"expected an RGB uint8 frame (H, W, 3), got {getattr(frame, 'shape', None)} "
                             f"{getattr(frame, 'dtype', None)}")
        size = (frame.shape[1], frame.shape[0])
        if self.in_size is not None and size != self.in_size:
            raise InputError(f"frame size changed from {self.in_size} to {size} while tracking")
        small = frame if size == MODEL_SIZE else cv2.resize(frame, MODEL_SIZE, interpolation=cv2.INTER_AREA)
        mask = fallback_red_mask(small) if self.cfg.red_mask_source == "fallback" else red_mask(small)
        rgb = torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1).float().mul_(1 / 255)
        x = torch.cat([rgb, torch.from_numpy(mask)[None]], 0)
        return small, mask, x[None].to(self.device)

    def _to_model(self, xy: np.ndarray) -> np.ndarray:
        assert self.in_size is not None
        return FrameMapper(self.in_size).to_model(xy)

    def _to_input(self, xy: np.ndarray) -> np.ndarray:
        assert self.in_size is not None
        return FrameMapper(self.in_size).to_input(xy)

    # ------------------------------------------------------------------ API
    def reset(self) -> None:
        self.state, self.in_size, self.frame_index = None, None, 0
        if self.motion is not None:
            self.motion.reset()

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.start_many(frame, [point], frame_index)

    def step(self, frame: np.ndarray) -> TrackPoint:
        return self.step_many(frame)[0]

    @torch.inference_mode()
    def start_many(self, frame: np.ndarray, points: Sequence[tuple[float, float]], frame_index: int = 0) -> None:
        """Start tracking several points (x, y) on `frame` (input pixels)."""
        self.reset()
        h, w = frame.shape[:2] if isinstance(frame, np.ndarray) and frame.ndim == 3 else (0, 0)
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            raise InputError("start_many: no points given")
        bad = ~((pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5))
        if bad.any():
            raise InputError(f"point {tuple(pts[bad][0])} is outside the {w}x{h} frame")
        small, _, x = self._prepare(frame)
        self.in_size = (w, h)
        xy = torch.from_numpy(self._to_model(pts)).float()[None].to(self.device)
        self.state = self.net.start(x, xy)
        self.frame_index = int(frame_index)
        if self.motion is not None:
            self.motion.carry(small, self._to_model(pts))

    @torch.inference_mode()
    def step_many(self, frame: np.ndarray) -> list[TrackPoint]:
        if self.state is None:
            raise InputError("PointTracker.step() called before start()")
        small, mask, x = self._prepare(frame)
        carried = hint = None
        if self.motion is not None:
            carried = self.motion.carry(small, self.state.last_xy[0].cpu().double().numpy())
            if self.motion_hint:  # the carried point replaces the last one as the prior centre
                self.state = self.state._replace(last_xy=torch.from_numpy(carried).float()[None].to(self.device))
            elif self.cfg.motion_mix:  # the carried point is a second prior centre
                hint = torch.from_numpy(carried).float()[None].to(self.device)
        pts, vis, conf, self.state = self.net.step(x, self.state, hint)
        self.frame_index += 1
        model_xy = pts[0].cpu().double().numpy()
        v, c = vis[0].cpu().numpy(), conf[0].cpu().numpy()
        if carried is not None and (self.flow_fallback > 0 or self.blood_fallback > 0):
            carried = np.clip(carried, 0, np.array(MODEL_SIZE) - 1)
            take = c < self.flow_fallback
            if self.blood_fallback > 0:
                take |= blood_share(mask, carried) > self.blood_fallback
            if take.any():
                model_xy = np.where(take[:, None], carried, model_xy)
                fixed = torch.from_numpy(model_xy).float()[None].to(self.device)
                self.state = self.state._replace(last_xy=fixed)
        xy = self._to_input(model_xy)
        return [TrackPoint(self.frame_index, float(p[0]), float(p[1]), float(ci), bool(vi > self.visible_threshold))
                for p, vi, ci in zip(xy, v, c)]

    def run(self, frames: Sequence[np.ndarray] | np.ndarray, point: tuple[float, float]) -> list[TrackPoint]:
        """Track `point` from frames[0] through the rest (convenience for tests and scripts)."""
        self.start(frames[0], point, 0)
        return [self.step(f) for f in frames[1:]]
