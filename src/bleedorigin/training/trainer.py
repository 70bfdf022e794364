"""The one Trainer for every stage: AdamW + warm-up/cosine, clipping, JSONL logs, checkpoints,
resume, and DDP under torchrun. Stage specifics live in a `StageTask` (task.py).

Randomness is derived from (seed, rank, step) at every step, so a resumed run draws the same
batches and dropout masks as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import bleedorigin
from bleedorigin.config import Recipe, TrainConfig, load_recipe, save_yaml, to_dict
from bleedorigin.errors import InputError
from bleedorigin.io.checkpoint import load_checkpoint, load_trainer_state, model_card, save_checkpoint
from bleedorigin.models.weights import checkpoint_folder
from bleedorigin.training.distributed import (DistInfo, barrier, broadcast_float, cleanup,
                                              init_distributed, local_device, mean_across)
from bleedorigin.training.task import StageTask, task_class, to_device
from bleedorigin.utils.progress import track

log = logging.getLogger(__name__)


class _LossModule(nn.Module):
    """Routes task.loss through forward() so DDP sees it; the task gets the bare model."""

    def __init__(self, model: nn.Module, task: StageTask):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self.task.loss(self.model, batch)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine down to cfg.min_lr_ratio at cfg.steps."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    p = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # no decay on biases and norm scales (1-D parameters)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def _resolve_device(name: str) -> torch.device:
    from bleedorigin.models.weights import resolve_device
    return resolve_device(name)


class Trainer:
    def __init__(self, task: StageTask, cfg: TrainConfig, out: str | Path,
                 recipe: Recipe | None = None, command: str | None = None):
        self.task, self.cfg, self.out = task, cfg, Path(out)
        self.recipe = recipe
        argv = list(sys.argv)
        if argv and argv[0].endswith("trainer.py"):  # launched with python -m / torchrun -m
            argv[0] = "python -m bleedorigin.training.trainer"
        self.command = command or " ".join([argv[0]] + [shlex.quote(a) for a in argv[1:]])

    # ------------------------------------------------------------------ helpers
    def _seed(self, step: int, rank: int) -> np.random.Generator:
        torch.manual_seed(hash((self.cfg.seed, rank, step)) & 0x7FFFFFFF)
        return np.random.default_rng([self.cfg.seed, rank, step])

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def _save(self, name: str, model: nn.Module, step: int, metrics: dict[str, float],
              state: dict[str, Any] | None) -> None:
        config = {"stage": self.task.stage, "version": bleedorigin.__version__,
                  **self.task.predictor_config(), "train": to_dict(self.cfg),
                  "data": dict(self.task.config.get("data", {})), "step": step, "metrics": metrics}
        params = sum(p.numel() for p in model.parameters())
        card = model_card(self.task.stage, self.command, self.task.data_description(), metrics, step, params)
        save_checkpoint(self.out / name, model.state_dict(), config, card, state)

    # ------------------------------------------------------------------ main loop
    def fit(self, resume: bool = False, stop_at: int | None = None) -> dict[str, Any]:
        """Train to cfg.steps (from the last checkpoint with `resume`). `stop_at` ends this call
        early after that step, with a resumable checkpoint (time-boxed jobs, tests)."""
        cfg = self.cfg
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        device = _resolve_device(cfg.device)
        info: DistInfo = init_distributed(device)
        device = local_device(device, info)
        try:
            return self._fit(device, info, resume, stop_at)
        finally:
            cleanup(info)

    def _fit(self, device: torch.device, info: DistInfo, resume: bool, stop_at: int | None) -> dict[str, Any]:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = self.task.build_model().to(device)
        opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
        start, best, best_metrics = 0, -math.inf, {}
        if resume:
            last = self.out / "last"
            if not (last / "trainer_state.pt").is_file():
                raise InputError(f"{last}: nothing to resume from")
            _, weights = load_checkpoint(last)
            model.load_state_dict(weights)
            state = load_trainer_state(last)
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            start, best, best_metrics = state["step"], state["best_score"], state.get("best_metrics", {})
            log.info("resumed from %s at step %d", last, start)
        else:
            if cfg.init_from:
                _init_weights(model, cfg.init_from)
            if info.is_main and (self.out / "log.jsonl").exists():
                (self.out / "log.jsonl").unlink()  # a fresh run starts a fresh log
        if info.is_main and self.recipe is not None:
            save_yaml(self.out / "config.yaml", self.recipe.to_dict())
        wrapped: nn.Module = _LossModule(model, self.task)
        if info.enabled:
            wrapped = nn.parallel.DistributedDataParallel(
                wrapped, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True)
        model.train()
        metrics: dict[str, float] = {}
        done = start
        t0 = time.time()
        steps = track(range(start, cfg.steps), total=cfg.steps - start, unit="step",
                      description=f"train {self.task.stage}", enabled=cfg.progress and info.is_main)
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
        amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        for step in steps:
            rng = self._seed(step, info.rank)
            batch = to_device(self.task.sample_batch(rng, "train"), device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                loss, logs = wrapped(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}: {float(loss)}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)  # clip the true gradients
            gnorm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0 \
                else torch.tensor(0.0)
            scaler.step(opt)
            scaler.update()
            sched.step()
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps or step == start:
                value = mean_across(float(loss.detach()), info, device)
                if info.is_main:
                    self._log({"step": done, "loss": value, "lr": opt.param_groups[0]["lr"],
                               "grad_norm": float(gnorm), "elapsed_s": round(time.time() - t0, 2),
                               **{k: float(v) for k, v in logs.items()}})
            if done % cfg.val_every == 0 or done == cfg.steps:
                metrics = self._validate(model, info, device)
                if info.is_main:
                    self._log({"step": done, "val": metrics})
                    if metrics["score"] > best:
                        best, best_metrics = metrics["score"], metrics
                        self._save("best", model, done, metrics, None)
                model.train()
            stop = stop_at is not None and done >= stop_at
            if done % cfg.save_every == 0 or done == cfg.steps or stop:
                if info.is_main:
                    self._save("last", model, done, metrics or best_metrics,
                               {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                "step": done, "best_score": best, "best_metrics": best_metrics,
                                "seed": cfg.seed, "world_size": info.world_size})
                barrier(info)
            if stop:
                break
        return {"step": done if cfg.steps > start else start, "best_score": best, "best_metrics": best_metrics, "out": str(self.out)}

    def _validate(self, model: nn.Module, info: DistInfo, device: torch.device) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if info.is_main:
            model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.task.validate(model).items()}
            if "score" not in metrics:
                raise KeyError(f"{type(self.task).__name__}.validate() must return a 'score' key")
        broadcast_float(metrics.get("score", 0.0), info, device)  # keeps ranks in step
        return metrics


def _init_weights(model: nn.Module, folder: str) -> None:
    """Start from another checkpoint's weights (a folder, or a shipped name such as
    "onset_small"); the architectures must match exactly."""
    _, weights = load_checkpoint(checkpoint_folder(folder))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise InputError(f"train.init_from={folder}: weights do not fit this model "
                         f"({str(e).splitlines()[0]})") from None
    log.info("initialised from %s", folder)


def train_main(stage: str, config_path: str | Path | None, out: str | Path, overrides: list[str] | tuple[str, ...] = (),
               resume: bool = False, seed: int | None = None, device: str | None = None) -> dict[str, Any]:
    """What `bleedorigin train {onset,source,track} --config FILE --out DIR [--set k=v] [--resume]` does."""
    cls = task_class(stage)
    extra = list(overrides)
    if seed is not None:
        extra.append(f"train.seed={seed}")
    if device is not None:
        extra.append(f"train.device={device}")
    recipe = load_recipe(config_path, stage, extra, cls.model_config_cls, cls.data_config_cls)
    task = cls({"model": recipe.model, "data": recipe.data})
    return Trainer(task, recipe.train, out, recipe).fit(resume=resume)


def main(argv: list[str] | None = None) -> None:
    """`python -m bleedorigin.training.trainer STAGE --config F --out D [--set k=v] [--resume]`
    (the entry point torchrun launches)."""
    import argparse
    p = argparse.ArgumentParser(prog="bleedorigin.training.trainer")
    p.add_argument("stage")
    p.add_argument("--config")
    p.add_argument("--out", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int)
    p.add_argument("--device")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = train_main(a.stage, a.config, a.out, a.overrides, a.resume, a.seed, a.device)
    log.info("done: %s", json.dumps(result, default=str))


if __name__ == "__main__":
    main()
