"""Fine-tune a trained tracker on your own sparsely labelled clips (paper section 4.2).

`bleedorigin finetune track DATA --out DIR`: every clip of DATA (a benchmark folder or sample
clip folders) with at least two annotated frames is turned into GT + pseudo-label targets
(`prepare_sparse_clip`), LoRA/AdaLoRA adapters are trained on attention and MLP layers
(`finetune_sparse`), merged, and the result is saved as a checkpoint folder that `--model DIR`
accepts everywhere.
"""
from __future__ import annotations

import logging
from pathlib import Path

from bleedorigin.errors import InputError
from bleedorigin.io.bench import Clip, discover_clips
from bleedorigin.io.video import read_frames
from bleedorigin.models.track.learned.predictor import load_tracker_net
from bleedorigin.models.track.learned.train import finetune_sparse, prepare_sparse_clip
from bleedorigin.models.track.learned.variants import VARIANTS
from bleedorigin.io.checkpoint import save_checkpoint
from bleedorigin.utils.progress import track

log = logging.getLogger(__name__)


def labelled_frames(clip: Clip) -> int:
    return sum(any(p is not None for p in pts) for pts in clip.labels.values())


def finetune_tracker(data: str | Path, out: str | Path, model: str = "track_small_blood", steps: int = 100,
                     kind: str = "lora", rank: int = 8, lr: float = 5e-4, window: int = 31, seed: int = 0,
                     progress: bool = True) -> Path:
    """Fine-tune `model` (a checkpoint folder, or a registered configuration of the shipped
    weights such as `track_small_blood`) on the sparse labels under `data`; returns
    `out`, which runs with the same run-time settings as `model`."""
    if steps < 1:
        raise InputError(f"--steps must be >= 1, got {steps}")
    if kind not in ("lora", "adalora"):
        raise InputError(f"--kind must be lora or adalora, got {kind!r}")
    clips = [c for c in discover_clips(data) if labelled_frames(c) >= 2]
    if not clips:
        raise InputError(f"{data}: no clip with at least two annotated frames to fine-tune on")
    runtime = VARIANTS.get(model)
    net, config, folder = load_tracker_net("small" if runtime is not None else model)
    targets = [prepare_sparse_clip(read_frames(c.video), c.labels, mask_source=net.cfg.red_mask_source)
               for c in track(clips, total=len(clips), description="pseudo-labels", unit="clip",
                              enabled=progress)]
    log.info("fine-tuning %s on %d clips for %d steps (%s, rank %d)", folder.name, len(clips), steps, kind, rank)
    tuned = finetune_sparse(net, targets, steps=steps, kind=kind, r=rank, lr=lr, window=window, seed=seed)
    recipe = {"from": str(folder), "data": str(data), "clips": [c.id for c in clips], "steps": steps,
              "kind": kind, "rank": rank, "lr": lr, "window": window, "seed": seed}
    new_config = {k: v for k, v in config.items() if k != "checksum"} | {"finetune": recipe}
    if runtime:  # a registered configuration: the new folder runs the same way
        new_config["runtime"] = runtime
    card = (f"# Tracker fine-tuned from `{folder.name}`\n\n"
            f"Command: `bleedorigin finetune track {data} --out {out} --model {model} --steps {steps} "
            f"--kind {kind} --rank {rank}`\n\nClips ({len(clips)}): {', '.join(c.id for c in clips)}\n\n"
            "Evaluate it on held-out clips: `bleedorigin evaluate HELD_OUT --out DIR --stages track "
            f"--models {out}`.\n")
    return save_checkpoint(out, tuned.state_dict(), new_config, card)
