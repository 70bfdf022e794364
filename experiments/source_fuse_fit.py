"""Fit fusion families leave one real clip out, and calibrate the candidates' probabilities
(docs/source-choices.md, "Cues"; docs/source.md, "Candidates").

Reads the map caches of `experiments/source_cues.py`. A family is the fused score
sum_c w_c * map_c + log support + log rim + centre prior, every weight and the prior's width on a
grid (FAMILIES). The weights are chosen minimising the mean error over the `all` items of five
real clips and scored on the sixth (`f0`, `f60`, `all`); those fitted on all six clips are
scored on BleedSim validation.
Then the candidates' temperature: the one whose top-3 probabilities best match how often the
source lies within `conf_radius` of each candidate (Brier score), chosen on five clips plus
BleedSim validation, scored on the sixth.

    python experiments/source_fuse_fit.py --real cues_real.npz --sim cues_sim.npz
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

from bleedorigin.models.source.evidence import centre_prior
from bleedorigin.models.source.fusion import FusionConfig, candidates

SCALE = 512 / 192
TEMPS = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
PRIORS = (0.8, 1.5, 2.0, 0.0)  # centre prior's width in equivalent radii (0: none)
# Each family: the grid of every weight; `shipped` is the form of `source_evidence` (its settings:
# w_net 0.1, w_red 1, w_dark 1, prior 1.5), `cues` the same form with the new cues in place of
# the dark-blood mask (whose constants were read off the shared clips).
# `support` weighs log support + log rim prior; `prior` overrides PRIORS.
FAMILIES = {
    "red": {"net": (0.1, 0.25, 0.5, 1.0), "red": (0.0, 1.0, 3.0), "dark": (0.0, 0.5, 1.0, 2.0), "support": (1.0,)},
    "cues": {"net": (0.1, 0.25, 0.5, 1.0), "red": (0.0, 1.0, 3.0), "stump": (0.0, 1.0, 2.0, 4.0),
             "refill": (0.0, 0.5, 1.0, 2.0), "support": (1.0,)},
    "stump": {"stump": (1.0,), "support": (0.0,), "prior": (0.0,)},  # the default: nothing fitted
    # the stump cue where a source can be, under the shipped prior's width (run with --prior-shift 0.5
    # for the working channel's side): nothing fitted
    "stump_prior": {"stump": (1.0,), "support": (1.0,), "prior": (0.8,)},
}


def load(path: str, prior_shift: float = 0.0) -> list[dict]:
    """The items of a map cache; with `prior_shift` the centre prior moved down as the
    localizer's `prior_shift` moves it (the cache holds the centred one)."""
    z = np.load(path)
    ids = sorted({k.split("/")[0] for k in z.files}, key=int)
    out = []
    for i in ids:
        it = {k.split("/", 1)[1]: z[k] for k in z.files if k.split("/", 1)[0] == i}
        meta = it.pop("meta")
        it.update(set=str(meta[0]), proto=str(meta[1]), clip=str(meta[2]), t=int(meta[3]))
        if prior_shift:
            it["centre_log"] = centre_prior(it["fov"] > 0, 1.5, prior_shift)[0]
        out.append(it)
    return out


def components(it: dict, names: list[str]) -> np.ndarray:
    """(len(names), pixels) of one item: each weighted map (log-heat for `net`, a cue map divided
    by its peak, log support + log rim for `support`)."""
    rows = []
    for n in names:
        if n == "support":
            rows.append((np.log(it["support"].astype(np.float32) + 1e-3)
                         + np.log(it["rim"].astype(np.float32) + 1e-3)).ravel())
            continue
        m = it.get(n)
        m = np.zeros(it["fov"].shape, np.float32) if m is None else m.astype(np.float32)
        if n == "net":
            m = np.log(m + 1e-3)
        elif n not in ("red", "dark") and float(m.max()) > 0:
            m = m / float(m.max())
        rows.append(m.ravel())
    return np.stack(rows)


def weights(family: dict) -> dict:
    return {k: v for k, v in family.items() if k != "prior"}


def combos(family: dict) -> list[tuple]:
    return [c for c in itertools.product(*weights(family).values(), family.get("prior", PRIORS))]


def score_of(it: dict, comp: np.ndarray, combo: tuple) -> np.ndarray:
    w, prior = np.array(combo[:-1], np.float32), combo[-1]
    s = w @ comp
    # the cached centre prior is at width 1.5; a Gaussian's log scales with 1 / width^2
    s = s + it["centre_log"].astype(np.float32).ravel() * ((1.5 / prior) ** 2 if prior > 0 else 1e-4)
    return s.reshape(it["fov"].shape)


def errors(items: list[dict], family: dict) -> np.ndarray:
    """(combos, items) errors in px at 512x384 of the arg-max inside the view."""
    names, cs = list(weights(family)), combos(family)
    out = np.zeros((len(cs), len(items)))
    for j, it in enumerate(items):
        comp = components(it, names)
        W = np.array([c[:-1] for c in cs], np.float32)
        S = W @ comp
        pri = np.array([(1.5 / c[-1]) ** 2 if c[-1] > 0 else 0.0 for c in cs], np.float32)
        # a tiny centre prior breaks ties: a flat score falls back to the view's middle, as the localizer does
        S = S + (pri[:, None] + 1e-4) * it["centre_log"].astype(np.float32).ravel()[None]
        S[:, it["fov"].ravel() <= 0] = -np.inf
        y, x = np.divmod(np.argmax(S, 1), it["fov"].shape[1])
        out[:, j] = SCALE * np.hypot(x - it["xy"][0], y - it["xy"][1])
    return out


def brier(items: list[dict], family: dict, combo: tuple, temp: float, k: int = 3) -> tuple[float, float, float]:
    """(Brier score, mean probability, hit rate) of the top-k candidates."""
    r = FusionConfig().conf_radius * 192
    probs, hits = [], []
    for it in items:
        s = score_of(it, components(it, list(weights(family))), combo)
        s = np.where(it["fov"] > 0, s, s.min())
        for x, y, p in candidates(s, k, r, temp):
            probs.append(p)
            hits.append(float(np.hypot(x - it["xy"][0], y - it["xy"][1]) <= r))
    p, h = np.array(probs), np.array(hits)
    return float(((p - h) ** 2).mean()), float(p.mean()), float(h.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--sim", action="append", default=[])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    ap.add_argument("--calibrate", default="stump", help="family whose candidates are calibrated")
    ap.add_argument("--prior-shift", type=float, default=0.0, help="the centre prior this share of the view's radius down")
    a = ap.parse_args()
    real = load(a.real, a.prior_shift)
    sim = [it for s in a.sim for it in load(s, a.prior_shift)]
    clips = sorted({it["clip"] for it in real})
    fit_on = [i for i, it in enumerate(real) if it["proto"] == "all"]
    chosen: dict[str, list[tuple]] = {}
    for name in a.families:
        fam = FAMILIES[name]
        cs = combos(fam)
        E = errors(real, fam)
        loco = {p: [] for p in ("f0", "f60", "all", "early")}
        chosen[name] = []
        for c in clips:
            train = [i for i in fit_on if real[i]["clip"] != c]
            best = int(np.argmin(E[:, train].mean(1)))
            chosen[name].append(cs[best])
            for i, it in enumerate(real):
                if it["clip"] == c:
                    loco[it["proto"]].append(E[best, i])
        full = cs[int(np.argmin(E[:, fit_on].mean(1)))]
        print(f"## {name}: weights {list(weights(fam))} + prior; fitted on all six clips {full}")
        print("   per held-out clip:", dict(zip(clips, chosen[name])))
        for p, e in loco.items():
            if not e:
                continue
            e = np.array(e)
            print(f"   real {p} LOCO: mean {e.mean():.1f} median {np.median(e):.1f} "
                  f"Acc<100 {100 * (e < 100).mean():.0f} % (n={len(e)})")
        if sim:
            Es = errors(sim, {k: v for k, v in fam.items()})
            j = cs.index(full)
            for s in sorted({(it["set"], it["proto"]) for it in sim}):
                idx = [i for i, it in enumerate(sim) if (it["set"], it["proto"]) == s]
                e = Es[j, idx]
                print(f"   {s[0]} {s[1]}: mean {e.mean():.1f} Acc<100 {100 * (e < 100).mean():.0f} % (n={len(e)})")
        chosen[name].append(full)
    fam = FAMILIES[a.calibrate]
    rows = []
    for c, combo in zip(clips, chosen[a.calibrate]):
        train = [it for it in real if it["clip"] != c and it["proto"] == "all"] + sim
        t = min(TEMPS, key=lambda t: brier(train, fam, combo, t)[0])
        test = [it for it in real if it["clip"] == c and it["proto"] == "all"]
        rows.append((c, t, *brier(test, fam, combo, t)))
        print("   candidates LOCO: %s T=%.2f Brier %.3f mean p %.3f hit rate %.3f" % rows[-1])
    full = chosen[a.calibrate][-1]
    t_all = min(TEMPS, key=lambda t: brier([it for it in real if it["proto"] == "all"] + sim, fam, full, t)[0])
    for name, its in (("real all", [it for it in real if it["proto"] == "all"]), ("sim", sim)):
        if its:
            print(f"   candidates T={t_all} on {name}: Brier / mean p / hit rate = "
                  + " / ".join(f"{v:.3f}" for v in brier(its, fam, full, t_all)))


if __name__ == "__main__":
    main()
