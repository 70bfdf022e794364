"""How close BleedSim is to the real ESD clips: colour, red area, sharpness, motion, and a
classifier two-sample test that sees structure (sim/c2st.py).

All statistics are computed at a common scale (frames resized to 112 px height, the real clips'
size) and only inside the endoscope's field stop (black corners excluded), so resolution and
framing do not count as differences.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.stats import wasserstein_distance

from bleedorigin.errors import InputError
from bleedorigin.io.video import load_clip_frames
from bleedorigin.sim.c2st import STAT_HEIGHT, c2st_realism

log = logging.getLogger(__name__)

MAX_FRAMES = 60          # frames sampled per clip (evenly), keeps the report to seconds
HIST_BINS = {"hue": (18, 180), "saturation": (16, 256), "value": (16, 256)}
SCALARS = ("red_area", "red_area_std", "saturation", "value", "sharpness", "motion")


def collect_clips(src: str | Path | Iterable[Any]) -> dict[str, np.ndarray]:
    """Clips as {name: frames}: a folder of clip folders (real samples or a bench root), or an
    iterable of SimClip / frame arrays."""
    if isinstance(src, (str, Path)):
        root = Path(src)
        if not root.is_dir():
            raise InputError(f"not a folder: {root}")
        base = root / "clips" if (root / "clips").is_dir() else root
        dirs = sorted(d for d in base.iterdir() if d.is_dir() and
                      ((d / "video.mp4").is_file() or (d / "frames.npz").is_file()))
        if not dirs:
            raise InputError(f"no clips (video.mp4 or frames.npz) under {root}")
        return {d.name: load_clip_frames(d) for d in dirs}
    out = {}
    for i, c in enumerate(src):
        frames = getattr(c, "frames", c)
        out[f"{getattr(c, 'scenario', 'clip')}_{i}"] = np.asarray(frames)
    if not out:
        raise InputError("no clips given")
    return out


def clip_stats(frames: np.ndarray) -> dict[str, Any]:
    """Per-clip statistics; per-frame series kept for Wasserstein distances."""
    idx = np.unique(np.linspace(0, len(frames) - 1, min(MAX_FRAMES, len(frames))).round().astype(int))
    h, w = frames.shape[1:3]
    size = (max(8, round(w * STAT_HEIGHT / h)), STAT_HEIGHT)
    small = [cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA) for i in idx]
    hists = {k: np.zeros(b, np.float64) for k, (b, _) in HIST_BINS.items()}
    red, sat, val, sharp, motion = [], [], [], [], []
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    prev = None
    for img in small:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        fov = hsv[..., 2] > 20  # field stop and deep shadow excluded
        if fov.sum() < 50:
            continue
        px = hsv[fov]
        for (k, (bins, top)), ch in zip(HIST_BINS.items(), range(3)):
            hists[k] += np.histogram(px[:, ch], bins=bins, range=(0, top))[0]
        hue, s, v = px[:, 0].astype(int), px[:, 1], px[:, 2]
        red.append(float((((hue < 8) | (hue > 170)) & (s > 140) & (v > 50)).mean()))
        sat.append(float(s.mean()))
        val.append(float(v.mean()))
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        lap = cv2.Laplacian(gray, cv2.CV_32F)
        sharp.append(float(lap[cv2.erode(fov.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0].var()))
        if prev is not None:
            flow = dis.calc(prev, gray, None)
            mag = np.linalg.norm(flow, axis=-1)[fov]
            # frames are subsampled: report px per original frame
            motion.append(float(np.median(mag)) / max(1.0, (len(frames) - 1) / max(1, len(idx) - 1)))
        prev = gray
    if not red:
        raise InputError("clip has no frame with visible content")
    for k in hists:
        hists[k] /= max(hists[k].sum(), 1.0)
    series = {"red_area": np.array(red), "saturation": np.array(sat), "value": np.array(val),
              "sharpness": np.array(sharp), "motion": np.array(motion if motion else [0.0])}
    scalars = {k: float(np.mean(v)) for k, v in series.items()}
    scalars["red_area_std"] = float(np.std(red))
    scalars["sharpness"] = float(np.median(sharp))
    scalars["motion"] = float(np.median(series["motion"]))
    return {"hists": hists, "series": series, "scalars": scalars}


def _pool(stats: Sequence[dict], key: str) -> np.ndarray:
    return np.concatenate([s["series"][key] for s in stats])


def realism_report(sim: str | Path | Iterable[Any], real_dir: str | Path,
                   classifier: bool = True) -> dict[str, Any]:
    """Compare synthetic clips with the real ESD clips; plain-JSON-able dict. `classifier`
    adds the leave-one-real-clip-out classifier AUC (`report["classifier"]`)."""
    sim_clips, real_clips = collect_clips(sim), collect_clips(real_dir)
    log.info("realism: %d synthetic clips vs %d real clips", len(sim_clips), len(real_clips))
    s_stats = [clip_stats(f) for f in sim_clips.values()]
    r_stats = {name: clip_stats(f) for name, f in real_clips.items()}
    r_list = list(r_stats.values())
    report: dict[str, Any] = {"num_sim": len(s_stats), "num_real": len(r_list), "histograms": {}, "scalars": {}}
    for k in HIST_BINS:
        hs = np.mean([s["hists"][k] for s in s_stats], 0)
        hr = np.mean([s["hists"][k] for s in r_list], 0)
        report["histograms"][k] = {"intersection": float(np.minimum(hs, hr).sum()),
                                   "sim": hs.round(4).tolist(), "real": hr.round(4).tolist()}
    for k in SCALARS:
        sv = np.array([s["scalars"][k] for s in s_stats])
        rv = {name: s["scalars"][k] for name, s in r_stats.items()}
        p5, p50, p95 = np.percentile(sv, (5, 50, 95))
        inside = [p5 <= v <= p95 for v in rv.values()]
        entry = {"sim_p5": float(p5), "sim_p50": float(p50), "sim_p95": float(p95),
                 "real": rv, "real_inside_frac": float(np.mean(inside))}
        if k != "red_area_std":  # per-frame distributions exist for the others
            entry["wasserstein"] = float(wasserstein_distance(_pool(s_stats, k), _pool(r_list, k)))
            entry["real_spread"] = float(np.std(_pool(r_list, k)))
        report["scalars"][k] = entry
    if classifier:
        try:
            report["classifier"] = c2st_realism(sim_clips, real_clips)
        except ValueError as e:
            raise InputError(str(e)) from None
    return report


def format_realism(report: dict[str, Any]) -> str:
    """A plain-text table of the report."""
    lines = [f"BleedSim realism: {report['num_sim']} synthetic vs {report['num_real']} real clips", "",
             "HSV histogram intersection (1 = identical):"]
    for k, v in report["histograms"].items():
        lines.append(f"  {k:<11} {v['intersection']:.3f}")
    lines += ["", f"{'statistic':<13} {'sim p5':>9} {'sim p50':>9} {'sim p95':>9} {'real in':>8} "
              f"{'W1':>9} {'real sd':>9}  real per clip"]
    for k, v in report["scalars"].items():
        real = " ".join(f"{name.split('_')[0][:5]}={x:.3g}" for name, x in v["real"].items())
        w1 = f"{v['wasserstein']:9.3g}" if "wasserstein" in v else f"{'-':>9}"
        sd = f"{v['real_spread']:9.3g}" if "real_spread" in v else f"{'-':>9}"
        lines.append(f"{k:<13} {v['sim_p5']:9.3g} {v['sim_p50']:9.3g} {v['sim_p95']:9.3g} "
                     f"{v['real_inside_frac']:8.0%} {w1} {sd}  {real}")
    lines += ["", "real in = share of real clips inside the synthetic 5-95 percentile range; "
              "W1 = Wasserstein distance of per-frame values (compare with real sd)."]
    c = report.get("classifier")
    if c:
        folds = " ".join(f"{name.split('_')[0][:8]}={auc:.2f}" for name, auc in c["folds"].items())
        lines += ["", f"Classifier two-sample test (small CNN, leave one real clip out, n = {c['n_real']} real, "
                      f"{c['n_sim']} synthetic clips, {len(c['repeat_auc'])} repeats): ROC AUC {c['auc']:.3f} "
                      f"(repeats {min(c['repeat_auc']):.3f}-{max(c['repeat_auc']):.3f}; 0.5 = indistinguishable)",
                  f"  per held-out real clip: {folds}"]
    return "\n".join(lines)
