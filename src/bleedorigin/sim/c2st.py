"""Classifier two-sample test: can a small CNN tell BleedSim frames from real ESD frames?

Crops of frames at the real clips' scale (112 px high) are the samples. For each real clip in
turn (leave one clip out) a small CNN is trained on the other real clips' crops against as many
BleedSim crops, then scores the held-out clip's crops against BleedSim crops of clips it never
saw; the ROC AUC of that split is the fold's realism score (0.5 = indistinguishable, 1 = always
told apart). Cheap on a CPU: 32x32 crops, a three-layer network, a few epochs.

One run is noisy (crop draws, network initialisation), so the test repeats with fresh crops and
a fresh network and averages; differences between BleedSim variants are paired per real clip and
come with a bootstrap interval over the real clips.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from bleedorigin.sim.appearance import FEATURES, Appearance
from bleedorigin.sim.generator import generate_clip, with_appearance

STAT_HEIGHT = 112  # frames are compared at this height (the real samples' own)
CROP = 32
FRAMES_PER_CLIP = 24
CROPS_PER_FRAME = 4


@dataclass(frozen=True)
class C2STConfig:
    epochs: int = 6
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0
    repeats: int = 3  # fresh crops and network per repeat; the AUC is their mean


def clip_crops(frames: np.ndarray, rng: np.random.Generator, n_frames: int = FRAMES_PER_CLIP) -> np.ndarray:
    """(N, 3, CROP, CROP) uint8 crops from `n_frames` evenly spaced frames, centres drawn in
    the middle 60 % of the view (inside the field stop in every endoscope framing)."""
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int))
    out = []
    for i in idx:
        f = frames[i]
        h, w = f.shape[:2]
        f = cv2.resize(f, (max(CROP, round(w * STAT_HEIGHT / h)), STAT_HEIGHT), interpolation=cv2.INTER_AREA)
        h, w = f.shape[:2]
        for _ in range(CROPS_PER_FRAME):
            cx = int(rng.uniform(0.2 * w + CROP / 2, 0.8 * w - CROP / 2)) if w > 2.5 * CROP else w // 2
            cy = int(rng.uniform(0.2 * h + CROP / 2, 0.8 * h - CROP / 2))
            x0, y0 = max(0, cx - CROP // 2), max(0, cy - CROP // 2)
            out.append(f[y0:y0 + CROP, x0:x0 + CROP].transpose(2, 0, 1))
    return np.stack(out)


def _net() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 32),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1))


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).float().div_(255).sub_(0.5)


def roc_auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U)."""
    ranks = rankdata(np.concatenate([scores_pos, scores_neg]))  # ties share their mean rank
    n1, n0 = len(scores_pos), len(scores_neg)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def fold_auc(real_train: np.ndarray, sim_train: np.ndarray, real_test: np.ndarray, sim_test: np.ndarray,
             cfg: C2STConfig) -> float:
    """Train real (1) vs sim (0) on the training crops; AUC on the test crops."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: extra threads only contend on a shared CPU
    try:
        return _fold_auc(real_train, sim_train, real_test, sim_test, cfg)
    finally:
        torch.set_num_threads(threads)


def _fold_auc(real_train: np.ndarray, sim_train: np.ndarray, real_test: np.ndarray, sim_test: np.ndarray,
              cfg: C2STConfig) -> float:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    x = np.concatenate([real_train, sim_train])
    y = np.concatenate([np.ones(len(real_train)), np.zeros(len(sim_train))]).astype(np.float32)
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), cfg.batch):
            b = order[i:i + cfg.batch]
            xb = _tensor(x[b])
            if rng.random() < 0.5:
                xb = xb.flip(3)
            loss = loss_fn(net(xb)[:, 0], torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pos = net(_tensor(real_test))[:, 0].numpy()
        neg = net(_tensor(sim_test))[:, 0].numpy()
    return roc_auc(pos, neg)


def c2st_realism(sim: dict[str, np.ndarray], real: dict[str, np.ndarray],
                 cfg: C2STConfig = C2STConfig()) -> dict[str, Any]:
    """Leave-one-real-clip-out classifier two-sample test, `cfg.repeats` times with fresh crops
    and networks; {"auc": mean over folds and repeats, "folds": {real clip: mean AUC over
    repeats}, "repeat_auc": [mean over folds of each repeat], "n_real", "n_sim",
    "crops_per_real_clip"}."""
    if len(real) < 2 or len(sim) < 2:
        raise ValueError("the classifier test needs at least 2 real and 2 synthetic clips")
    runs = [_c2st_once(sim, real, replace(cfg, seed=cfg.seed + 1000 * r)) for r in range(max(1, cfg.repeats))]
    folds = {k: float(np.mean([run[k] for run in runs])) for k in sorted(real)}
    return {"auc": float(np.mean(list(folds.values()))), "folds": folds,
            "repeat_auc": [float(np.mean(list(run.values()))) for run in runs],
            "n_real": len(real), "n_sim": len(sim), "crops_per_real_clip": FRAMES_PER_CLIP * CROPS_PER_FRAME}


def _c2st_once(sim: dict[str, np.ndarray], real: dict[str, np.ndarray], cfg: C2STConfig) -> dict[str, float]:
    """One leave-one-real-clip-out pass: {held-out real clip: AUC}."""
    rng = np.random.default_rng(cfg.seed)
    real_crops = {k: clip_crops(v, rng) for k, v in real.items()}
    sim_names = sorted(sim)
    sim_crops = {k: clip_crops(sim[k], rng, max(1, FRAMES_PER_CLIP * len(real) // len(sim))) for k in sim_names}
    # BleedSim clips split into as many groups as there are real clips (or fewer, when there are
    # fewer BleedSim clips): test crops come from synthetic clips the fold did not train on,
    # like the held-out real clip
    n_groups = min(len(real), len(sim))
    groups = {k: i % n_groups for i, k in enumerate(sim_names)}
    folds = {}
    for i, held in enumerate(sorted(real)):
        r_train = np.concatenate([c for k, c in real_crops.items() if k != held])
        r_test = real_crops[held]
        s_train = np.concatenate([sim_crops[k] for k in sim_names if groups[k] != i % n_groups])
        s_test = np.concatenate([sim_crops[k] for k in sim_names if groups[k] == i % n_groups])
        pick = np.random.default_rng(cfg.seed + i)
        s_train = s_train[pick.permutation(len(s_train))[:len(r_train)]]  # the same number as real
        s_test = s_test[pick.permutation(len(s_test))[:len(r_test)]]
        folds[held] = fold_auc(r_train, s_train, r_test, s_test, cfg)
    return folds


def paired_difference(a: dict[str, float], b: dict[str, float], n_boot: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """Mean over real clips of a - b (per-clip AUCs of two variants on the same folds) and its
    95 % bootstrap interval, resampling the real clips."""
    keys = sorted(a)
    d = np.array([a[k] - b[k] for k in keys])
    boot = d[np.random.default_rng(seed).integers(len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi)}


def appearance_variants(ablation: bool = True, texture_from: str | None = None) -> dict[str, Any]:
    """The BleedSim looks compared: v1, v2 (`Appearance.all()`) and, with `ablation`, every
    feature on ("every") and every feature but one ("every - f"); with `texture_from`, also v2
    (and every feature) with real tissue texture from those clips."""
    out = {"v1": Appearance(), "v2": Appearance.all()}
    if texture_from:
        out["v2 + real_texture"] = Appearance.all().with_texture(texture_from)
    if ablation:
        every = Appearance.every()
        out["every"] = every
        out.update({f"every - {f}": every.without(f) for f in FEATURES})
        if texture_from:
            out["every + real_texture"] = every.with_texture(texture_from)
    return out


def appearance_ablation(real: dict[str, np.ndarray], n_clips: int = 12, seed: int = 0,
                        num_frames: int = 91, size: tuple[int, int] = (256, 192),
                        cfg: C2STConfig = C2STConfig(), ablation: bool = True,
                        texture_from: str | None = None) -> dict[str, Any]:
    """Classifier AUC of the BleedSim variants of `appearance_variants` on the same `n_clips`
    simulated clips (bleeding from frame 0, like the real ones). {"variants": {name: AUC},
    "repeat_auc": {name: [AUC per repeat]}, "folds": {name: {real clip: AUC}}, "vs_v1":
    {name: paired difference}, "vs_v2" and "vs_every": {variant built on it: paired difference}, "features":
    {name: enabled features}, "n_real", "n_sim", "repeats"}."""
    base = [generate_clip("track_long", seed * 1000 + i, size=size, num_frames=num_frames, num_tracks=0)
            for i in range(n_clips)]
    out: dict[str, Any] = {"variants": {}, "repeat_auc": {}, "folds": {}, "vs_v1": {}, "vs_v2": {}, "vs_every": {},
                           "features": {}, "n_real": len(real), "n_sim": n_clips, "repeats": cfg.repeats}
    for name, app in appearance_variants(ablation, texture_from).items():
        sim = {f"sim_{i}": with_appearance(c, app) for i, c in enumerate(base)}
        r = c2st_realism(sim, real, cfg)
        out["variants"][name], out["repeat_auc"][name], out["folds"][name] = r["auc"], r["repeat_auc"], r["folds"]
        out["features"][name] = app.enabled
        if name != "v1":
            out["vs_v1"][name] = paired_difference(r["folds"], out["folds"]["v1"])
        for ref in ("v2", "every"):
            if name.startswith(f"{ref} "):  # a variant built on ref ("every - smoke")
                out[f"vs_{ref}"][name] = paired_difference(r["folds"], out["folds"][ref])
    return out
