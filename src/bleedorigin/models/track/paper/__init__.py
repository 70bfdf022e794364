"""Track-On v1 at the paper's scale (`track_paper`): frozen DINOv2 ViT-S/14 + ViT-Adapter, query
decoder with spatial and context memories, re-ranking, offset and visibility heads, plus the
paper's Red-Mask keys/values. Loads the released Track-On checkpoint (or DINOv2 weights) from
local files; see docs/paper-models.md and `bleedorigin weights`.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch

from bleedorigin.models.paper_weights import find_local
from bleedorigin.models.registry import register_model
from bleedorigin.models.track.paper.loading import load_dinov2, load_track_paper
from bleedorigin.models.track.paper.model import TrackOn, TrackOnConfig, TrackPaper
from bleedorigin.models.track.paper.predictor import PaperTracker

__all__ = ["TrackOn", "TrackOnConfig", "TrackPaper", "PaperTracker", "build_track_paper"]

log = logging.getLogger(__name__)

INFERENCE_MEMORY = 48  # Track-On's memory length at test time (DAVIS, RoboTAP)


def build_track_paper(checkpoint: str = "", dinov2: str = "", seed: int = 0, red_dim: int = 32,
                      infer_memory: int = INFERENCE_MEMORY, **cfg: Any) -> tuple[TrackPaper, str]:
    """The network and its model id. Weights: `checkpoint` (the released Track-On file, or a
    fine-tuned track_paper file or folder), else `dinov2` (ViT only),
    else $BLEEDORIGIN_TRACKON / $BLEEDORIGIN_DINOV2, else the files `bleedorigin weights
    --download` placed; with none of them the network is random (seeded) and says so. `cfg`:
    TrackOnConfig fields (`memory` is the trained length the weights have); both memories are
    then stretched to `infer_memory`."""
    torch.manual_seed(seed)
    model = TrackPaper(TrackOnConfig(**cfg), red_dim)
    ckpt = checkpoint or os.environ.get("BLEEDORIGIN_TRACKON", "") or str(find_local("track_paper", "trackon_v1") or "")
    if ckpt:
        model_id = f"track:paper@{load_track_paper(model, ckpt)}"
    else:
        vit = dinov2 or os.environ.get("BLEEDORIGIN_DINOV2", "") or str(find_local("track_paper", "dinov2_vits14_hub")
                                                                       or "")
        if vit:
            load_dinov2(model.net, vit)
            model_id = "track:paper@dinov2-untrained-head"
        else:
            log.warning("track_paper: no Track-On or DINOv2 weights found (see `bleedorigin weights`); "
                        "running with random weights")
            model_id = "track:paper-untrained"
    if infer_memory != model.net.query_decoder.memory_size:  # stretched after loading the trained length
        model.net.with_memory(infer_memory, infer_memory)
    return model, model_id


@register_model("track_paper")
def track_paper(device: str = "auto", checkpoint: str = "", dinov2: str = "", seed: int = 0,
                refresh_every: int = 60, **overrides: Any) -> PaperTracker:
    model, model_id = build_track_paper(checkpoint, dinov2, seed, **overrides)
    return PaperTracker(model, device, model_id, refresh_every)
