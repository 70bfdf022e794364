"""`SourceTask`: BleedSim data, pseudo-labels and the Eq. 5 loss for the source localizer.

A training sample is one labelled frame shortly after the onset (the source must be found when
blood has just appeared) plus some of its n = 10 predecessors, whose labels are the real label
carried backwards with DIS flow (pseudo-labels, pseudo_labels.py). Pseudo frames before the
onset hold no blood and are not used. Loss (Eq. 5):

    L = heat_weight * (0.5 MSE(H_p, H_gt) + 0.5 mean_n MSE(H_p^n, H_pseudo^n)) + Huber_1(P_pred, P_gt)

with H = sigmoid of the fused heat-map, Gaussian targets of cfg.sigma, and the Huber term
(delta = 1) on soft-arg-max coordinates measured in `coord_unit` network pixels.
`heat_weight` rescales the per-pixel MSE, which is ~1e-3 for a sparse Gaussian, to the
Huber term's order (the paper gives the relative weights, not the units).

Domain randomisation toward real footage: `appearance` (share of training clips rendered with
the BleedSim appearance features of `appearance_features`, fixed per seed), `val_appearance`
(validation clips with them) and `degrade` (share of training frames given a random
real-footage look, vision/degrade.py).

Data splits by BleedSim seed: train from `train_seed`, validation from `val_seed`, test from
`test_seed` (900000+, never trained on). Clips are cached as .npz under `cache_dir`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bleedorigin import MODEL_SIZE
from bleedorigin.config import from_dict, to_dict
from bleedorigin.errors import InputError
from bleedorigin.io.importers import read_sparse_labels
from bleedorigin.models.source.model import SourceConfig, SourceNet, refined_peak, soft_argmax
from bleedorigin.models.source.predictor import compute_red_mask, to_model
from bleedorigin.models.source.pseudo_labels import gaussian_heatmaps, propagate_point
from bleedorigin.sim.appearance import Appearance
from bleedorigin.training.task import StageTask
from bleedorigin.vision.degrade import Degrade
from bleedorigin.vision.flow import chain_flows, dis_flow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceDataConfig:
    cache_dir: str = "runs/cache/source"
    train_kind: str = "full"          # BleedSim kind of training clips (onset anywhere)
    train_frames: int = 64            # frames generated per training clip
    train_pool: int = 400             # distinct training clips (generated lazily, then cached)
    train_seed: int = 0
    val_clips: int = 24
    val_seed: int = 800000
    test_seed: int = 900000
    max_after: int = 15               # labelled frames are onset .. onset + max_after
    pseudo_n: int = 10                # n of the paper: pseudo-labelled predecessors
    pseudo_per_sample: int = 2        # of which this many are drawn per sample (mean is unbiased)
    samples_per_batch: int = 2
    flow_preset: str = "medium"
    heat_weight: float = 200.0
    lambda_real: float = 0.5
    lambda_pseudo: float = 0.5
    huber_delta: float = 1.0
    coord_weight: float = 1.0
    coord_unit: float = 4.0           # network pixels per Huber unit
    augment: bool = True
    max_shift: float = 0.2            # random translation, fraction of the frame
    vary_blood: bool = False          # training clips with randomised blood colour/darkening
    appearance: float = 0.0           # share of training clips with BleedSim appearance features
    appearance_features: str = "all"  # which features those (and validation) clips get (Appearance.parse; all = v2)
    val_appearance: bool = False      # validation (and test) clips with those features too
    degrade: float = 0.0              # share of training frames given a random real-footage look
                                      # (resolution drop to ~112 px and back, blur, JPEG, white balance)
    bench_dirs: tuple[str, ...] = ()  # your own annotated clips (benchmark folders or clip folders)
    bench_fraction: float = 0.5       # share of training samples drawn from bench_dirs when given
    bench_stride: int = 5             # with a clip's dense labels (labels_dense.json): every this many frames


def _sim_clip(kind: str, seed: int, frames: int | None, vary_blood: bool = False,
              appearance: Appearance | None = None) -> Any:
    from bleedorigin.sim import generate_clip
    return generate_clip(kind, seed, size=MODEL_SIZE, num_frames=frames, num_tracks=0, vary_blood=vary_blood,
                         appearance=appearance)


def is_v2(seed: int, share: float) -> bool:
    """Whether training clip `seed` has BleedSim v2 appearance: a fixed share of the pool, decided
    by the seed so a cached clip keeps its look across runs."""
    return share > 0 and np.random.default_rng([seed, 20]).random() < share


def source_labels(clip: Any) -> dict[int, tuple[float, float]]:
    """Frames of a clip whose label is the bleeding source: single-point sparse clips (every
    labelled frame) and detect/full clips (labelled frames from the onset on)."""
    if clip.kind == "sparse":
        first = clip.labels.get(min(clip.labels)) if clip.labels else None
        if not first or len(first) != 1:
            return {}  # multi-point clips mark tissue/instruments, not a bleeding source
        start = 0
    elif clip.kind in ("detect", "full") and clip.onset_frame is not None:
        start = clip.onset_frame
    else:
        return {}
    return {t: (float(p[0][0]), float(p[0][1])) for t, p in clip.labels.items()
            if t >= start and len(p) == 1 and p[0] is not None}


def bench_labels(clip: Any, stride: int) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[float, float]]]:
    """(training labels, every known label) of one of your clips: its source labels, and when it has
    dense labels (labels_dense.json, a single-point clip) every `stride`-th frame of them too; the
    dense labels also give the predecessors' labels, so no flow is needed for those."""
    labels = source_labels(clip)
    if not labels:
        return {}, {}
    dense = getattr(clip, "dense_labels", None)
    if clip.kind != "sparse" or dense is None or not Path(dense).is_file():
        return labels, labels
    known = {t: (float(p[0][0]), float(p[0][1])) for t, p in read_sparse_labels(Path(dense)).items()
             if len(p) == 1 and p[0] is not None}
    picked = {t: xy for t, xy in known.items() if t % max(1, stride) == 0}
    return {**picked, **labels}, {**known, **labels}


def bench_source_items(roots: tuple[str, ...], size: tuple[int, int], d: SourceDataConfig) -> list[dict[str, np.ndarray]]:
    """Your own labelled frames as training items shaped like `SourceTask.train_clip`: the
    labelled frame last, its `pseudo_n` predecessors before it, their labels from the dense labels
    where the clip has them, else the label carried back with flow."""
    from bleedorigin.io.bench import discover_clips
    from bleedorigin.io.video import read_frames
    from bleedorigin.utils.progress import track

    clips = [c for root in roots for c in discover_clips(root) if c.split in (None, "train")]
    wanted = [(c, *bench_labels(c, d.bench_stride)) for c in clips]
    wanted = [w for w in wanted if w[1]]
    if not wanted:
        raise InputError(f"data.bench_dirs {list(roots)}: no training clips with bleeding-source labels")
    items = []
    for clip, labels, known in track(wanted, description="reading your labelled clips"):
        video = read_frames(clip.video)
        in_size = (video.shape[2], video.shape[1])
        for t, xy in sorted(labels.items()):
            if t >= len(video):
                continue
            frames = video[max(0, t - d.pseudo_n):t + 1]
            before = [known.get(t - k) for k in range(1, d.pseudo_n + 1)]
            if all(p is not None for p in before[:len(frames) - 1]):
                chain = np.array([p if p is not None else (np.nan, np.nan) for p in before], np.float64)
            else:
                chain = propagate_point(frames, len(frames) - 1, xy, d.pseudo_n, -1, d.flow_preset)
            gt = np.full((len(frames), 2), np.nan, np.float32)
            gt[-1] = to_model(np.array(xy), in_size, size)
            pseudo = np.full((len(frames), d.pseudo_n, 2), np.nan, np.float32)
            pseudo[-1] = to_model(chain, in_size, size)
            items.append({"frames": np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]),
                          "gt": gt, "pseudo": pseudo})
    log.info("source training also draws %d labelled frames of %d clips", len(items), len(wanted))
    return items


class SourceTask(StageTask):
    stage = "source"
    model_config_cls = SourceConfig
    data_config_cls = SourceDataConfig

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        model = dict(self.config["model"])
        model.setdefault("red_mask", "vision")
        self.cfg: SourceConfig = from_dict(SourceConfig, model, "model")
        self.data: SourceDataConfig = from_dict(SourceDataConfig, self.config["data"], "data")
        try:
            self.appearance = Appearance.parse(self.data.appearance_features)
        except ValueError as e:
            raise InputError(f"data.appearance_features: {e}") from None
        # v2 clips are cached under their feature names, so another feature set is never reused
        self.v2_tag = "_v2-" + "+".join(self.appearance.enabled)
        self.config = {"model": to_dict(self.cfg), "data": to_dict(self.data)}
        self._train: dict[int, dict[str, np.ndarray]] = {}
        self._val: list[dict[str, np.ndarray]] | None = None
        self.bench = bench_source_items(self.data.bench_dirs, tuple(self.cfg.input_size), self.data) \
            if self.data.bench_dirs else None

    # ------------------------------------------------------------------ model
    def build_model(self) -> nn.Module:
        return SourceNet(self.cfg)

    def predictor_config(self) -> dict[str, Any]:
        return {"model": to_dict(self.cfg), "preprocessing": {"input_size": list(self.cfg.input_size),
                                                              "red_mask": self.cfg.red_mask}}

    def data_description(self) -> str:
        d = self.data
        own = (f"; plus {d.bench_fraction:.0%} of samples from the labelled frames of "
               f"{', '.join(d.bench_dirs)}" if d.bench_dirs else "")
        return (f"BleedSim `{d.train_kind}` clips ({d.train_frames} frames, 512x384), seeds {d.train_seed}.."
                f"{d.train_seed + d.train_pool - 1}; labelled frames onset..onset+{d.max_after}, "
                f"{d.pseudo_n} DIS pseudo-labelled predecessors; validation `detect` seeds {d.val_seed}+ "
                f"{'with the appearance features ' if d.val_appearance else ''}"
                f"({d.val_clips} clips, onset frame); test seeds {d.test_seed}+ never used{own}"
                + (f"; {d.appearance:.0%} of clips with BleedSim v2 appearance ({', '.join(self.appearance.enabled)})"
                   if d.appearance > 0 else "")
                + (f"; {d.degrade:.0%} of frames degraded (~112 px, blur, JPEG, white balance)" if d.degrade > 0 else ""))

    # ------------------------------------------------------------------ data
    def _cache_path(self, split: str, seed: int) -> Path:
        w, h = self.cfg.input_size
        tag = f"{split}_{self.data.train_kind if split == 'train' else 'detect'}_{w}x{h}"
        if split == "train" and self.data.vary_blood:
            tag += "_varyblood"
        if split == "train" and is_v2(seed, self.data.appearance):
            tag += self.v2_tag
        return Path(self.data.cache_dir) / tag / f"{seed}.npz"

    def train_clip(self, seed: int) -> dict[str, np.ndarray]:
        """Frames onset..onset+max_after at the network size, GT and backward pseudo-labels."""
        path = self._cache_path("train", seed)
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        d = self.data
        clip = _sim_clip(d.train_kind, seed, d.train_frames, d.vary_blood,
                         self.appearance if is_v2(seed, d.appearance) else None)
        on = int(clip.onset_frame)
        last = min(clip.num_frames - 1, on + d.max_after)
        size = tuple(self.cfg.input_size)
        frames, gt, pseudo = [], [], []
        # backward flows t -> t-1, computed once and chained for every labelled frame
        dis = dis_flow(d.flow_preset)
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip.frames[on:last + 1]]
        back = {t: dis.calc(gray[t - on], gray[t - on - 1], None) for t in range(on + 1, last + 1)}
        for t in range(on, last + 1):
            frames.append(cv2.resize(clip.frames[t], size, interpolation=cv2.INTER_AREA))
            gt.append(to_model(clip.source_xy[t], MODEL_SIZE, size))
            # carry the label backwards, only as far as the onset (earlier frames show no blood)
            n = min(d.pseudo_n, t - on)
            chain = np.full((d.pseudo_n, 2), np.nan)
            if n > 0:
                chain[:n] = chain_flows([back[t - k] for k in range(n)], tuple(clip.source_xy[t]))
            pseudo.append(to_model(chain, MODEL_SIZE, size))
        out = {"frames": np.stack(frames), "gt": np.array(gt, np.float32), "pseudo": np.array(pseudo, np.float32)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
        return out

    def eval_items(self, split: str = "val", n: int | None = None) -> list[dict[str, np.ndarray]]:
        """Onset frames (512x384) of `detect` clips with the GT source: validation or test split."""
        seed0 = self.data.val_seed if split == "val" else self.data.test_seed
        n = self.data.val_clips if n is None else n
        items = []
        for seed in range(seed0, seed0 + n):
            v2 = self.data.val_appearance
            path = Path(self.data.cache_dir) / f"{split}_detect_onset{self.v2_tag if v2 else ''}" / f"{seed}.npz"
            if path.is_file():
                with np.load(path) as z:
                    cached = {k: z[k] for k in z.files}
                if "visible" in cached:  # older caches lack the flag: regenerate them
                    items.append(cached)
                    continue
            clip = _sim_clip("detect", seed, None, appearance=self.appearance if v2 else None)
            on = int(clip.onset_frame)
            item = {"frame": clip.frames[on], "xy": clip.source_xy[on].astype(np.float32),
                    "scenario": np.array(clip.scenario), "visible": np.array(bool(clip.source_visible[on]))}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **item)
            tmp.replace(path)
            items.append(item)
        return items

    def _augment(self, rng: np.random.Generator, img: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flip, translation, real-footage degradation (share `degrade`) and colour jitter; `pts` (K, 2) follow the geometry (NaN stays NaN)."""
        h, w = img.shape[:2]
        pts = pts.copy()
        if rng.random() < 0.5:
            img = img[:, ::-1]
            pts[:, 0] = w - 1 - pts[:, 0]
        if rng.random() < 0.5:
            img = img[::-1]
            pts[:, 1] = h - 1 - pts[:, 1]
        dx, dy = rng.uniform(-1, 1, 2) * self.data.max_shift * np.array([w, h])
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), borderMode=cv2.BORDER_CONSTANT)
        pts = pts + np.array([dx, dy])
        if self.data.degrade > 0 and rng.random() < self.data.degrade:  # no draw at 0: augmentations stay as without the option
            img = Degrade.random(rng).frame(img)
        f = img.astype(np.float32)
        gain = rng.uniform(0.75, 1.25) * rng.uniform(0.92, 1.08, 3)
        f = (f - f.mean()) * rng.uniform(0.8, 1.2) + f.mean()  # contrast
        f = 255 * ((np.clip(f * gain, 0, 255) / 255) ** rng.uniform(0.8, 1.25))  # gain + gamma
        return f.astype(np.uint8), pts

    def _inputs(self, img: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        red = compute_red_mask(img, self.cfg.red_mask)
        return (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255,
                torch.from_numpy(red)[None])

    def sample_batch(self, rng: np.random.Generator, split: str = "train") -> dict[str, torch.Tensor]:
        d = self.data
        images, reds, targets, weights = [], [], [], []
        for _ in range(d.samples_per_batch):
            if self.bench is not None and rng.random() < d.bench_fraction:
                clip = self.bench[int(rng.integers(len(self.bench)))]
            else:
                seed = d.train_seed + int(rng.integers(d.train_pool))
                clip = self._train.get(seed)
                if clip is None:
                    clip = self._train[seed] = self.train_clip(seed)
            labelled = np.flatnonzero(np.isfinite(clip["gt"][:, 0]))
            j = int(labelled[rng.integers(len(labelled))])
            ok = [k for k in range(d.pseudo_n) if np.isfinite(clip["pseudo"][j, k, 0]) and j - k - 1 >= 0]
            pick = list(rng.choice(ok, size=min(d.pseudo_per_sample, len(ok)), replace=False)) if ok else []
            rows = [(j, clip["gt"][j], d.lambda_real)]
            rows += [(j - k - 1, clip["pseudo"][j, k], d.lambda_pseudo / len(pick)) for k in pick]
            for t, xy, wgt in rows:
                img, pts = clip["frames"][t], np.asarray(xy, np.float64)[None]
                if d.augment:
                    img, pts = self._augment(rng, img, pts)
                x, r = self._inputs(img)
                images.append(x)
                reds.append(r)
                targets.append(torch.tensor(pts[0], dtype=torch.float32))
                weights.append(wgt)
            if not pick:  # no usable pseudo frame (label on the onset frame): real label takes the pseudo weight
                weights[-1] += d.lambda_pseudo
        return {"image": torch.stack(images), "red": torch.stack(reds), "xy": torch.stack(targets),
                "weight": torch.tensor(weights, dtype=torch.float32),
                "real": torch.tensor([w >= d.lambda_real for w in weights])}

    # ------------------------------------------------------------------ loss
    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        d = self.data
        logits = model(batch["image"], batch["red"])
        h, w = logits.shape[-2:]
        target = gaussian_heatmaps(batch["xy"], (w, h), self.cfg.sigma)
        mse = F.mse_loss(torch.sigmoid(logits), target, reduction="none").flatten(1).mean(1)  # (B,)
        n_samples = d.samples_per_batch
        heat = d.heat_weight * (mse * batch["weight"]).sum() / n_samples
        real = batch["real"]
        pred = soft_argmax(logits[real], self.cfg.softargmax_beta)
        coord = F.huber_loss(pred / d.coord_unit, batch["xy"][real] / d.coord_unit, delta=d.huber_delta)
        loss = heat + d.coord_weight * coord
        with torch.no_grad():
            err = (pred - batch["xy"][real]).norm(dim=1).mean()
        return loss, {"heat": float(heat.detach()), "coord": float(coord.detach()), "err_px": float(err)}

    # ------------------------------------------------------------------ validation
    def validate(self, model: nn.Module) -> dict[str, float]:
        if self._val is None:
            self._val = self.eval_items("val")
        device = next(model.parameters()).device
        errs = []
        size = tuple(self.cfg.input_size)
        for item in self._val:
            small = cv2.resize(item["frame"], size, interpolation=cv2.INTER_AREA)
            x, r = self._inputs(small)
            logits = model(x[None].to(device), r[None].to(device))
            xy, _ = refined_peak(logits, self.cfg.refine_radius)
            from bleedorigin.models.source.predictor import to_input
            p = to_input(xy[0].cpu().numpy(), MODEL_SIZE, size)
            errs.append(float(np.linalg.norm(p - item["xy"])))
        e = np.array(errs)
        return {"score": float(-e.mean()), "err_avg": float(e.mean()), "err_median": float(np.median(e)),
                "acc_25": float((e < 25).mean()), "acc_50": float((e < 50).mean()),
                "acc_100": float((e < 100).mean())}
