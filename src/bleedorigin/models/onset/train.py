"""Onset stage training: BleedSim windows, the paper's loss (Eq. 4) and validation/evaluation.

Batches hold whole (cropped) clips so each frame embedding is computed once and shared by
every sampled window of that clip. Clips are generated at the model's internal resolution
and cached under `data.cache_dir` (train seeds from 0, validation seeds from 100000; test
seeds 900000+ are never used here).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.config import OnsetConfig, from_dict, to_dict
from bleedorigin.models.onset.model import OnsetNet, decode_onset
from bleedorigin.models.onset.predictor import FramePrep, embed_clip, prepare_clip, window_logits
from bleedorigin.errors import InputError
from bleedorigin.sim.appearance import Appearance
from bleedorigin.sim.scenarios import HARD_CASES, NEGATIVE_HARD_CASES, NEGATIVE_SCENARIOS, SCENARIOS
from bleedorigin.training.augment import ClipAugment
from bleedorigin.training.task import StageTask

log = logging.getLogger(__name__)

TRAIN_SEED0, VAL_SEED0, TEST_SEED0 = 0, 100_000, 900_000


@dataclass(frozen=True)
class OnsetDataConfig:
    clips_per_batch: int = 2
    windows_per_clip: int = 16
    positive_fraction: float = 0.5     # share of windows that contain the onset (when possible)
    train_pool: int = 2000             # distinct training clips (seeds TRAIN_SEED0 + i per kind)
    val_clips: int = 24                # detect : negative : full = 2 : 1 : 1
    kinds: tuple[str, ...] = ("detect", "negative", "full")
    kind_weights: tuple[float, ...] = (0.6, 0.2, 0.2)
    clip_frames: int = 0               # 0: the kind's default length (detect/negative 150)
    full_frames: int = 240             # length of "full" clips (onset anywhere)
    max_drop: int = 60                 # drop the first 0..max_drop frames at random
    cache_dir: str = "runs/cache/onset"
    sim_size: tuple[int, int] = (128, 96)  # BleedSim render size; frames are resized to the model's
    flow_clean_px: float = 1.0         # MDCFM motion target: mean |flow| above this (internal px)
    aux_weight: float = 0.2            # weight of the MDCFM auxiliary BCE
    offset_weight: float = 1.0         # weight of MSE(N*delta) (1 = Eq. 4)
    frame_aux_weight: float = 0.0      # per-frame "blood visible" BCE on MDG embeddings (0 = paper)
    augment: float = 0.0               # strength of the clip-level augmentation (0 = off)
    appearance: float = 0.0            # share of training clips with BleedSim v2 appearance
    appearance_features: str = "all"   # which v2 features those clips get (Appearance.parse)
    bench_dirs: tuple[str, ...] = ()   # your own benchmark folders (clips with onset labels or none)
    bench_fraction: float = 0.5        # share of training clips drawn from bench_dirs when given
    focus_scenario: str = ""           # BleedSim scenarios to draw more often, comma-separated (e.g.
                                       # water_flushing, or the hard cases point_bleed,white_mound,crimson_bed)
    focus_share: float = 0.0           # share of simulated training clips forced to focus_scenario


def onset_loss(delta_logit: torch.Tensor, conf_logit: torch.Tensor, positive: torch.Tensor,
               delta_target: torch.Tensor, window: int, offset_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Eq. 4: BCE(conf) on every window; + MSE(N*delta, N*delta*) on windows holding the onset.

    Means over windows (and over positive windows for the offset term).
    """
    pos = positive.float()
    conf = F.binary_cross_entropy_with_logits(conf_logit, pos)
    if bool(positive.any()):
        pred = window * torch.sigmoid(delta_logit[positive])
        offset = F.mse_loss(pred, window * delta_target[positive])
    else:
        offset = conf_logit.sum() * 0.0
    return {"loss": conf + offset_weight * offset, "conf": conf, "offset": offset}


def window_targets(starts: list[int], onset: int | None, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive flag and normalized onset position (+ half a frame, so floor lands on it)."""
    pos = np.array([onset is not None and s <= onset < s + window for s in starts], bool)
    delta = np.array([(onset - s + 0.5) / window if p else 0.0 for s, p in zip(starts, pos)], np.float32)
    return pos, delta


class ClipCache:
    """BleedSim clips at the model's internal size, cached as compressed npz."""

    def __init__(self, data: OnsetDataConfig, size: tuple[int, int]):
        self.data, self.size = data, size
        self.dir = Path(data.cache_dir)

    def path(self, kind: str, seed: int, scenario: str | None = None, v2: bool = False) -> Path:
        n = self.data.full_frames if kind == "full" else (self.data.clip_frames or None)
        w, h = self.size
        tag = (f"_{scenario}" if scenario else "") + (f"_v2-{self.features_tag()}" if v2 else "")
        return self.dir / f"{kind}{tag}_{n or 'default'}_{w}x{h}_{seed}.npz"

    def appearance(self) -> Appearance:
        return Appearance.parse(self.data.appearance_features)

    def features_tag(self) -> str:
        """The v2 features by name, so clips rendered with another set are never reused."""
        return "+".join(self.appearance().enabled)

    def get(self, kind: str, seed: int, scenario: str | None = None,
            v2: bool = False) -> tuple[np.ndarray, int | None]:
        """The clip of (kind, seed); `scenario` overrides the one the seed would draw; `v2` adds
        the BleedSim v2 appearance features of `data.appearance_features`."""
        n = self.data.full_frames if kind == "full" else (self.data.clip_frames or None)
        path = self.path(kind, seed, scenario, v2)
        if path.is_file():
            try:
                with np.load(path) as z:
                    onset = int(z["onset"])
                    return z["frames"], (None if onset < 0 else onset)
            except (OSError, ValueError, KeyError):
                log.warning("rebuilding damaged cache file %s", path)
        from bleedorigin.sim.generator import generate_clip
        clip = None
        for attempt in range(5):  # a simulator failure on one seed must not end a long run
            try:
                clip = generate_clip(kind, seed + attempt * 7919, size=self.size, num_frames=n,
                                     scenario=scenario, num_tracks=0,
                                     appearance=self.appearance() if v2 else None)
                break
            except Exception as e:  # noqa: BLE001 - logged and retried with another seed
                log.warning("BleedSim %s seed %d failed (%s); trying another seed", kind,
                            seed + attempt * 7919, str(e).splitlines()[0] if str(e) else type(e).__name__)
        if clip is None:
            raise RuntimeError(f"BleedSim failed on 5 seeds from {kind} {seed}")
        onset = clip.onset_frame
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp.npz")
        np.savez_compressed(tmp, frames=clip.frames, onset=-1 if onset is None else onset)
        tmp.replace(path)
        return clip.frames, onset


class BenchOnsetClips:
    """Training clips of your own benchmark folders: kinds detect/full/negative, split `train`
    or unsplit, decoded once at the simulator's render size and kept in memory."""

    def __init__(self, roots: tuple[str, ...], size: tuple[int, int], window: int):
        from bleedorigin.io.bench import discover_clips
        self.size = size
        self.clips = [c for root in roots for c in discover_clips(root)
                      if c.kind in ("detect", "full", "negative") and c.split in (None, "train")
                      and c.num_frames > window]
        if not self.clips:
            raise InputError(f"data.bench_dirs {list(roots)}: no detect/full/negative training clips "
                             f"longer than {window} frames")
        self._frames: dict[int, np.ndarray] = {}
        log.info("onset training also draws %d clips from %s", len(self.clips), ", ".join(roots))

    def __len__(self) -> int:
        return len(self.clips)

    def get(self, i: int) -> tuple[np.ndarray, int | None]:
        if i not in self._frames:
            from bleedorigin.io.video import read_frames
            self._frames[i] = np.stack([cv2.resize(f, self.size, interpolation=cv2.INTER_AREA)
                                        for f in read_frames(self.clips[i].video)])
        clip = self.clips[i]
        return self._frames[i], (clip.onset_frame if clip.kind != "negative" else None)


def val_set(data: OnsetDataConfig, seed0: int = VAL_SEED0) -> list[tuple[str, int]]:
    """(kind, seed) list: half detect, a quarter negative, a quarter full."""
    n = data.val_clips
    kinds = ["detect"] * (n - 2 * (n // 4)) + ["negative"] * (n // 4) + ["full"] * (n // 4)
    return [(k, seed0 + i) for i, k in enumerate(kinds)]


class OnsetTask(StageTask):
    stage = "onset"
    model_config_cls = OnsetConfig
    data_config_cls = OnsetDataConfig

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self.cfg = from_dict(OnsetConfig, self.config["model"], "model")
        self.data = from_dict(OnsetDataConfig, self.config["data"], "data")
        self.prep = FramePrep(self.cfg.internal_size)
        self.cache = ClipCache(self.data, self.data.sim_size)
        self.bench = BenchOnsetClips(self.data.bench_dirs, self.data.sim_size, self.cfg.window) \
            if self.data.bench_dirs else None
        try:
            self.cache.appearance()
        except ValueError as e:
            raise InputError(f"data.appearance_features: {e}") from None
        self.focus = tuple(s for s in self.data.focus_scenario.split(",") if s)
        if self.data.focus_share > 0 and (not self.focus or set(self.focus) - set(SCENARIOS + HARD_CASES)):
            raise InputError(f"data.focus_scenario {self.data.focus_scenario!r}: expected a comma list of "
                             f"{', '.join(SCENARIOS + HARD_CASES)}")

    def build_model(self) -> nn.Module:
        return OnsetNet(self.cfg)

    # ------------------------------------------------------------------ data
    def _clip(self, rng: np.random.Generator) -> dict[str, Any]:
        if self.bench is not None and rng.random() < self.data.bench_fraction:
            frames, onset = self.bench.get(int(rng.integers(len(self.bench))))
        else:
            w = np.asarray(self.data.kind_weights, float)
            kind = self.data.kinds[int(rng.choice(len(w), p=w / w.sum()))]
            seed = TRAIN_SEED0 + int(rng.integers(self.data.train_pool))
            focus = self.data.focus_share > 0 and rng.random() < self.data.focus_share
            names = self.focus if kind != "negative" else \
                tuple(s for s in self.focus if s in NEGATIVE_SCENARIOS + NEGATIVE_HARD_CASES)
            focus = focus and bool(names)  # e.g. obscured_view needs blood
            # one focus scenario draws nothing more from `rng` (older recipes keep their clips)
            scenario = None if not focus else names[0] if len(names) == 1 else names[int(rng.integers(len(names)))]
            v2 = self.data.appearance > 0 and rng.random() < self.data.appearance
            frames, onset = self.cache.get(kind, seed, scenario, v2)
        if self.data.augment > 0:
            frames = ClipAugment.random(rng, self.data.augment).frames(frames)
        n = self.cfg.window
        drop = int(rng.integers(0, min(self.data.max_drop, len(frames) - n) + 1))
        frames = frames[drop:]
        onset = None if onset is None else onset - drop
        appear, gray, flows = prepare_clip(self.prep, frames)
        length = len(frames)
        # MDCFM targets for step t: colour = blood in I_t; motion = large flow t-1 -> t
        t_idx = np.arange(length)
        color = (t_idx >= onset) if onset is not None else np.zeros(length, bool)
        motion = flows[:, 2].mean((1, 2)) * 4.0 > self.data.flow_clean_px  # back to pixels
        clean = ~color & ~motion
        # K consecutive windows (one span of N + K - 1 frames, embedded once), centred on a
        # window holding the onset with probability positive_fraction, else anywhere
        hi = length - n
        k = min(self.data.windows_per_clip, hi + 1)
        centre = int(rng.integers(0, hi + 1))
        if onset is not None and onset >= 0 and rng.random() < self.data.positive_fraction:
            lo_p, hi_p = max(0, onset - n + 1), min(onset, hi)
            if lo_p <= hi_p:
                centre = int(rng.integers(lo_p, hi_p + 1))
        first = int(np.clip(centre - k // 2, 0, hi - k + 1))
        starts = list(range(first, first + k))
        pos, delta = window_targets(starts, onset, n)
        return {"appear": appear, "gray": gray, "flows": flows, "clean": clean,
                "span": (first, first + k - 1 + n),
                "aux": np.stack([color, motion], 1).astype(np.float32), "starts": starts,
                "positive": torch.from_numpy(pos), "delta": torch.from_numpy(delta)}

    def sample_batch(self, rng: np.random.Generator, split: str = "train") -> list[dict[str, Any]]:
        return [self._clip(rng) for _ in range(self.data.clips_per_batch)]

    def loss(self, model: nn.Module, batch: list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float]]:
        net: OnsetNet = model.module if hasattr(model, "module") else model  # type: ignore[assignment]
        deltas, confs, pos, tgt, aux_terms, frame_terms = [], [], [], [], [], []
        for clip in batch:
            a, b = clip["span"]
            emb, logits = embed_clip(net, self.prep, clip["appear"], clip["gray"], clip["flows"],
                                     clean=clip["clean"], span=(a, b))
            d, c, _ = window_logits(net, emb, [s - a for s in clip["starts"]])
            if self.data.frame_aux_weight > 0:
                blood = torch.from_numpy(clip["aux"][a:b, 0]).to(d.device)
                frame_terms.append(F.binary_cross_entropy_with_logits(net.frame_head(emb)[:, 0], blood))
            deltas.append(d)
            confs.append(c)
            pos.append(clip["positive"].to(d.device))
            tgt.append(clip["delta"].to(d.device))
            if logits is not None:
                aux = torch.from_numpy(clip["aux"][a:b]).to(d.device)
                keep = slice(1, None) if a == 0 else slice(None)  # step 0 has no previous frame
                aux_terms.append(F.binary_cross_entropy_with_logits(logits[keep], aux[keep]))
        parts = onset_loss(torch.cat(deltas), torch.cat(confs), torch.cat(pos), torch.cat(tgt),
                           self.cfg.window, self.data.offset_weight)
        loss = parts["loss"]
        logs = {"conf": float(parts["conf"].detach()), "offset": float(parts["offset"].detach())}
        if aux_terms:
            aux_loss = torch.stack(aux_terms).mean()
            loss = loss + self.data.aux_weight * aux_loss
            logs["mdcfm"] = float(aux_loss.detach())
        if frame_terms:
            frame_loss = torch.stack(frame_terms).mean()
            loss = loss + self.data.frame_aux_weight * frame_loss
            logs["frame"] = float(frame_loss.detach())
        return loss, logs

    # ------------------------------------------------------------------ validation
    def validate(self, model: nn.Module) -> dict[str, float]:
        net: OnsetNet = model.module if hasattr(model, "module") else model  # type: ignore[assignment]
        preds, gts, lengths = [], [], []
        for kind, seed in val_set(self.data):
            frames, onset = self.cache.get(kind, seed)
            preds.append(predict_clip(net, self.prep, frames))
            gts.append(onset)
            lengths.append(len(frames))
        metrics = onset_metrics(preds, gts, lengths)
        metrics["score"] = metrics["acc8"] - metrics["false_alarm"] - 0.01 * metrics["err_avg"]
        return metrics

    def predictor_config(self) -> dict[str, Any]:
        return {"architecture": "OnsetNet", "model": to_dict(self.cfg),
                "preprocessing": {"input": "RGB uint8, any size", "resize": "cv2.INTER_AREA to internal_size",
                                  "hsv": "OpenCV HSV, hue rotated by 90/180", "flow": "DIS ultrafast"}}

    def data_description(self) -> str:
        return (f"BleedSim {', '.join(self.data.kinds)} clips rendered at {self.data.sim_size[0]}x"
                f"{self.data.sim_size[1]}, resized to {self.cfg.internal_size[0]}x{self.cfg.internal_size[1]} (train seeds {TRAIN_SEED0}..{TRAIN_SEED0 + self.data.train_pool - 1}, "
                f"val seeds {VAL_SEED0}+; first 0-{self.data.max_drop} frames dropped at random)"
                + (f"; clip augmentation strength {self.data.augment}" if self.data.augment > 0 else "")
                + (f"; {self.data.appearance:.0%} of clips with BleedSim v2 appearance ({', '.join(self.cache.appearance().enabled)})"
                   if self.data.appearance > 0 else "")
                + (f"; plus {self.data.bench_fraction:.0%} of clips from {', '.join(self.data.bench_dirs)}"
                   if self.data.bench_dirs else ""))


@torch.no_grad()
def predict_clip(net: OnsetNet, prep: FramePrep, frames: np.ndarray) -> int | None:
    """Batch version of the streaming detector on one clip: onset frame or None."""
    was = net.training
    net.eval()
    appear, gray, flows = prepare_clip(prep, frames)
    emb, _ = embed_clip(net, prep, appear, gray, flows)
    d, c, starts = window_logits(net, emb)
    net.train(was)
    return decode_onset(torch.sigmoid(d), torch.sigmoid(c), starts, net.cfg.window, net.cfg.conf_threshold)


def onset_metrics(preds: list[int | None], gts: list[int | None], lengths: list[int] | None = None,
                  tols: tuple[int, ...] = (0, 1, 2, 4, 8, 16)) -> dict[str, float]:
    """Paper metrics on clips with an onset (Acc within +-k, Err_avg) + false alarms on the rest.

    A missed onset counts as wrong at every tolerance; its error is taken as the distance to
    the clip end (or 150 frames when lengths are unknown) so Err_avg cannot hide misses.
    """
    errs, fa, n_neg, misses = [], 0, 0, 0
    for i, (p, g) in enumerate(zip(preds, gts)):
        if g is None or g < 0:
            n_neg += 1
            fa += p is not None
            continue
        if p is None:
            misses += 1
            errs.append(float((lengths[i] if lengths else 150) - g))
        else:
            errs.append(float(abs(p - g)))
    out: dict[str, float] = {}
    e = np.array(errs) if errs else np.zeros(0)
    hits = np.array([p is not None for p, g in zip(preds, gts) if g is not None and g >= 0])
    for k in tols:
        out[f"acc{k}"] = float(np.mean((e <= k) & hits)) if len(e) else math.nan
    out["err_avg"] = float(e.mean()) if len(e) else math.nan
    out["miss_rate"] = misses / len(e) if len(e) else math.nan
    out["false_alarm"] = fa / n_neg if n_neg else 0.0
    out["n_positive"], out["n_negative"] = float(len(e)), float(n_neg)
    return out


def evaluate_onset(detector: Any, clips: list[tuple[np.ndarray, int | None]] | list[Any]) -> dict[str, float]:
    """Stream each clip through `detector` (an OnsetDetectorBase) and score it.

    `clips`: (frames, onset_frame) pairs or objects with `.frames` and `.onset_frame`
    (e.g. SimClip). Returns onset_metrics (acc0..acc16, err_avg, miss_rate, false_alarm).
    """
    preds, gts, lengths = [], [], []
    for clip in clips:
        frames, onset = (clip if isinstance(clip, tuple) else (clip.frames, clip.onset_frame))
        detector.reset()
        found = None
        for f in frames:
            step = detector.step(f)
            if found is None and step.onset_frame is not None:
                found = step.onset_frame
        preds.append(found)
        gts.append(onset)
        lengths.append(len(frames))
    return onset_metrics(preds, gts, lengths)
