"""Fine-tuning `track_paper` on sparsely labelled clips, as the paper does (sections 4.2, 5.3).

Adapters (LoRA or AdaLoRA, through peft) go on the attention and MLP layers of the decoder,
memories and heads; the DINOv2 ViT and the adapter backbone stay frozen; the new Red-Mask
key/value module trains in full. Each step unrolls a window of frames from an annotated frame
(backpropagation through both memories) and applies the sparse-label loss (0.6 Huber on
annotations + 0.4 mean Huber on pseudo-labels). The recipe (configs/paper/track_paper_finetune.yaml)
carries the paper's settings: lr 5e-6, 100 epochs, mixed precision on the GPU.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.models.track.paper.model import TrackPaper
from bleedorigin.models.track.learned.train import SparseTargets

log = logging.getLogger(__name__)

_HEADS = ("net.query_decoder", "net.sm_query_updater", "net.rerank_module", "net.offset_head", "net.visibility_head")
_LEAVES = ("mha", "linear1", "linear2", "sampling_offsets", "attention_weights", "value_proj", "output_proj")


@dataclass(frozen=True)
class PaperFinetuneConfig:
    kind: str = "lora"          # lora | adalora
    rank: int = 8
    alpha: float = 16.0
    lr: float = 5e-6            # paper 5.3 (tracking)
    weight_decay: float = 1e-5
    epochs: int = 100           # paper 5.3: 100 epochs on short and on long clips
    steps: int = 0              # > 0 overrides epochs: optimiser steps
    window: int = 31            # frames unrolled per sample: one annotation interval (30) + 1
    clips_per_step: int = 1     # samples per optimiser step (gradient accumulation on one GPU)
    amp: bool = True            # fp16 autocast + loss scaling on CUDA, bf16 autocast on the CPU
    grad_clip: float = 1.0
    seed: int = 0


def lora_targets(model: TrackPaper) -> list[str]:
    """Attention (nn.MultiheadAttention, deformable projections) and MLP layers of the decoder,
    memories and heads; never the backbone."""
    return [name for name, mod in model.named_modules()
            if name.startswith(_HEADS) and name.rsplit(".", 1)[-1] in _LEAVES
            and isinstance(mod, (nn.Linear, nn.MultiheadAttention))]


def _window_starts(c: SparseTargets) -> list[int]:
    """Annotated frames a window can start from."""
    return [t for t in range(len(c.frames) - 1) if bool(c.gt_mask[t].any())]


def _steps(cfg: PaperFinetuneConfig, clips: list[SparseTargets]) -> int:
    if cfg.steps > 0:
        return cfg.steps
    windows = sum(len(_window_starts(c)) for c in clips)  # one epoch = every annotated start once
    return max(1, cfg.epochs * windows // cfg.clips_per_step)


def _sample_loss(model: TrackPaper, c: SparseTargets) -> torch.Tensor:
    """Loss of one window `c`: tracked from its first frame's annotated points to its end."""
    from bleedorigin.models.track.learned.pseudo_labels import sparse_label_loss
    keep = c.gt_mask[0]
    rgb = c.frames[:, :3] * 255.0  # (T, 3, H, W) in 0..255; channel 3 is the Red-Mask
    state = model.start(rgb[:1], c.gt[0][keep])
    preds = []
    for t in range(1, len(c.frames)):
        pts, _, _, state = model.step(rgb[t:t + 1], c.frames[t:t + 1, 3:], state)
        preds.append(pts)
    pred = torch.stack(preds).float()
    return sparse_label_loss(pred, c.gt[1:][:, keep], c.gt_mask[1:][:, keep],
                             c.pseudo[1:][:, keep], c.pseudo_mask[1:][:, keep])


def finetune_paper(model: TrackPaper, clips: list[SparseTargets], cfg: PaperFinetuneConfig,
                   device: str | torch.device = "cpu") -> tuple[TrackPaper, list[float]]:
    """Train adapters on `clips`; returns the merged model and the loss of every step."""
    from bleedorigin.models.track.learned.lora import apply_lora, lora_step
    if cfg.kind not in ("lora", "adalora"):
        raise ConfigError(f"kind must be lora or adalora, got {cfg.kind!r}")
    clips = [c for c in clips if _window_starts(c)]
    if not clips:
        raise InputError("no clip has an annotated frame to start a window from")
    device = torch.device(device)
    steps = _steps(cfg, clips)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = model.to(device)
    peft_model = apply_lora(model, cfg.kind, r=cfg.rank, alpha=cfg.alpha, total_step=steps,  # type: ignore[arg-type]
                            targets=lora_targets(model))
    for p in model.red.parameters():  # the paper's new module has no released weights: train it fully
        p.requires_grad_(True)
    model.train()
    for m in model.net.backbone.modules():  # frozen backbone: its BatchNorm statistics stay too
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and cuda)
    amp_dtype = torch.float16 if cuda else torch.bfloat16
    losses = []
    starts = [_window_starts(c) for c in clips]
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(cfg.clips_per_step):
            i = int(rng.integers(len(clips)))
            t0 = starts[i][int(rng.integers(len(starts[i])))]
            # only the window moves to the device, not the whole clip
            c = clips[i]
            window = SparseTargets(*(x[t0:t0 + cfg.window].to(device)
                                     for x in (c.frames, c.gt, c.gt_mask, c.pseudo, c.pseudo_mask)))
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                loss = _sample_loss(model, window) / cfg.clips_per_step
            scaler.scale(loss).backward()
            total += float(loss.detach())
        if not np.isfinite(total):
            raise FloatingPointError(f"non-finite loss at step {step}")
        scaler.unscale_(opt)
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        lora_step(peft_model, step)
        losses.append(total)
        log.info("track_paper finetune step %d/%d loss %.4f", step + 1, steps, total)
    merged = peft_model.merge_and_unload()
    assert isinstance(merged, TrackPaper)
    return merged.eval(), losses


def load_finetune_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> tuple[PaperFinetuneConfig,
                                                                                           dict[str, Any]]:
    """configs/paper/track_paper_finetune.yaml -> (fine-tuning settings, model settings)."""
    from bleedorigin.config import from_dict, load_yaml
    data = load_yaml(path)
    ft = {**data.get("finetune", {}), **(overrides or {})}
    return from_dict(PaperFinetuneConfig, ft, f"{path} finetune"), dict(data.get("model", {}))


def finetune_track_paper(data: str | Path, out: str | Path, recipe: str | Path | None = None,
                         device: str = "auto", progress: bool = True, **overrides: Any) -> Path:
    """Fine-tune track_paper (weights as `bleedorigin weights` finds them) on the sparse labels of
    every clip under `data` with at least two annotated frames; writes `out/model.safetensors`
    (load it with track_paper(checkpoint=...) or $BLEEDORIGIN_TRACKON), config.json and a card."""
    from bleedorigin.io.bench import discover_clips
    from bleedorigin.io.video import read_frames
    from bleedorigin.models.track.paper import build_track_paper
    from bleedorigin.models.track.learned.finetune import labelled_frames
    from bleedorigin.models.track.learned.train import prepare_sparse_clip
    from bleedorigin.models.weights import resolve_device
    from bleedorigin.io.checkpoint import save_checkpoint
    from bleedorigin.utils.progress import track
    cfg, model_cfg = load_finetune_recipe(recipe, overrides) if recipe else (PaperFinetuneConfig(**overrides), {})
    clips = [c for c in discover_clips(data) if labelled_frames(c) >= 2]
    if not clips:
        raise InputError(f"{data}: no clip with at least two annotated frames to fine-tune on")
    targets = [prepare_sparse_clip(read_frames(c.video), c.labels, mask_source="shared")
               for c in track(clips, total=len(clips), description="pseudo-labels", unit="clip", enabled=progress)]
    model, model_id = build_track_paper(**model_cfg)
    tuned, losses = finetune_paper(model, targets, cfg, resolve_device(device))
    config = {"stage": "track", "preset": "track_paper", "from": model_id, "model": model_cfg,
              "finetune": {**cfg.__dict__, "data": str(data), "clips": [c.id for c in clips],
                           "final_loss": losses[-1]}}
    card = (f"# track_paper fine-tuned from `{model_id}`\n\nRecipe: {recipe or 'defaults (the paper)'}; "
            f"{len(losses)} steps on {len(clips)} clips ({', '.join(c.id for c in clips)}); last loss {losses[-1]:.4f}.\n")
    return save_checkpoint(out, tuned.state_dict(), config, card)
