"""Tracker evaluation on sparsely labelled clips (ESD samples, VL-SurgPT, benchmark folders).

Protocol (paper section 5, evaluation mode): each point labelled on the clip's first labelled
frame is started there from its label; errors are measured on every later labelled frame
where the label is not null, scaled to the 512x384 model frame (x * 512 / W, y * 384 / H).
Frames stream one at a time (the 1920x1080 VL-SurgPT clip does not fit in memory at once).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bleedorigin.models.base import PointTrackerBase
from bleedorigin.types import TrackPoint

log = logging.getLogger(__name__)

THRESHOLDS = (10, 25, 50, 75, 100)


@dataclass
class SparseClip:
    id: str
    video: Path
    labels: dict[int, list[tuple[float, float] | None]]


def load_sparse_folder(folder: str | Path) -> SparseClip:
    """A folder with video.mp4 + labels.json {"frame": [[x, y] | null, ...]} (ESD / VL-SurgPT samples)."""
    folder = Path(folder)
    raw = json.loads((folder / "labels.json").read_text())
    labels = {int(k): [None if p is None else (float(p[0]), float(p[1])) for p in v] for k, v in raw.items()}
    return SparseClip(folder.name, folder / "video.mp4", labels)


def iter_frames(video: str | Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video, one at a time (bleedorigin.io.video when available)."""
    try:
        from bleedorigin.io.video import open_video
    except ImportError:
        import av
        with av.open(str(video)) as c:
            for f in c.decode(video=0):
                yield f.to_ndarray(format="rgb24")
        return
    with open_video(video) as reader:
        for item in reader:
            yield item.image


class LKPointTracker(PointTrackerBase):
    """Reference pyramidal Lucas-Kanade tracker (input resolution), for comparisons here."""

    name = "lk_ref"

    def __init__(self, win: int = 21, levels: int = 3):
        self.win, self.levels = win, levels

    def start(self, frame: np.ndarray, point: tuple[float, float], frame_index: int = 0) -> None:
        self.prev = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        self.p = np.array([[point]], np.float32)
        self.t = frame_index

    def step(self, frame: np.ndarray) -> TrackPoint:
        cur = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        q, st, _ = cv2.calcOpticalFlowPyrLK(self.prev, cur, self.p, None, winSize=(self.win, self.win),
                                            maxLevel=self.levels)
        ok = st is not None and st[0, 0] == 1 and np.isfinite(q).all()
        if ok:
            self.p = q
        self.prev, self.t = cur, self.t + 1
        return TrackPoint(self.t, float(self.p[0, 0, 0]), float(self.p[0, 0, 1]), 1.0 if ok else 0.0, bool(ok))


def _track_clip(tracker: Any, clip: SparseClip) -> tuple[np.ndarray, list[int], dict[int, np.ndarray], tuple[int, int]]:
    """Run the tracker over the clip; predictions at labelled frames {frame: (N, 2)}."""
    first = min(clip.labels)
    pts0 = clip.labels[first]
    idx = [i for i, p in enumerate(pts0) if p is not None]
    start_xy = np.array([pts0[i] for i in idx], float)
    many = hasattr(tracker, "start_many")
    trackers = [tracker] if many else [tracker() for _ in idx]
    preds: dict[int, np.ndarray] = {}
    size = (0, 0)
    for t, frame in enumerate(iter_frames(clip.video)):
        size = (frame.shape[1], frame.shape[0])
        if t < first:
            continue
        if t == first:
            if many:
                tracker.start_many(frame, [tuple(p) for p in start_xy], t)
            else:
                for tr, p in zip(trackers, start_xy):
                    tr.start(frame, tuple(p), t)
            continue
        out = tracker.step_many(frame) if many else [tr.step(frame) for tr in trackers]
        if t in clip.labels:
            preds[t] = np.array([(p.x, p.y) for p in out])
    return start_xy, idx, preds, size


def evaluate_tracker(tracker: PointTrackerBase | Callable[[], PointTrackerBase],
                     clips: list[Any], thresholds: tuple[int, ...] = THRESHOLDS) -> dict[str, Any]:
    """Acc below each threshold (px at 512x384) and mean error, overall and per clip.

    `tracker`: an object with start_many/step_many (all points at once), or a factory of
    single-point trackers. `clips`: objects with `.video` and `.labels` (io Clip or SparseClip)."""
    all_err: list[np.ndarray] = []
    per_clip: dict[str, dict[str, float]] = {}
    for clip in clips:
        _, idx, preds, (w, h) = _track_clip(tracker, clip)
        sx, sy = 512.0 / w, 384.0 / h
        errs = []
        for t, pred in preds.items():
            for j, i in enumerate(idx):
                gt = clip.labels[t][i] if i < len(clip.labels[t]) else None
                if gt is None:
                    continue
                errs.append(np.hypot((pred[j, 0] - gt[0]) * sx, (pred[j, 1] - gt[1]) * sy))
        e = np.array(errs, float)
        all_err.append(e)
        per_clip[str(getattr(clip, "id", clip.video))] = _summary(e, thresholds)
    res = _summary(np.concatenate(all_err) if all_err else np.zeros(0), thresholds)
    res["per_clip"] = per_clip
    return res


def _summary(e: np.ndarray, thresholds: tuple[int, ...]) -> dict[str, float]:
    if len(e) == 0:
        return {"n": 0, "err_avg": float("nan"), **{f"acc_{t}px": float("nan") for t in thresholds}}
    return {"n": int(len(e)), "err_avg": float(e.mean()), **{f"acc_{t}px": float((e < t).mean()) for t in thresholds}}
