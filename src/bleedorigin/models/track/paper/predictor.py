"""`PaperTracker`: the streaming predictor around TrackPaper (input pixels in and out)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from bleedorigin.errors import InputError
from bleedorigin.models.base import PointTrackerBase
from bleedorigin.models.track.paper.model import TrackPaper, TrackState
from bleedorigin.models.weights import resolve_device
from bleedorigin.types import TrackPoint
from bleedorigin.vision.color import red_mask


class PaperTracker(PointTrackerBase):
    """`start(frame, (x, y))`, then `step(frame)`. Every `refresh_every` frames (paper 4.2: 60
    worked best) both memories are emptied and the queries re-sampled at the current points, so
    appearances from before the blood spread stop steering the queries (0: never)."""

    name = "track"

    def __init__(self, model: TrackPaper, device: str | torch.device = "auto", model_id: str = "track:paper",
                 refresh_every: int = 60):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.model_id = model_id
        self.refresh_every = refresh_every
        self.threshold = model.net.cfg.visibility_threshold
        self.state: TrackState | None = None
        self.points: np.ndarray | None = None
        self.frame_index = 0
        self.since_refresh = 0
        self.in_size: tuple[int, int] | None = None

    def _tensor(self, frame: np.ndarray) -> torch.Tensor:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"expected an RGB uint8 frame (H, W, 3), got {getattr(frame, 'shape', None)} "
                             f"{getattr(frame, 'dtype', None)}")
        if self.in_size is not None and (frame.shape[1], frame.shape[0]) != self.in_size:
            raise InputError(f"frame size changed from {self.in_size} to {(frame.shape[1], frame.shape[0])} "
                             "while tracking")
        return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().to(self.device)

    def _red(self, frame: np.ndarray) -> torch.Tensor:
        h, w = self.model.net.cfg.input_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(red_mask(small))[None, None].to(self.device)

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.start_many(frame, [point], frame_index)

    @torch.inference_mode()
    def start_many(self, frame: np.ndarray, points: Sequence[tuple[float, float]], frame_index: int = 0) -> None:
        self.in_size = None
        x = self._tensor(frame)
        h, w = frame.shape[:2]
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if len(pts) == 0:
            raise InputError("start_many: no points given")
        if not ((pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (pts[:, 1] <= h)).all():
            raise InputError(f"a start point is outside the {w}x{h} frame")
        self.in_size = (w, h)
        self.points = pts
        self.state = self.model.start(x, torch.from_numpy(pts).float().to(self.device))
        self.frame_index, self.since_refresh = int(frame_index), 0

    def step(self, frame: np.ndarray) -> TrackPoint:
        return self.step_many(frame)[0]

    @torch.inference_mode()
    def step_many(self, frame: np.ndarray) -> list[TrackPoint]:
        if self.state is None or self.points is None:
            raise InputError("PaperTracker.step() called before start()")
        x = self._tensor(frame)
        pts, vis, unc, self.state = self.model.step(x, self._red(frame), self.state)
        self.frame_index += 1
        self.since_refresh += 1
        h, w = frame.shape[:2]
        xy = pts.cpu().double().numpy()
        xy[:, 0] = xy[:, 0].clip(0, w - 1)
        xy[:, 1] = xy[:, 1].clip(0, h - 1)
        self.points = xy
        if self.refresh_every and self.since_refresh >= self.refresh_every:  # re-seed on this frame
            self.state = self.model.start(x, torch.from_numpy(xy).float().to(self.device))
            self.since_refresh = 0
        return [TrackPoint(self.frame_index, float(p[0]), float(p[1]), float(1 - u), bool(v > self.threshold))
                for p, v, u in zip(xy, vis.cpu().numpy(), unc.cpu().numpy())]
