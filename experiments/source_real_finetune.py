"""Do real frames help the source network? Score networks fine-tuned leave one clip out (real
frames of five clips mixed with BleedSim v2, `configs/source_real.yaml`) on the held-out clip,
against the same fine-tuning on BleedSim alone and the shipped `source_small` (docs/source-choices.md,
"Learning from real frames").

Each network is scored alone (arg-max of its heat inside the view) and inside the red fusion
(`source_evidence_red`'s settings with that network's heat), on the items of the map caches of
`experiments/source_cues.py` (frames at the working size): real `f0`, `f60`, `all` of the held-out
clip, and BleedSim validation (`on`, `on8`).

    python experiments/source_real_finetune.py --real cues_real.npz --sim cues_sim.npz \\
        --folds ft --control ft/sim_only/last
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bleedorigin.models.source.fusion import RED, FusionConfig, fuse
from bleedorigin.models.source.predictor import SourceLocator
from source_fuse_fit import SCALE, load


def heat(net: SourceLocator, it: dict) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(net.heatmap(np.ascontiguousarray(it["rgb"]))[0, 0]).cpu().numpy() * it["fov"]


def errors(net: SourceLocator, its: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(network alone, red fusion) errors in px at 512x384."""
    cfg = FusionConfig(**RED)
    alone, fused = [], []
    for it in its:
        h = heat(net, it)
        f = {k: it[k].astype(np.float32) for k in ("red", "support", "rim", "centre_log")}
        dark = it["dark"].astype(np.float32) if "dark" in it else None
        s = fuse(h, f["red"], f["support"], f["rim"], None, cfg, None, f["centre_log"], dark)
        for out, m in ((alone, h), (fused, s)):
            m = np.where(it["fov"] > 0, m, -np.inf)
            y, x = np.unravel_index(int(np.argmax(m)), m.shape)
            out.append(SCALE * float(np.hypot(x - it["xy"][0], y - it["xy"][1])))
    return np.array(alone), np.array(fused)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--folds", required=True, help="folder with one run folder per held-out clip")
    ap.add_argument("--control", required=True, help="checkpoint fine-tuned on BleedSim alone")
    ap.add_argument("--checkpoint", default="last", help="checkpoint of each fold run (last | best)")
    a = ap.parse_args()
    real, sim = load(a.real), load(a.sim)
    clips = sorted({it["clip"] for it in real})
    nets = {"shipped source_small": lambda c: SourceLocator.from_pretrained("small", device="cpu"),
            "BleedSim v2 only": lambda c: SourceLocator.from_pretrained(a.control, device="cpu"),
            "real + BleedSim v2 (LOCO)": lambda c: SourceLocator.from_pretrained(
                str(Path(a.folds) / c / a.checkpoint), device="cpu")}
    print("| network | alone f0 | alone f60 | alone all | red fusion f0 | red fusion f60 | red fusion all |"
          " BleedSim val on alone / fused (Acc<100) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in nets.items():
        acc = {(k, p): [] for k in ("alone", "fused") for p in ("f0", "f60", "all")}
        sim_e = {"alone": [], "fused": []}
        for c in clips:
            if not (Path(a.folds) / c / a.checkpoint).is_dir() and "LOCO" in name:
                continue
            net = make(c)
            its = [it for it in real if it["clip"] == c]
            e_alone, e_fused = errors(net, its)
            for it, ea, ef in zip(its, e_alone, e_fused):
                acc[("alone", it["proto"])].append(ea)
                acc[("fused", it["proto"])].append(ef)
            if "LOCO" in name or c == clips[0]:  # one network for the others: score BleedSim once
                s_alone, s_fused = errors(net, [it for it in sim if it["proto"] == "on"])
                sim_e["alone"] += list(s_alone)
                sim_e["fused"] += list(s_fused)
        cells = [f"{np.mean(acc[(k, p)]):.1f} (n={len(acc[(k, p)])})" if acc[(k, p)] else "-"
                 for k in ("alone", "fused") for p in ("f0", "f60", "all")]
        sa, sf = np.array(sim_e["alone"]), np.array(sim_e["fused"])
        cells.append(f"{sa.mean():.1f} / {sf.mean():.1f} ({100 * (sa < 100).mean():.0f} / {100 * (sf < 100).mean():.0f} %, "
                     f"n={len(sa)})" if len(sa) else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
