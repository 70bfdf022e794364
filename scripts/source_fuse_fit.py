"""Fit the weights of the new cues added to the shipped fusion, leave one real clip out, and
calibrate the candidates' probabilities (docs/source.md, "Cues" and "Candidates").

Reads the map caches of `scripts/source_cues.py`. The shipped fusion (`source_evidence`'s
settings) is the base; each cue c adds w_c * map_c / max(map_c). The weights are chosen on a grid
minimising the mean error over the `all` items of five real clips and scored on the sixth
(`f0`, `f60`, `all`); the weights fitted on all six clips are scored on BleedSim validation.
Then the candidates' temperature: the one whose top-3 probabilities best match how often the
source lies within `conf_radius` of each candidate (Brier score), chosen on five clips plus
BleedSim validation, scored on the sixth.

    python scripts/source_fuse_fit.py --real cues_real.npz --sim cues_sim.npz --cues stump refill
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

from bleedorigin.models.source.fusion import FusionConfig, candidates, fuse

SCALE = 512 / 192
GRID = (0.0, 0.5, 1.0, 2.0, 4.0)
TEMPS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


def load(path: str) -> list[dict]:
    z = np.load(path)
    ids = sorted({k.split("/")[0] for k in z.files}, key=int)
    out = []
    for i in ids:
        it = {k.split("/", 1)[1]: z[k] for k in z.files if k.split("/", 1)[0] == i}
        meta = it.pop("meta")
        it.update(set=str(meta[0]), proto=str(meta[1]), clip=str(meta[2]), t=int(meta[3]))
        out.append(it)
    return out


def base_score(it: dict, cfg: FusionConfig = FusionConfig()) -> np.ndarray:
    f = {k: it[k].astype(np.float32) for k in ("net", "red", "support", "rim", "centre_log")}
    dark = it["dark"].astype(np.float32) if "dark" in it else None
    return fuse(f["net"], f["red"], f["support"], f["rim"], None, cfg, None, f["centre_log"], dark)


def score_map(it: dict, cues: list[str], w: tuple[float, ...]) -> np.ndarray:
    s = it["_base"].copy()
    for c, wc in zip(cues, w):
        m = it.get(c)
        if wc > 0 and m is not None and float(m.max()) > 0:
            s += wc * m.astype(np.float32) / float(m.max())
    return s


def error(it: dict, s: np.ndarray) -> float:
    y, x = np.unravel_index(int(np.argmax(np.where(it["fov"] > 0, s, -np.inf))), s.shape)
    return SCALE * float(np.hypot(x - it["xy"][0], y - it["xy"][1]))


def fit(items: list[dict], cues: list[str]) -> tuple[float, ...]:
    best, best_w = np.inf, (0.0,) * len(cues)
    for w in itertools.product(GRID, repeat=len(cues)):
        e = np.mean([error(it, score_map(it, cues, w)) for it in items])
        if e < best - 1e-9:
            best, best_w = e, w
    return best_w


def brier(items: list[dict], cues: list[str], w: tuple[float, ...], temp: float, k: int = 3) -> tuple[float, float, float]:
    """(Brier score, mean probability, hit rate) of the top-k candidates."""
    r = FusionConfig().conf_radius * 192
    probs, hits = [], []
    for it in items:
        for x, y, p in candidates(score_map(it, cues, w), k, r, temp):
            probs.append(p)
            hits.append(float(np.hypot(x - it["xy"][0], y - it["xy"][1]) <= r))
    p, h = np.array(probs), np.array(hits)
    return float(((p - h) ** 2).mean()), float(p.mean()), float(h.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--cues", nargs="+", required=True)
    a = ap.parse_args()
    real, sim = load(a.real), load(a.sim)
    for it in real + sim:
        it["_base"] = base_score(it)
    clips = sorted({it["clip"] for it in real})
    per = {p: [] for p in ("f0", "f60", "all")}
    base = {p: [] for p in ("f0", "f60", "all")}
    chosen = []
    for c in clips:
        train = [it for it in real if it["clip"] != c and it["proto"] == "all"]
        w = fit(train, a.cues)
        chosen.append(w)
        for it in real:
            if it["clip"] == c:
                per[it["proto"]].append(error(it, score_map(it, a.cues, w)))
                base[it["proto"]].append(error(it, it["_base"]))
    print("LOCO weights per held-out clip:", dict(zip(clips, chosen)))
    for p in per:
        print(f"real {p}: fused LOCO {np.mean(per[p]):.1f}  shipped {np.mean(base[p]):.1f}  (n={len(per[p])})")
    w_all = fit([it for it in real if it["proto"] == "all"], a.cues)
    print("weights fitted on all six clips:", dict(zip(a.cues, w_all)))
    for s in sorted({(it["set"], it["proto"]) for it in sim}):
        its = [it for it in sim if (it["set"], it["proto"]) == s]
        e = np.array([error(it, score_map(it, a.cues, w_all)) for it in its])
        b = np.array([error(it, it["_base"]) for it in its])
        print(f"{s[0]} {s[1]}: fused {e.mean():.1f} (Acc<100 {100 * (e < 100).mean():.0f} %)  "
              f"shipped {b.mean():.1f} (Acc<100 {100 * (b < 100).mean():.0f} %)  n={len(e)}")
    # candidates' temperature: fitted on five clips + BleedSim validation, scored on the sixth
    sim_all = [it for it in sim]
    held = []
    for c, w in zip(clips, chosen):
        train = [it for it in real if it["clip"] != c and it["proto"] == "all"] + sim_all
        t = min(TEMPS, key=lambda t: brier(train, a.cues, w, t)[0])
        test = [it for it in real if it["clip"] == c and it["proto"] == "all"]
        held.append((c, t, *brier(test, a.cues, w, t)))
    for row in held:
        print("candidates LOCO: %s T=%.2f brier %.3f mean p %.3f hit rate %.3f" % row)
    t_all = min(TEMPS, key=lambda t: brier([it for it in real if it["proto"] == "all"] + sim_all, a.cues, w_all, t)[0])
    for name, its in (("real all", [it for it in real if it["proto"] == "all"]), ("sim", sim_all)):
        print(f"candidates T={t_all} on {name}: brier / mean p / hit rate = "
              + " / ".join(f"{v:.3f}" for v in brier(its, a.cues, w_all, t_all)))


if __name__ == "__main__":
    main()
