"""Streaming onset detector: frame preparation, keyframe memory, `OnsetDetector.step`.

Per frame the cost is constant: one low-res resize + HSV, 1 + M DIS flows at the internal
resolution, one MDG embedding, and one transformer pass over the cached last N embeddings.
`embed_clip` / `window_logits` do the same computation batched over a whole clip (training,
validation, and the streaming == batch test).
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any

import cv2
import numpy as np
import torch

from bleedorigin.config import OnsetConfig, from_dict
from bleedorigin.errors import InputError
from bleedorigin.models.base import OnsetDetectorBase, OnsetStep
from bleedorigin.models.onset.model import OnsetNet
from bleedorigin.models.onset.confirm import CONFIRM_SHARE, TransitionConfirm
from bleedorigin.models.onset.present import PresenceCheck, largest_box, scaled_box
from bleedorigin.models.weights import find_weights, resolve_device
from bleedorigin.vision.color import AREA_SIZE, BLOOD_THRESHOLD, area_copy, quiet_level, red_area_ratio, red_mask
from bleedorigin.io.checkpoint import build_model, load_checkpoint

log = logging.getLogger(__name__)

FLOW_SCALE = 4.0  # internal-resolution pixels per unit of the flow input channels
REFINE_RADIUS = 8  # frames; shipped models snap their onset to the start of the blood-area rise
QUIET_HISTORY = 30  # frames before the search range that define the pre-bleeding level
CUE_TRANSITION = "transition"  # the sliding-window network saw a bleeding-free view start to bleed


def refine_onset(areas: np.ndarray, first: int, onset: int, radius: int) -> int:
    """Snap a detected onset to where the red (blood) area starts to rise.

    `areas[i]` is the red-area ratio of frame `first + i` (up to the current frame). The quiet
    level is the median of the QUIET_HISTORY frames before `onset - radius` plus three robust
    standard deviations; the result is the frame after the last quiet one within
    `onset +- radius`. The network's onset is kept when there is too little history, when the
    area was already above the quiet level at `onset - radius`, or when it never rises.
    """
    lo, hi = onset - radius, min(onset + radius, first + len(areas) - 1)
    hist = areas[max(0, lo - QUIET_HISTORY - first):max(0, lo - first)]
    if len(hist) < 5 or hi < lo:
        return onset
    quiet = quiet_level(hist)
    window = areas[lo - first:hi - first + 1]
    if window[-1] <= quiet or window[0] > quiet:
        return onset
    last_quiet = int(np.flatnonzero(window <= quiet)[-1])
    return lo + last_quiet + 1


class FramePrep:
    """RGB uint8 frame (any size) -> low-res appearance (6, h, w) float32 and gray uint8."""

    def __init__(self, internal_size: tuple[int, int]):
        self.size = (int(internal_size[0]), int(internal_size[1]))
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"expected an RGB frame (H, W, 3), got shape {getattr(frame, 'shape', None)}")
        if frame.dtype != np.uint8:
            raise InputError(f"expected a uint8 frame, got {frame.dtype}")
        small = frame if frame.shape[1::-1] == self.size else \
            cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        # rotate hue by half a turn so red (blood) sits mid-range instead of on the 0/180 wrap
        hsv[..., 0] = (hsv[..., 0].astype(np.uint16) + 90) % 180
        appear = np.empty((6, self.size[1], self.size[0]), np.float32)
        appear[:3] = small.transpose(2, 0, 1) * (1 / 255)
        appear[3] = hsv[..., 0] * (1 / 180)
        appear[4:] = hsv[..., 1:].transpose(2, 0, 1) * (1 / 255)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        return appear, gray

    def flow(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """DIS flow ref -> cur as (dx, dy, magnitude) / FLOW_SCALE, shape (3, h, w)."""
        f = self._dis.calc(ref, cur, None)
        out = np.empty((3,) + f.shape[:2], np.float32)
        out[:2] = f.transpose(2, 0, 1) * (1 / FLOW_SCALE)
        out[2] = np.sqrt(out[0] ** 2 + out[1] ** 2)
        return out


class KeyframeMemory:
    """MDCFM memory (Eq. 1): frame t-1 is stored when step t finds it clean, at most every
    `stride` frames, keeping the newest `size`. Frame 0 seeds the memory so it is never empty."""

    def __init__(self, size: int, stride: int):
        self.size, self.stride = size, max(1, stride)
        self.frames: list[int] = []
        self.reset()

    def reset(self) -> None:
        self.frames = [0] if self.size > 0 else []
        self.last = 0

    def slots(self) -> list[int]:
        """`size` frame indices, oldest first; missing slots repeat the oldest keyframe."""
        if not self.frames:
            return []
        return [self.frames[0]] * (self.size - len(self.frames)) + self.frames

    def update(self, t: int, clean: bool) -> None:
        if self.size == 0 or not clean or t - 1 - self.last < self.stride:
            return
        self.frames.append(t - 1)
        self.last = t - 1
        if len(self.frames) > self.size:
            self.frames.pop(0)


def memory_slots(clean: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Slot indices (T, size) per step for a clip, given clean[t] (decision at step t)."""
    mem = KeyframeMemory(size, stride)
    out = np.zeros((len(clean), size), np.int64)
    for t in range(len(clean)):
        out[t] = mem.slots()  # memory as it stands before step t decides about frame t-1
        if t > 0:
            mem.update(t, bool(clean[t]))
    return out


def clean_from_logits(logits: torch.Tensor, cfg: OnsetConfig) -> np.ndarray:
    """Eq. 1 on MDCFM logits (T, 2): both confidences below their thresholds."""
    p = torch.sigmoid(logits).cpu().numpy()
    return (p[:, 0] < cfg.clean_color_threshold) & (p[:, 1] < cfg.clean_flow_threshold)


def prepare_clip(prep: FramePrep, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Appearance (T, 6, h, w), gray (T, h, w) and flows prev->cur (T, 3, h, w) (zero at t=0)."""
    pairs = [prep.prepare(f) for f in frames]
    appear = np.stack([a for a, _ in pairs])
    gray = np.stack([g for _, g in pairs])
    flows = np.zeros((len(frames), 3) + gray.shape[1:], np.float32)
    for t in range(1, len(frames)):
        flows[t] = prep.flow(gray[t - 1], gray[t])
    return appear, gray, flows


def embed_clip(net: OnsetNet, prep: FramePrep, appear: np.ndarray, gray: np.ndarray, flows: np.ndarray,
               clean: np.ndarray | None = None, chunk: int = 256,
               span: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-frame embeddings (T, D) of a whole clip as the streaming detector computes them.

    `clean` (T,) forces the keyframe decisions (teacher forcing in training); otherwise they
    come from the model's own MDCFM. `span` (a, b) embeds frames a..b-1 only (the memory
    still comes from the whole history; needs `clean`). Returns embeddings and MDCFM logits
    (of the embedded frames, (T, 2)) or None.
    """
    device = next(net.parameters()).device
    a, b = span if span is not None else (0, len(gray))
    if span is not None and clean is None and net.memory_size:
        raise ValueError("embed_clip: span needs explicit clean decisions")
    full = torch.from_numpy(appear).to(device)
    cur = full[a:b]
    prev = full[max(0, a - 1):b - 1] if a > 0 else torch.cat([full[:1], full[:b - 1]])
    flow = torch.from_numpy(flows[a:b]).to(device)
    logits = net.clean_logits(prev, cur, flow)
    m = net.memory_size
    mem = mem_flow = None
    if m > 0:
        if clean is None:
            assert logits is not None
            clean = clean_from_logits(logits.detach(), net.cfg)
        slots = memory_slots(clean, m, net.cfg.memory_stride)[a:b]
        mem = full[torch.from_numpy(slots).to(device)]  # (T, M, 6, h, w)
        mf = np.empty((b - a, m, 3) + gray.shape[1:], np.float32)
        done: dict[tuple[int, int], np.ndarray] = {}
        for i in range(b - a):
            t = a + i
            for k, s in enumerate(slots[i]):
                key = (int(s), t)
                if key not in done:
                    done[key] = prep.flow(gray[s], gray[t])
                mf[i, k] = done[key]
        mem_flow = torch.from_numpy(mf).to(device)
    embs = []
    for i in range(0, b - a, chunk):
        sl = slice(i, i + chunk)
        embs.append(net.frame_embedding(cur[sl], prev[sl], flow[sl],
                                        None if mem is None else mem[sl],
                                        None if mem_flow is None else mem_flow[sl]))
    return torch.cat(embs), logits


def window_logits(net: OnsetNet, emb: torch.Tensor, starts: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(delta, conf) logits for windows of N frames starting at `starts` (default: all)."""
    n = net.cfg.window
    if starts is None:
        starts = list(range(0, emb.shape[0] - n + 1))
    if not starts:
        empty = emb.new_zeros(0)
        return empty, empty, []
    idx = torch.as_tensor(starts, device=emb.device)[:, None] + torch.arange(n, device=emb.device)
    d, c = net.window(emb[idx])
    return d, c, list(starts)


class OnsetDetector(OnsetDetectorBase):
    """Streaming bleeding-onset detector. `step(frame)` -> OnsetStep(score, onset_frame).

    `score` is the confidence of the window ending at the current frame (0 until N frames
    were seen). The onset is raised once, on the first window with confidence above
    `cfg.conf_threshold`, at that window's start + floor(delta * N); with `refine_radius` > 0
    it is then snapped to the start of the red-area rise within that many frames
    (`refine_onset`; the network's low-resolution view cannot place it to the frame).
    With `presence` (a PresenceCheck), bleeding already under way at the start of the stream
    is raised too: the check's onset, and `score` is the larger of the two. With `confirm` > 0, a
    transition the network raises stands only once new red covering that share of the view has
    appeared since before its onset (`TransitionConfirm`); it is raised on that frame, dated to
    the network's onset.
    """

    name = "onset"

    def __init__(self, net: OnsetNet, device: str | torch.device = "auto", model_id: str = "onset",
                 refine_radius: int = 0, presence: PresenceCheck | None = None, confirm: float = 0.0):
        self.refine_radius = int(refine_radius)
        self.presence = presence
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.net = net.to(self.device).eval()
        self.cfg: OnsetConfig = net.cfg
        self.prep = FramePrep(self.cfg.internal_size)
        self.model_id = model_id
        # the network's onset lies up to a window (and the refinement) before its decision
        self.confirm = TransitionConfirm(history=self.cfg.window + self.refine_radius, lead=self.refine_radius,
                                         threshold=confirm, dark=presence.dark if presence is not None else True) \
            if confirm > 0 else None
        self.reset()

    @property
    def score_threshold(self) -> float:  # type: ignore[override]
        return self.cfg.conf_threshold

    @classmethod
    def from_pretrained(cls, name_or_path: str = "small", device: str = "auto",
                        refine_radius: int = REFINE_RADIUS, presence: bool = True,
                        dark: bool = True, live: bool = True, confirm: float = CONFIRM_SHARE) -> OnsetDetector:
        folder = find_weights(name_or_path, "onset_small")
        config, state = load_checkpoint(folder, stage="onset")
        cfg = from_dict(OnsetConfig, config.get("model", {}), f"{folder}/config.json model")
        net = build_model(folder, lambda: OnsetNet(cfg), state)
        return cls(net, device, model_id=f"onset:{folder.name}@{config['checksum'][:12]}",
                   refine_radius=refine_radius, presence=PresenceCheck(dark=dark, live=live) if presence else None,
                   confirm=confirm)

    def reset(self) -> None:
        self.t = 0
        self.prev: tuple[torch.Tensor, np.ndarray] | None = None
        self.keyframes: dict[int, tuple[torch.Tensor, np.ndarray]] = {}
        self.memory = KeyframeMemory(self.net.memory_size, self.cfg.memory_stride)
        self.embs: deque[torch.Tensor] = deque(maxlen=self.cfg.window)
        self.areas: deque[float] = deque(maxlen=self.cfg.window + 2 * self.refine_radius + QUIET_HISTORY)
        self.onset: int | None = None
        self.confidence = 0.0
        self.cue: str | None = None  # why the onset was raised, and where (box, input-frame px)
        self.where: tuple[int, int, int, int] | None = None
        self.network_armed = True  # False after a dropped transition, until the score falls below threshold
        self.proposed: tuple[int, float] | None = None  # (onset, confidence) waiting for confirmation
        if self.presence is not None:
            self.presence.reset()
        if self.confirm is not None:
            self.confirm.reset()

    def rearm(self) -> None:
        """After an episode: as `reset`, but the bleeding-present check counts fresh blood only."""
        self.reset()
        if self.presence is not None:
            self.presence.rearm()

    def leftover_blood(self) -> np.ndarray | None:
        return None if self.presence is None else self.presence.leftover_blood()

    @torch.inference_mode()
    def step(self, frame: np.ndarray) -> OnsetStep:
        appear, gray = self.prep.prepare(frame)
        cur = torch.from_numpy(appear)[None].to(self.device)
        t = self.t
        present_score, present_onset = 0.0, None
        if self.presence is not None and self.onset is None:
            present_score, present_onset = self.presence.step(frame)
        if self.onset is None and (self.refine_radius or self.confirm is not None):
            small = area_copy(frame)
            if self.refine_radius:
                self.areas.append(red_area_ratio(small))
            if self.confirm is not None:
                self.confirm.push(small)
        if self.prev is None:
            prev, prev_gray = cur, gray
            flow_np = np.zeros((3,) + gray.shape, np.float32)
        else:
            prev, prev_gray = self.prev
            flow_np = self.prep.flow(prev_gray, gray)
        flow = torch.from_numpy(flow_np)[None].to(self.device)
        if t == 0 and self.net.memory_size:
            self.keyframes[0] = (cur, gray)
        mem = mem_flow = None
        if self.net.memory_size:
            slots = self.memory.slots()
            mem = torch.stack([self.keyframes[s][0][0] for s in slots])[None]
            mem_flow = torch.from_numpy(np.stack([self.prep.flow(self.keyframes[s][1], gray) for s in slots]))[None]
            mem_flow = mem_flow.to(self.device)
        self.embs.append(self.net.frame_embedding(cur, prev, flow, mem, mem_flow)[0])
        if self.net.memory_size and t > 0:
            logits = self.net.clean_logits(prev, cur, flow)
            assert logits is not None
            self.memory.update(t, bool(clean_from_logits(logits, self.cfg)[0]))
            if t - 1 in self.memory.frames and self.prev is not None:
                self.keyframes[t - 1] = self.prev
            self.keyframes = {k: v for k, v in self.keyframes.items() if k in self.memory.frames}
        self.prev = (cur, gray)
        self.t += 1
        score, raised = 0.0, None
        n = self.cfg.window
        if len(self.embs) == n:
            d, c = self.net.window(torch.stack(list(self.embs))[None])
            score = float(torch.sigmoid(c[0]))
            self.network_armed |= score <= self.cfg.conf_threshold
            if self.onset is None and self.proposed is not None:
                raised = self._confirmed(self.confirm.step(), frame)  # type: ignore[union-attr]
            elif self.onset is None and self.network_armed and score > self.cfg.conf_threshold:
                start = t - n + 1
                onset = start + min(n - 1, int(np.floor(float(torch.sigmoid(d[0])) * n)))
                if self.refine_radius:
                    first = t - len(self.areas) + 1
                    onset = refine_onset(np.asarray(self.areas), first, onset, self.refine_radius)
                self.proposed = (onset, score)
                raised = self._confirmed(True if self.confirm is None else self.confirm.propose(onset), frame)
        score = max(score, present_score)
        if present_onset is not None and (raised is None or present_onset < raised):
            self.onset = raised = present_onset
            self.confidence = score
            assert self.presence is not None
            self.cue, self.where = self.presence.cue, self.presence.where
        if raised is None:
            return OnsetStep(score)
        return OnsetStep(score, raised, self.cue, self.where)

    def _confirmed(self, verdict: bool | None, frame: np.ndarray) -> int | None:
        """Act on the confirmation's verdict on the proposed transition: its onset when it
        stands (True), None while pending (None) or when dropped (False)."""
        assert self.proposed is not None
        if verdict is None:
            return None
        onset, confidence = self.proposed
        self.proposed = None
        if not verdict:
            self.network_armed = False
            return None
        self.onset, self.confidence, self.cue = onset, confidence, CUE_TRANSITION
        if self.confirm is None:  # where red dominates on the decision frame: what the network saw bleed
            self.where = largest_box(red_mask(frame) > BLOOD_THRESHOLD)
        else:  # the new red that confirmed it
            box = self.confirm.box
            self.where = None if box is None else scaled_box(box, frame.shape, AREA_SIZE[::-1])
        return onset

    def run(self, frames: Any) -> tuple[int | None, list[float]]:
        """Reset, stream all `frames`; returns (onset frame or None, per-frame scores)."""
        self.reset()
        scores = []
        for f in frames:
            scores.append(self.step(f).score)
        return self.onset, scores
