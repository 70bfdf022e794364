"""Choose the confidence of `source_evidence` among candidates by the rule of docs/source-choices.md
("How the confidence is chosen"), and report each candidate's calibration.

Maps are computed once per item with the shipped settings. Data: BleedSim validation detect clips
(`--sim`, GT onset frame with the 10 frames before it), the real source labels of `--real` (frames
alone: the default ignores history), and optionally BleedSim test (`--test`) and the BleedSim
frames `--after` frames past the onset: reported only, never used to choose. Per set and
candidate: Spearman rho between confidence and error (negative = less confident means further
off) and the mean error of the less / more confident half.

    python experiments/source_confidence_select.py --sim val_detect \\
        --real ../shared/data/esd_clips --test simtest/detect --after 8
"""
from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable

import numpy as np

from bleedorigin.errors import BleedOriginError
from bleedorigin.eval.metrics import calibration
from bleedorigin.models.loading import load_stage
from bleedorigin.models.source.fusion import (EPS, EvidenceMaps, FusionConfig, confidence, counted, fuse, peak,
                                              point_estimate, posterior)
from bleedorigin.render import SOURCE_UNSURE


def lift(m: np.ndarray, x: int, y: int) -> float:
    """How far up from its median toward its peak a map is at (x, y), in [0, 1]; 0 for a flat map."""
    med, top = float(np.median(m)), float(m.max())
    return float(np.clip((m[y, x] - med) / (top - med), 0, 1)) if top - med > EPS else 0.0


def agreement(m: EvidenceMaps, cfg: FusionConfig, xy: tuple[float, float]) -> float:
    """The weighted mean of the `lift` of the maps that point at a place (heat, Red-Mask, dark
    blood, weighed history maps) at xy."""
    maps = [(cfg.w_net, m.heat), (cfg.w_red, m.red)]
    if m.dark is not None and float(m.dark.max()) > 0:
        maps.append((cfg.w_dark, m.dark))
    maps += counted(cfg, m.growth, m.flow)
    h, w = m.heat.shape
    x, y = int(round(np.clip(xy[0], 0, w - 1))), int(round(np.clip(xy[1], 0, h - 1)))
    votes = [(wt, lift(mp, x, y)) for wt, mp in maps if wt > 0]
    return sum(wt * a for wt, a in votes) / sum(wt for wt, _ in votes) if votes else 1.0


def cues(m: EvidenceMaps, cfg: FusionConfig, radius: int) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """The arg-max of the prior-free fusion and of the blood map alone (None without blood)."""
    free = fuse(m.heat, m.red, m.support, m.prior, m.growth, cfg, m.flow, None, m.dark)
    free_xy = peak(posterior(free, cfg.temperature), radius)
    blood = (np.maximum(m.red, m.dark) if m.dark is not None else m.red) * m.support * m.prior
    if float(blood.max()) <= 0:
        return free_xy, None
    y, x = np.unravel_index(int(np.argmax(blood)), blood.shape)
    return free_xy, (float(x), float(y))


def features(m: EvidenceMaps, cfg: FusionConfig, radius: int) -> tuple[tuple[float, float], dict[str, float]]:
    """The point (working pixels) and every candidate confidence of one decision."""
    xy, _ = point_estimate(m, cfg, radius)
    r = cfg.conf_radius * m.posterior.shape[1]
    fov = m.prior > 0
    free_xy, blood_xy = cues(m, cfg, radius)
    d_free = float(np.hypot(*np.subtract(free_xy, xy)))
    d_blood = float(np.hypot(*np.subtract(blood_xy, xy))) if blood_xy is not None else np.inf
    spread = max(d_free, d_blood, float(np.hypot(*np.subtract(free_xy, blood_xy)))
                 if blood_xy is not None else np.inf)
    h, w = m.posterior.shape
    ys, xs = np.mgrid[0:h, 0:w]
    dist = np.hypot(xs - xy[0], ys - xy[1])
    blood = np.maximum(m.red, m.dark) if m.dark is not None else m.red
    free = posterior(fuse(m.heat, m.red, m.support, m.prior, m.growth, cfg, m.flow, None, m.dark), cfg.temperature)
    score = np.log(free[fov].astype(np.float64) + 1e-300) * cfg.temperature
    p = m.posterior[fov].astype(np.float64)
    p = p / p.sum()
    ent = -float((p * np.log(p + 1e-300)).sum()) / np.log(max(int(fov.sum()), 2))
    agree = agreement(m, cfg, xy)
    f = {
        "mass_agreement": float(m.posterior[dist <= r].sum()) * agree,
        "mass": float(m.posterior[dist <= r].sum()),
        "agreement": agree,
        "prior_shift": float(np.exp(-d_free / r)),
        "blood_cue": float(np.exp(-d_blood / r)),
        "cue_spread": float(np.exp(-spread / r)),
        "cover": float(blood[dist <= r].mean()),
        "peak_median": float(1 - np.exp(-(score.max() - np.median(score)))),
        "margin": confidence(m.posterior, xy, r, cfg.temperature),  # the shipped definition
        "free_margin": confidence(free, free_xy, r, cfg.temperature),
        "entropy": float(1 - ent),
    }
    f["cover_x_spread"] = f["cover"] * f["cue_spread"]
    f["cover_x_margin"] = f["cover"] * f["margin"]
    f["margin_x_spread"] = f["margin"] * f["cue_spread"]
    return xy, f


def measure(items: list[dict], locator: Any, error: Callable) -> tuple[np.ndarray, dict[str, np.ndarray], list]:
    work, radius = tuple(locator.base.cfg.input_size), locator.base.cfg.refine_radius
    errs, feats = [], []
    for it in items:
        xy, f = features(it["maps"], locator.cfg, radius)
        errs.append(error(it, xy, work))
        feats.append(f)
    return np.array(errs), {k: np.array([f[k] for f in feats]) for k in feats[0]}, [it["clip"] for it in items]


def rho(conf: np.ndarray, err: np.ndarray) -> float:
    c = calibration(conf, err)
    return float("nan") if c["spearman"] is None else c["spearman"]


def choose(real: tuple, sim: tuple, keep: np.ndarray | None = None) -> str | None:
    """The rule of docs/source-choices.md on the real items in `keep` (all by default)."""
    (e_r, f_r, _), (e_s, f_s, _) = real, sim
    keep = np.ones(len(e_r), bool) if keep is None else keep
    ok = {}
    for k in f_r:
        cr = calibration(f_r[k][keep], e_r[keep])
        rs = rho(f_s[k], e_s)
        if cr["spearman"] is not None and cr["spearman"] < 0 and rs < 0 and cr["err_low_conf"] > cr["err_high_conf"]:
            ok[k] = (cr["spearman"], rs)
    if not ok:
        return None
    best = min(v[0] for v in ok.values())
    return min((k for k, v in ok.items() if v[0] <= best + 0.05), key=lambda k: ok[k][1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", required=True, help="BleedSim validation detect folder (gt.npz per clip)")
    ap.add_argument("--real", required=True, help="real clips whose one label is the bleeding source")
    ap.add_argument("--test", default=None, help="BleedSim test folder: reported only")
    ap.add_argument("--after", type=int, default=0, help="also report BleedSim onset + this frame (blood has "
                    "spread into a pool; reported only; 0: off)")
    ap.add_argument("--threshold", type=float, default=SOURCE_UNSURE,
                    help="confidence below which run marks the source")
    args = ap.parse_args()
    select = importlib.import_module("source_fusion_select")  # a sibling script: experiments/ is on sys.path when run
    try:
        locator = load_stage("source", "source_evidence_red", "cpu")
        val = select.sim_items(args.sim, args.after, locator)
        sets = {"BleedSim val": [it for it in val if it["set"] == "onset"],
                "real": select.real_items(args.real, 0, locator)}
        if args.after:
            sets[f"BleedSim val onset+{args.after}"] = [it for it in val if it["set"] == "after"]
        if args.test:
            test = select.sim_items(args.test, args.after, locator)
            sets["BleedSim test"] = [it for it in test if it["set"] == "onset"]
            if args.after:
                sets[f"BleedSim test onset+{args.after}"] = [it for it in test if it["set"] == "after"]
    except BleedOriginError as e:
        ap.error(str(e))
    if not sets["real"] or not sets["BleedSim val"]:
        ap.error("need BleedSim detect clips with gt.npz and real source labels")
    res = {name: measure(its, locator, select.error) for name, its in sets.items()}
    names = list(res["real"][1])
    head = "".join(f" | {s} (n={len(res[s][0])}) rho; err low / high conf" for s in res)
    print(f"| candidate{head} |")
    print("|---|" + "---|" * len(res))
    for k in names:
        cells = []
        for s, (e, f, _) in res.items():
            c = calibration(f[k], e)
            cells.append("-" if c["spearman"] is None else
                         f"{c['spearman']:+.2f}; {c['err_low_conf']:.1f} / {c['err_high_conf']:.1f}")
        print(f"| `{k}` | " + " | ".join(cells) + " |")
    winner = choose(res["real"], res["BleedSim val"])
    print(f"winner: {winner}")
    if winner is None:
        return
    clips = np.array([str(c) for c in res["real"][2]])
    folds = {str(c): choose(res["real"], res["BleedSim val"], clips != c) for c in sorted(set(clips))}
    print(f"leave-one-clip-out selection: {sum(v == winner for v in folds.values())} of {len(folds)} folds pick "
          f"{winner}; {folds}")
    e, f, _ = res["real"]
    print("real rho of the winner with one clip left out:",
          {str(c): round(rho(f[winner][clips != c], e[clips != c]), 2) for c in sorted(set(clips))})
    both = ("BleedSim val", "real")
    n_both = sum(len(res[s][0]) for s in both)
    for k in dict.fromkeys([winner, "mass_agreement"]):  # the scale across domains (descriptive)
        pooled = rho(np.concatenate([res[s][1][k] for s in both]), np.concatenate([res[s][0] for s in both]))
        print(f"{k}: mean confidence", {s: round(float(f[k].mean()), 3) for s, (_, f, _) in res.items()},
              f"; rho pooled over BleedSim val and real {pooled:+.2f} (n={n_both})")
    for s, (e, f, _) in res.items():
        low = f[winner] < args.threshold
        print(f"{s}: confidence < {args.threshold}: {low.sum()} of {len(e)} answers, mean error "
              f"{e[low].mean() if low.any() else float('nan'):.1f} px {np.round(e[low], 1) if low.sum() <= 5 else ''}; "
              f">= {args.threshold}: "
              f"{e[~low].mean() if (~low).any() else float('nan'):.1f} px; mean error {e.mean():.2f}")


if __name__ == "__main__":
    main()
