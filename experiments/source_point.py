"""Which point of the red fusion's posterior to report (docs/source-choices.md, "The point of the
posterior"): its arg-max (shipped), its mean, or its geometric median (the point of least
expected distance to the source when the posterior is calibrated). Each fold's weights and
Brier-calibrated temperature, the prior on the working channel's side, scored leave one real clip
out on the map caches of `experiments/source_cues.py`.

    python experiments/source_point.py --real cues_real.npz --sim cues_sim.npz --sim cues_simapp.npz
"""
from __future__ import annotations

import numpy as np

import source_fuse_fit as fit
import source_pick as pick
from bleedorigin.models.source.fusion import posterior

RED = fit.FAMILIES["red"]
PROTOS = ("f0", "f60", "all", "early")
WAYS = ("peak", "mean", "median")


def geometric_median(post: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Weiszfeld's iteration on the pixel grid weighted by `post`, from the posterior mean."""
    ys, xs = np.mgrid[:post.shape[0], :post.shape[1]]
    w, x, y = post.ravel().astype(np.float64), xs.ravel(), ys.ravel()
    px, py = float((w * x).sum()), float((w * y).sum())
    for _ in range(iterations):
        inv = w / np.maximum(np.hypot(x - px, y - py), 0.5)
        nx, ny = float((inv * x).sum() / inv.sum()), float((inv * y).sum() / inv.sum())
        if np.hypot(nx - px, ny - py) < 0.01:
            break
        px, py = nx, ny
    return px, py


def estimates(it: dict, combo: tuple, temp: float) -> dict[str, float]:
    """Error (px at 512x384) of each way of reading the posterior."""
    score = fit.score_of(it, fit.components(it, list(fit.weights(RED))), combo)
    score = np.where(it["fov"] > 0, score, -np.inf)
    post = posterior(score, temp).astype(np.float64)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    ys, xs = np.mgrid[:post.shape[0], :post.shape[1]]
    points = {"peak": (float(x), float(y)), "mean": (float((post * xs).sum()), float((post * ys).sum())),
              "median": geometric_median(post)}
    return {k: fit.SCALE * float(np.hypot(p[0] - it["xy"][0], p[1] - it["xy"][1])) for k, p in points.items()}


def summary(errors: list[float]) -> str:
    e = np.asarray(errors)
    return f"{e.mean():.1f}, Acc<25 {100 * (e < 25).mean():.0f} % (n={len(e)})"


def main() -> None:
    real, sim = pick.load_sets(pick.arguments(__doc__.splitlines()[0]))
    *folds, (_, combo, temp) = pick.fold_fits(real, sim)
    scores = {k: {p: [] for p in PROTOS} for k in WAYS}
    for clip, fold_combo, fold_temp in folds:
        print(f"fold {clip}: weights {fold_combo}, temperature {fold_temp}")
        for it in (it for it in real if it["clip"] == clip):
            for k, e in estimates(it, fold_combo, fold_temp).items():
                scores[k][it["proto"]].append(e)
    print("| point | " + " | ".join(f"real {p}" for p in PROTOS) + " |")
    for k, by_proto in scores.items():
        print(f"| {k} | " + " | ".join(summary(v) for v in by_proto.values()) + " |")
    for s in sorted({(it["set"], it["proto"]) for it in sim}):
        rows = [estimates(it, combo, temp) for it in sim if (it["set"], it["proto"]) == s]
        print(f"{s[0]} {s[1]} (n={len(rows)}): " + ", ".join(
            f"{k} {np.mean([r[k] for r in rows]):.1f} Acc<100 {100 * np.mean([r[k] < 100 for r in rows]):.0f} %"
            for k in WAYS))


if __name__ == "__main__":
    main()
