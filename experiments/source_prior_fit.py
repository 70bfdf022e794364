"""Fit the spatial prior, the point estimate and the flow weight of `source_evidence` variants
leave-one-clip-out on the real source labels, and score each on BleedSim validation.

Maps are computed once per item (the fit only re-weights them). Data: BleedSim validation detect
clips (`--sim`, GT onset frame with the 10 frames before it) and every real source label of
`--real` with the `--history` frames before it (frame 0 alone).

Families (each a grid; docs/source-choices.md states the selection rule):
- `evidence`: the fusion without centre prior (no parameter);
- `prior`: + centre prior of width `prior_sigma`, posterior arg-max;
- `mean`: + centre prior, posterior mean at `temperature`;
- `shrink`: arg-max moved toward the view's centre by min(1, confidence / `shrink_full`);
- `dark`: + dark-blood map at weight `w_dark`, with or without the centre prior;
- `flow`: + flow-divergence map at weight `w_flow` (frames with history only); `flow_alone`: the
  arg-max of the flow map.
A family's settings are eligible when BleedSim validation keeps Acc<100 >= 90 % and
Err_avg <= 30 px. For each real clip the eligible setting with the lowest mean error over the
other clips' labels is scored on it (leave-one-clip-out); the setting fitted on all clips is the
one to ship.

    python experiments/source_prior_fit.py --sim val_detect --real ../shared/data/esd_clips

`--weights FOLDER` fuses another source network (a trained checkpoint or weights folder) in place of
`source_small`; `--w-net` replaces the grid of its weight (e.g. `--w-net 0 0.1 0.5 1 2`).
"""
from __future__ import annotations

import argparse
import importlib
import itertools
from dataclasses import replace

import numpy as np

from bleedorigin.errors import BleedOriginError
from bleedorigin.models import registry
from bleedorigin.models.source.evidence import centre_prior, rim_prior
from bleedorigin.models.source.fusion import EvidenceMaps, FusionConfig, fuse, point_estimate, posterior
from bleedorigin.models.source.predictor import to_input

SIGMAS = (0.3, 0.45, 0.6, 0.8, 1.0, 1.5, 2.0)
GRIDS: dict[str, dict[str, tuple]] = {
    "evidence": {},
    "prior": {"prior_sigma": SIGMAS},
    "mean": {"prior_sigma": (0.0,) + SIGMAS, "temperature": (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)},
    "shrink": {"shrink_full": (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)},
    "flow": {"w_flow": (0.5, 1.0, 2.0, 4.0)},
    "dark": {"w_dark": (0.5, 1.0, 2.0, 4.0), "prior_sigma": (0.0,) + SIGMAS},
}
FIXED = {"mean": {"estimate": "mean"}, "shrink": {"estimate": "shrink"}}
# Every family is fitted jointly with the fusion weights (the grid of source_fusion_select.py
# without growth), so that nothing of its real figure is chosen on the clip it is scored on.
FUSION = {"w_net": (0.1, 0.25, 0.5, 1.0), "w_red": (0.0, 1.0, 3.0), "rim_fraction": (0.15, 0.25, 0.5)}


def settings(base: FusionConfig, family: str) -> list[FusionConfig]:
    grid = {**GRIDS[family], **FUSION}
    out = []
    for vals in itertools.product(*grid.values()):
        kw = dict(zip(grid, vals))
        rim = kw.pop("rim_fraction")
        out.append(replace(base, **FIXED.get(family, {}), **kw, evidence=replace(base.evidence, rim_fraction=rim)))
    return out


def predict(it: dict, cfg: FusionConfig, radius: int, cache: dict) -> tuple[float, float]:
    m: EvidenceMaps = it["maps"]
    key, rim = (id(it), cfg.prior_sigma), (id(it), "rim", cfg.evidence.rim_fraction)
    if key not in cache:
        cache[key] = centre_prior(it["fov"], cfg.prior_sigma)
    if rim not in cache:
        cache[rim] = rim_prior(it["fov"], cfg.evidence.rim_fraction)
    centre, cxy = cache[key]
    score = fuse(m.heat, m.red, m.support, cache[rim], m.growth, cfg, m.flow, centre, m.dark)
    maps = replace(m, centre=centre, centre_xy=cxy, posterior=posterior(score, cfg.temperature))
    return point_estimate(maps, cfg, radius)[0]


def flow_alone(it: dict) -> tuple[float, float] | None:
    f = it["maps"].flow
    if f is None or float(f.max()) <= 0:
        return None
    y, x = np.unravel_index(int(np.argmax(f * it["fov"])), f.shape)
    return float(x), float(y)


def label_spread(its: list[dict], work: tuple[int, int]) -> float:
    """The spread of the labels around the view's centre: sqrt(mean d^2 / 2) over the view's
    equivalent radius (the sigma of an isotropic Gaussian that fits them)."""
    ratios = []
    for it in its:
        _, cxy = centre_prior(it["fov"], 0.0)
        c = to_input(np.asarray(cxy, np.float64), it["size"], work)
        scale = it["size"][0] / work[0]
        r_eq = np.sqrt(it["fov"].sum() / np.pi) * scale
        ratios.append(float(np.sum((np.asarray(it["xy"]) - c) ** 2)) / r_eq ** 2)
    return float(np.sqrt(np.mean(ratios) / 2))


def describe(cfg: FusionConfig, family: str) -> str:
    own = [f"{k}={getattr(cfg, k)}" for k in GRIDS[family]]
    return " ".join(own + [f"w_net={cfg.w_net} w_red={cfg.w_red} rim={cfg.evidence.rim_fraction}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", required=True, help="BleedSim validation detect folder (gt.npz per clip)")
    ap.add_argument("--real", required=True, help="real clips whose one label is the bleeding source")
    ap.add_argument("--families", nargs="+", choices=list(GRIDS), default=list(GRIDS), help="families to fit")
    ap.add_argument("--history", type=int, default=30, help="frames before each real labelled frame")
    ap.add_argument("--after", type=int, default=8, help="BleedSim: also onset + this, with history from onset - 10 "
                    "(the flow cue alone is reported there: at the onset nothing flows yet)")
    ap.add_argument("--weights", default=None, help="source network folder to fuse (default source_small)")
    ap.add_argument("--w-net", type=float, nargs="+", default=list(FUSION["w_net"]),
                    help="grid of the network's weight w_net")
    args = ap.parse_args()
    FUSION["w_net"] = tuple(args.w_net)
    select = importlib.import_module("source_fusion_select")  # a sibling script: experiments/ is on sys.path when run
    try:
        locator = registry.create("source_evidence_red", device="cpu", weights=args.weights)
        locator.cfg = replace(locator.cfg, w_flow=1.0, w_dark=1.0)  # compute every map (the fit re-weights them)
        items = select.sim_items(args.sim, args.after, locator)
        items += select.real_items(args.real, args.history, locator)
    except BleedOriginError as e:
        ap.error(str(e))
    work, radius = tuple(locator.base.cfg.input_size), locator.base.cfg.refine_radius
    base = replace(locator.cfg, w_flow=0.0, w_dark=0.0, prior_sigma=0.0)
    sim = [it for it in items if it["set"] == "onset"]
    real = [it for it in items if it["set"] == "real"]
    clip_of = np.array([it["clip"] for it in real])
    first = np.array([it["first"] for it in real])
    cache: dict = {}

    def errors(cfg: FusionConfig, its: list[dict]) -> np.ndarray:
        return np.array([select.error(it, predict(it, cfg, radius, cache), work) for it in its])

    after = [it for it in items if it["set"] == "after"]
    for name, its in (("BleedSim val onset", sim), ("real", real)):
        print(f"{name} (n={len(its)}) evidence alone, Err_avg px (n):",
              {k: f"{v[0]:.1f} ({v[1]})" for k, v in select.single_map_errors(its, work).items()})
    print(f"label spread around the view's centre (sigma / equivalent radius): real {label_spread(real, work):.2f} "
          f"(n={len(real)}), BleedSim val onset {label_spread(sim, work):.2f} (n={len(sim)})")
    for name, its in (("real frames with history", real), (f"BleedSim val onset+{args.after}", after)):
        fa = [(it, flow_alone(it)) for it in its]
        e = np.array([select.error(it, xy, work) for it, xy in fa if xy is not None])
        if len(e):
            print(f"flow_alone, {name}: {e.mean():.1f} mean / {np.median(e):.1f} median (n={len(e)})")
    for family in args.families:
        rows = []
        for cfg in settings(base, family):
            es, er = errors(cfg, sim), errors(cfg, real)
            ok = (es < 100).mean() >= 0.9 and es.mean() <= 30
            rows.append((cfg, es, er, ok))
        eligible = [r for r in rows if r[3]]
        if not eligible:
            print(f"{family}: no setting keeps the BleedSim targets")
            continue
        loco = np.zeros(len(real))
        picks = []
        for c in sorted(set(clip_of)):
            pick = min(eligible, key=lambda r: r[2][clip_of != c].mean())
            loco[clip_of == c] = pick[2][clip_of == c]
            picks.append(describe(pick[0], family))
        cfg, es, er, _ = min(eligible, key=lambda r: r[2].mean())
        print(f"{family}: fitted on all {describe(cfg, family)}; BleedSim val {es.mean():.2f} px "
              f"(Acc<100 {100 * (es < 100).mean():.0f} %, n={len(es)}); real in-sample {er.mean():.1f} "
              f"(frame 0 {er[first].mean():.1f})")
        print(f"   LOCO real all {loco.mean():.1f} mean / {np.median(loco):.1f} median (n={len(loco)}); "
              f"frame 0 {loco[first].mean():.1f} / {np.median(loco[first]):.1f} (n={first.sum()}); "
              f"Acc<100 {100 * (loco < 100).mean():.0f} %; per-fold picks: {'; '.join(picks)}")


if __name__ == "__main__":
    main()
