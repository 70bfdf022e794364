"""Tracker training task (StageTask): online unrolls over short clips with truncated BPTT.

Batches are `clip_len`-frame crops of moving-texture clips (synth.py) and BleedSim tracking
clips (cached under data.cache_dir), queried at frame 0. Loss per frame t >= 1: patch CE
(tau-scaled cosine logits), top-K re-ranking CE, Huber on every refinement iteration (deep
supervision), visibility BCE, confidence BCE (target: error < conf_px).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin.config import from_dict, to_dict
from bleedorigin.io.video import FrameMapper
from bleedorigin.models.backbones.cnn import fallback_red_mask, red_mask
from bleedorigin.models.track.learned.model import TrackerConfig, TrackOnSmall
from bleedorigin.vision.motion import MotionHint
from bleedorigin.models.track.learned.synth import inside, moving_texture_clip, photometric
from bleedorigin.training.task import StageTask

log = logging.getLogger(__name__)

TRAIN_SEED0, VAL_SEED0 = 0, 100_000


@dataclass(frozen=True)
class TrackDataConfig:
    clip_len: int = 12
    batch_clips: int = 2
    points: int = 24
    crop: tuple[int, int] = (256, 192)     # training crop (W, H), at the model's pixel scale
    sim_fraction: float = 0.4              # share of BleedSim clips (rest: moving textures)
    sim_pool: int = 300                    # distinct cached BleedSim clips
    sim_frames: int = 31
    texture_speed: float = 4.0
    val_clips: int = 6
    val_frames: int = 40
    val_points: int = 16
    cache_dir: str = "runs/cache/track"
    source_share: float = 0.0              # share of BleedSim samples whose crop holds the bleeding
                                           # source, tracked (and supervised) through the blood
    onset_share: float = 0.0               # of those, share that start 0-4 frames before a fresh
                                           # onset (the pool forms over the point during the unroll)
    max_stride: int = 1                    # BleedSim clips read every k-th frame, k in 1..max_stride:
                                           # larger steps between frames, like a shaking endoscope
    conf_px: float = 8.0
    huber_px: float = 4.0
    vis_weight: float = 0.5
    conf_weight: float = 0.5
    rerank_weight: float = 0.5


def frames_to_tensor(frames: np.ndarray, mask_source: str = "shared") -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 4, H, W) float: RGB in [0, 1] + Red-Mask."""
    fn = fallback_red_mask if mask_source == "fallback" else red_mask
    masks = np.stack([fn(f) for f in frames])[:, None]
    rgb = frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(np.concatenate([rgb, masks.astype(np.float32)], 1))


ONSET_LEAD = 15  # frames before the onset in onset-started clips (BleedSim `full` of <= 46 frames)


def _sim_clip(seed: int, cache: Path, n: int, from_onset: bool = False) -> dict[str, np.ndarray]:
    """A cached BleedSim clip at 512x384 with 96 tracks and the source track. Default: a tracking
    clip (pool already formed); `from_onset`: a `full` clip of n + ONSET_LEAD frames whose onset
    is at frame ONSET_LEAD (n <= 31; later for longer clips), stored as "onset"."""
    path = cache / f"sim2{'o' if from_onset else ''}_{seed:06d}_{n}.npz"  # sim2: with the source track
    if path.is_file():
        with np.load(path) as z:
            return dict(z)
    from bleedorigin.sim import generate_clip
    if from_onset:
        c = generate_clip("full", seed, size=(512, 384), num_frames=n + ONSET_LEAD, num_tracks=96)
    else:
        c = generate_clip("track_short" if seed % 2 else "track_long", seed, size=(512, 384), num_frames=n,
                          num_tracks=96)
    vis = c.tracks_visible & inside(c.tracks_xy, (512, 384), 1.0)
    data = {"frames": c.frames, "tracks": np.nan_to_num(c.tracks_xy, nan=-1e4, posinf=1e4, neginf=-1e4)
            .clip(-1e4, 1e4).astype(np.float32), "visible": vis, "source": c.source_xy.astype(np.float32),
            "onset": np.int64(-1 if c.onset_frame is None else c.onset_frame)}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


def pick_points(rng: np.random.Generator, visible: np.ndarray, k: int, keep_first: bool = False) -> np.ndarray | None:
    """Indices of k tracks visible at frame 0 (prefer ones visible most of the clip);
    `keep_first`: track 0 is always one of them when it is visible at frame 0."""
    if keep_first and visible[0, 0]:
        rest = pick_points(rng, visible[:, 1:], k - 1)
        return None if rest is None else np.concatenate([[0], rest + 1])
    ok = np.flatnonzero(visible[0])
    if len(ok) < 2:
        return None
    score = visible[:, ok].mean(0) + rng.random(len(ok)) * 0.5
    order = ok[np.argsort(-score)]
    return rng.choice(order[: max(k, len(order) // 2)], size=k, replace=len(order) < k)


class TrackTask(StageTask):
    stage = "track"
    model_config_cls = TrackerConfig
    data_config_cls = TrackDataConfig

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.mcfg: TrackerConfig = from_dict(TrackerConfig, self.config["model"], "model")
        self.dcfg: TrackDataConfig = from_dict(TrackDataConfig, self.config["data"], "data")
        self.cache = Path(self.dcfg.cache_dir)
        self._val: list[dict[str, np.ndarray]] | None = None

    def build_model(self) -> nn.Module:
        return TrackOnSmall(self.mcfg)

    # ------------------------------------------------------------------ data
    def _one_clip(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.dcfg
        w, h = d.crop
        n = d.clip_len
        for _ in range(20):
            with_source = False
            if rng.random() < d.sim_fraction:
                seed = TRAIN_SEED0 + int(rng.integers(d.sim_pool))
                fits = (d.sim_frames - 1) // max(1, n - 1)  # largest stride whose span fits the clip
                stride = int(rng.integers(1, min(d.max_stride, fits) + 1)) if d.max_stride > 1 else 1
                span = (n - 1) * stride + 1
                t0 = int(rng.integers(0, d.sim_frames - span + 1))  # tracking clips hold sim_frames frames
                with_source = rng.random() < d.source_share
                # (draws in this order, so onset_share=0 and max_stride=1 sample what earlier recipes did)
                from_onset = with_source and d.onset_share > 0 and rng.random() < d.onset_share
                c = _sim_clip(seed, self.cache, d.sim_frames, from_onset)
                if from_onset:  # start just before the blood appears; last start that fits the clip
                    stride, span = 1, n
                    t0 = min(int(c["onset"]) - int(rng.integers(0, 5)), c["frames"].shape[0] - n)
                ts = slice(t0, t0 + span, stride)
                if with_source:  # a crop around the source, which sits under the spreading blood
                    sx, sy = c["source"][t0] + rng.uniform(-0.35, 0.35, 2) * (w, h)
                    x0, y0 = int(np.clip(sx - w / 2, 0, 512 - w)), int(np.clip(sy - h / 2, 0, 384 - h))
                else:
                    x0, y0 = int(rng.integers(0, 512 - w + 1)), int(rng.integers(0, 384 - h + 1))
                frames = c["frames"][ts, y0:y0 + h, x0:x0 + w]
                tracks = c["tracks"][ts] - np.array([x0, y0], np.float32)
                vis = c["visible"][ts] & inside(tracks, (w, h), 1.0)
                if with_source:  # its position is known under blood too: supervised wherever it is in the crop
                    src = c["source"][ts, None] - np.array([x0, y0], np.float32)
                    tracks, vis = np.concatenate([src, tracks], 1), np.concatenate([inside(src, (w, h), 1.0), vis], 1)
                if not from_onset and rng.random() < 0.3:  # play backwards: more motion patterns for free
                    frames, tracks, vis = frames[::-1], tracks[::-1], vis[::-1]
            else:
                frames, tracks, vis = moving_texture_clip(rng, (w, h), n, 96, d.texture_speed)
            sel = pick_points(rng, vis, d.points, keep_first=with_source)
            if sel is not None:
                return photometric(rng, np.ascontiguousarray(frames)), tracks[:, sel], vis[:, sel]
        raise RuntimeError("could not sample a clip with visible points")

    def sample_batch(self, rng: np.random.Generator, split: str = "train") -> dict[str, torch.Tensor]:
        clips = [self._one_clip(rng) for _ in range(self.dcfg.batch_clips)]
        frames = torch.stack([frames_to_tensor(f, self.mcfg.red_mask_source) for f, _, _ in clips], 1)
        return {"frames": frames,  # (T, B, 4, H, W)
                "tracks": torch.from_numpy(np.stack([t for _, t, _ in clips], 1)).float(),  # (T, B, N, 2)
                "visible": torch.from_numpy(np.stack([v for _, _, v in clips], 1))}          # (T, B, N)

    # ------------------------------------------------------------------ loss
    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        assert isinstance(model, TrackOnSmall)
        d = self.dcfg
        frames, tracks, visible = batch["frames"], batch["tracks"], batch["visible"].float()
        n_t = frames.shape[0]
        state = model.start(frames[0], tracks[0])
        hints = BatchHints(model.cfg, frames[0], tracks[0])
        terms: dict[str, torch.Tensor] = {k: frames.new_zeros(()) for k in ("ce", "rerank", "huber", "vis", "conf")}
        errs = []
        for t in range(1, n_t):
            feats = model.encode(frames[t])
            hint = hints(frames[t], state.last_xy)
            out, state = model.step_from(feats, state, memory_drop=self.mcfg.mem_drop if model.training else 0.0,
                                         hint_xy=hint)
            tt = track_losses(out, feats, tracks[t], visible[t], model.cfg.stride, d)
            for k in terms:
                terms[k] = terms[k] + tt[k] / (n_t - 1)
            errs.append(tt["err"])
        total = terms["ce"] + d.rerank_weight * terms["rerank"] + terms["huber"] + \
            d.vis_weight * terms["vis"] + d.conf_weight * terms["conf"]
        err = torch.stack(errs)
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["err_px"] = float(err[err >= 0].mean()) if bool((err >= 0).any()) else 0.0
        return total, logs

    # ------------------------------------------------------------------ validation
    def _val_clips(self) -> list[dict[str, np.ndarray]]:
        if self._val is None:
            d = self.dcfg
            self._val = []
            for i in range(d.val_clips):
                rng = np.random.default_rng(VAL_SEED0 + i)
                if i % 2 == 0:
                    c = _sim_clip(VAL_SEED0 + i, self.cache, d.val_frames)
                    frames, tracks, vis = c["frames"], c["tracks"], c["visible"]
                else:
                    frames, tracks, vis = moving_texture_clip(rng, (512, 384), d.val_frames, 64, d.texture_speed)
                    frames = photometric(rng, frames)
                sel = pick_points(rng, vis, d.val_points)
                assert sel is not None
                self._val.append({"frames": frames, "tracks": tracks[:, sel], "visible": vis[:, sel]})
        return self._val

    def validate(self, model: nn.Module) -> dict[str, float]:
        assert isinstance(model, TrackOnSmall)
        errs = []
        for c in self._val_clips():
            x = frames_to_tensor(c["frames"], self.mcfg.red_mask_source)
            pred = run_model_on_clip(model, x, torch.from_numpy(c["tracks"][0]).float())
            e = np.linalg.norm(pred[1:] - c["tracks"][1:], axis=-1)
            errs.append(e[c["visible"][1:]])
        e = np.concatenate(errs)
        res = {f"acc_{t}px": float((e < t).mean()) for t in (5, 10, 25, 50)}
        res["err_avg"] = float(e.mean())
        res["score"] = 0.5 * (res["acc_10px"] + res["acc_25px"])
        return res

    def predictor_config(self) -> dict[str, Any]:
        return {"model": to_dict(self.mcfg)}

    def data_description(self) -> str:
        d = self.dcfg
        return (f"moving textures (procedural + BleedSim tissue, homography + elastic, occluders) and "
                f"BleedSim tracking clips (seeds {TRAIN_SEED0}..{TRAIN_SEED0 + d.sim_pool - 1}); "
                f"{d.clip_len}-frame unrolls, {d.crop[0]}x{d.crop[1]} crops, {d.points} points/clip")


class BatchHints:
    """One camera-motion hint per clip of a batch: the prior's second centre when the model is
    configured with `motion_mix` (None otherwise), exactly as `PointTracker` computes it."""

    def __init__(self, cfg: TrackerConfig, first: torch.Tensor, first_xy: torch.Tensor) -> None:
        """`first` (B, 4, H, W) and `first_xy` (B, N, 2): the frame and points the unroll starts from."""
        self.hints = [MotionHint(cfg.hint_mode) for _ in range(first.shape[0])] if cfg.motion_mix else None
        self(first, first_xy)

    def __call__(self, frame: torch.Tensor, last_xy: torch.Tensor) -> torch.Tensor | None:
        """frame (B, 4, H, W) in [0, 1], last_xy (B, N, 2) -> carried points (B, N, 2) or None."""
        if self.hints is None:
            return None
        rgb = (frame[:, :3].detach() * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        last = last_xy.detach().cpu().double().numpy()
        moved = [h.carry(np.ascontiguousarray(img), pts) for h, img, pts in zip(self.hints, rgb, last)]
        return torch.from_numpy(np.stack(moved)).float().to(last_xy.device)


def track_losses(out: dict[str, Any], feats: dict[str, torch.Tensor], gt: torch.Tensor, vis: torch.Tensor,
                 stride: int, d: TrackDataConfig) -> dict[str, torch.Tensor]:
    """Per-frame losses for predictions `out` against gt (B, N, 2) and visibility (B, N)."""
    logits = out["logits"]
    b, n, p = logits.shape
    w = int(feats["size"][0])
    w8 = (w + stride - 1) // stride
    cx = (gt[..., 0] / stride).floor().clamp(0, w8 - 1)
    cy = (gt[..., 1] / stride).floor().clamp(0, p // w8 - 1)
    target = (cy * w8 + cx).long()
    vsum = vis.sum().clamp(min=1)
    ce = (F.cross_entropy(logits.reshape(b * n, p), target.reshape(-1), reduction="none") * vis.reshape(-1)).sum() / vsum
    # re-ranking: the candidate nearest the truth, when one is within 1.5 cells
    cand = feats["centres"][out["topk_idx"]]  # (B, N, K, 2)
    dist = (cand - gt.unsqueeze(2)).norm(dim=-1)
    near, j = dist.min(-1)
    rmask = vis * (near < 1.5 * stride).float()
    rr = (F.cross_entropy(out["rerank"].reshape(b * n, -1), j.reshape(-1), reduction="none") * rmask.reshape(-1)).sum() \
        / rmask.sum().clamp(min=1)
    huber = logits.new_zeros(())
    for pts in out["points"]:
        hl = F.smooth_l1_loss(pts, gt, beta=d.huber_px, reduction="none").sum(-1) / stride
        huber = huber + (hl * vis).sum() / vsum
    err = (out["points"][-1] - gt).norm(dim=-1).detach()
    vis_bce = F.binary_cross_entropy_with_logits(out["vis_logit"], vis)
    conf_t = (err < d.conf_px).float()
    conf = (F.binary_cross_entropy_with_logits(out["conf_logit"], conf_t, reduction="none") * vis).sum() / vsum
    e = torch.where(vis > 0.5, err, torch.full_like(err, -1.0))
    return {"ce": ce, "rerank": rr, "huber": huber, "vis": vis_bce, "conf": conf, "err": e.flatten()}


@torch.no_grad()
def run_model_on_clip(model: TrackOnSmall, x: torch.Tensor, xy0: torch.Tensor) -> np.ndarray:
    """Online run over frames x (T, 4, H, W) from points xy0 (N, 2) at frame 0 -> (T, N, 2)."""
    state = model.start(x[:1], xy0[None])
    hints = BatchHints(model.cfg, x[:1], xy0[None])
    out = [xy0.numpy()]
    for t in range(1, x.shape[0]):
        pts, _, _, state = model.step(x[t:t + 1], state, hints(x[t:t + 1], state.last_xy))
        out.append(pts[0].numpy())
    return np.stack(out)


@dataclass
class SparseTargets:
    """A sparsely labelled clip prepared for fine-tuning (frames at the model size)."""

    frames: torch.Tensor       # (T, 4, H, W)
    gt: torch.Tensor           # (T, N, 2) model pixels
    gt_mask: torch.Tensor      # (T, N) bool
    pseudo: torch.Tensor       # (T, N, 2)
    pseudo_mask: torch.Tensor  # (T, N) bool


def prepare_sparse_clip(frames: np.ndarray, labels: dict[int, list[Any]], mask_source: str = "shared",
                        size: tuple[int, int] = (512, 384), **pseudo_kw: Any) -> SparseTargets:
    """Resize to the model size, build pseudo-labels between annotations (pseudo_labels.py)."""
    import cv2
    from bleedorigin.models.track.learned.pseudo_labels import pseudo_label_clip
    h, w = frames.shape[1:3]
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    mapper = FrameMapper((w, h), size)
    lab = {k: [None if p is None else tuple(mapper.to_model(p)) for p in v] for k, v in labels.items()}
    gt, gm, ps, pm = pseudo_label_clip(small, lab, **pseudo_kw)
    return SparseTargets(frames_to_tensor(small, mask_source), torch.from_numpy(gt), torch.from_numpy(gm),
                         torch.from_numpy(ps), torch.from_numpy(pm))


def finetune_sparse(model: TrackOnSmall, clips: list[SparseTargets], steps: int = 100, kind: str = "lora",
                    r: int = 8, lr: float = 5e-4, window: int = 31, seed: int = 0) -> TrackOnSmall:
    """LoRA/AdaLoRA fine-tuning on sparse labels (loss 0.6 Huber(GT) + 0.4 mean Huber(pseudo)).

    Each step unrolls `window` frames from a labelled frame of a random clip, started from the
    annotation. Returns the merged plain model (adapters folded in)."""
    from bleedorigin.models.track.learned.lora import apply_lora, base_model, lora_step, merge_lora
    from bleedorigin.models.track.learned.pseudo_labels import sparse_label_loss
    rng = np.random.default_rng(seed)
    peft_model = apply_lora(model, kind, r=r, total_step=steps)
    net = base_model(peft_model)
    net.train()
    for m in net.backbone.modules():  # frozen backbone: keep its BatchNorm statistics too
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        c = clips[int(rng.integers(len(clips)))]
        starts = [t for t in range(len(c.frames) - 1) if bool(c.gt_mask[t].any())]
        t0 = starts[int(rng.integers(len(starts)))]
        t1 = min(len(c.frames), t0 + window)
        act = c.gt_mask[t0].float()[None]
        state = net.start(c.frames[t0:t0 + 1], c.gt[t0][None], act)
        hints = BatchHints(net.cfg, c.frames[t0:t0 + 1], c.gt[t0][None])
        preds = []
        for t in range(t0 + 1, t1):
            hint = hints(c.frames[t:t + 1], state.last_xy)
            out, state = net.step_from(net.encode(c.frames[t:t + 1]), state, hint_xy=hint)
            preds.append(out["points"][-1][0])
        pred = torch.stack(preds)
        keep = act[0].bool()
        loss = sparse_label_loss(pred[:, keep], c.gt[t0 + 1:t1][:, keep], c.gt_mask[t0 + 1:t1][:, keep],
                                 c.pseudo[t0 + 1:t1][:, keep], c.pseudo_mask[t0 + 1:t1][:, keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lora_step(peft_model, step)
        log.info("finetune step %d loss %.4f", step, float(loss.detach()))
    merged = merge_lora(peft_model)
    return merged.eval()
