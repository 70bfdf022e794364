"""The more probable of two localizers (docs/source-choices.md, "The more probable of two localizers"):
the red fusion (each fold's weights and calibrated temperature) and the vessel-stump cue (its
shipped temperature 0.1) each give their most probable candidate; the one of higher probability
is taken. Scored leave one real clip out on the map caches of `experiments/source_cues.py`, with
the prior on the working channel's side.

    python experiments/source_pick.py --real cues_real.npz --sim cues_sim.npz --sim cues_simapp.npz
"""
from __future__ import annotations

import argparse

import numpy as np

import source_fuse_fit as fit
from bleedorigin.models.source.fusion import FusionConfig, candidates

RADIUS = FusionConfig().conf_radius * 192  # the candidates' radius at the working width
RED, STUMP = fit.FAMILIES["red"], fit.FAMILIES["stump"]
STUMP_COMBO, STUMP_TEMP = (1.0, 0.0, 0.0), 0.1  # `source_evidence` as shipped
PROTOS = ("f0", "f60", "all", "early")


def most_probable(it: dict, family: dict, combo: tuple, temp: float) -> tuple[float, float, float]:
    score = fit.score_of(it, fit.components(it, list(fit.weights(family))), combo)
    return candidates(np.where(it["fov"] > 0, score, score.min()), 3, RADIUS, temp)[0]


def three_ways(it: dict, combo: tuple, temp: float) -> dict[str, float]:
    """Error (px at 512x384) of the red fusion's, the stump's and the more probable candidate."""
    red, stump = most_probable(it, RED, combo, temp), most_probable(it, STUMP, STUMP_COMBO, STUMP_TEMP)
    picked = stump if stump[2] > red[2] else red
    return {k: fit.SCALE * float(np.hypot(p[0] - it["xy"][0], p[1] - it["xy"][1]))
            for k, p in (("red", red), ("stump", stump), ("pick", picked))}


def calibrated(items: list[dict], combo: tuple) -> float:
    return min(fit.TEMPS, key=lambda t: fit.brier(items, RED, combo, t)[0])


def fold_fits(real: list[dict], sim: list[dict]) -> list[tuple[str | None, tuple, float]]:
    """(held-out clip, weights, temperature) of each fold: the red form fitted on the other
    clips' `all` items, its temperature calibrated on those and BleedSim validation; last, with
    clip None, both fitted on all six clips, for scoring BleedSim validation."""
    combos, errors = fit.combos(RED), fit.errors(real, RED)
    fit_on = [i for i, it in enumerate(real) if it["proto"] == "all"]
    out = []
    for clip in sorted({it["clip"] for it in real}) + [None]:
        train = [i for i in fit_on if real[i]["clip"] != clip]
        combo = combos[int(np.argmin(errors[:, train].mean(1)))]
        out.append((clip, combo, calibrated([real[i] for i in train] + sim, combo)))
    return out


def load_sets(a: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    return fit.load(a.real, a.prior_shift), [it for s in a.sim for it in fit.load(s, a.prior_shift)]


def arguments(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--real", required=True)
    ap.add_argument("--sim", action="append", default=[])
    ap.add_argument("--prior-shift", type=float, default=0.5)
    return ap.parse_args()


def main() -> None:
    real, sim = load_sets(arguments(__doc__.splitlines()[0]))
    *folds, (_, combo, temp) = fold_fits(real, sim)
    scores = {k: {p: [] for p in PROTOS} for k in ("red", "stump", "pick")}
    for clip, fold_combo, fold_temp in folds:
        for it in (it for it in real if it["clip"] == clip):
            for k, e in three_ways(it, fold_combo, fold_temp).items():
                scores[k][it["proto"]].append(e)
    print("| candidate | " + " | ".join(f"real {p}" for p in PROTOS) + " |")
    for k, by_proto in scores.items():
        print(f"| {k} | " + " | ".join(f"{np.mean(v):.1f} (n={len(v)})" for v in by_proto.values()) + " |")
    for s in sorted({(it["set"], it["proto"]) for it in sim}):
        rows = [three_ways(it, combo, temp) for it in sim if (it["set"], it["proto"]) == s]
        print(f"{s[0]} {s[1]} (n={len(rows)}): " + ", ".join(
            f"{k} {np.mean([r[k] for r in rows]):.1f} Acc<100 {100 * np.mean([r[k] < 100 for r in rows]):.0f} %"
            for k in ("red", "stump", "pick")))


if __name__ == "__main__":
    main()
