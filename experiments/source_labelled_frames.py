"""Score source locators on every labelled frame of single-point clips, with and without history.

`bleedorigin evaluate` scores the source stage on the first labelled frame of a clip (the
benchmark's protocol). Clips whose one point follows the bleeding source, like the real ESD
samples, hold more source labels (frames 0, 30, 60, ...): 33 frames on the six samples. Each
model is scored on every one of them twice: on the frame alone, and with the `--history` frames
before it (frame 0 has none, so it is reported on its own). The image centre (`source_centre`)
and the red-mask peak (`source_redmask`) are always added as reference rows. Calibration: the
Spearman correlation between confidence and error (negative = a lower confidence means a larger
error) and the mean error of the less and the more confident half.

`--report DIR` writes DIR/report.md, DIR/metrics.json and one picture per clip (every labelled
frame with the truth and each model's point, and the evidence maps of a model that keeps them,
one that also weighs history when given: network heat, Red-Mask, dark blood, support, rim prior, centre
prior, growth, flow divergence, fused posterior).
`--saturation` scales the frames' HSV saturation first (a robustness check).

    python experiments/source_labelled_frames.py ../shared/data/esd_clips --models source_small \\
        --models source_evidence --report runs/source_real
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bleedorigin.errors import BleedOriginError
from bleedorigin.eval.metrics import calibration
from bleedorigin.eval.protocol import ClipFrames
from bleedorigin.io.bench import discover_clips
from bleedorigin.models.loading import load_stage
from bleedorigin.eval.locate import evaluate_source
from bleedorigin.models.source.train import source_labels
from bleedorigin.utils.files import atomic_open
from bleedorigin.utils.jsonio import write_json_atomic

REFERENCES = ("source_centre", "source_redmask")
HISTORY = 30  # frames before each labelled frame handed to the localizer (1 s at 30 fps)
COLOURS = [(255, 220, 0), (255, 0, 255), (0, 160, 255), (255, 128, 0), (160, 255, 160)]  # per model, RGB
TILE = (192, 144)


def scale_saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def clip_items(clip: Any, saturation: float = 1.0, history: int = 0) -> list[dict]:
    """The clip's source-labelled frames as `evaluate_source` items at the model resolution, like
    `bleedorigin evaluate` feeds them, each with up to `history` earlier frames (oldest first)."""
    labels = source_labels(clip)
    if not labels:
        return []
    items: list[dict] = []
    frames = ClipFrames(clip, budget_mb=0)
    recent: list[np.ndarray] = []
    for t, frame in frames:
        frame = frame if saturation == 1.0 else scale_saturation(frame, saturation)
        if t in labels:
            items.append({"frame": frame, "xy": frames.to_model(labels[t]), "id": f"{clip.id}@{t}",
                          "clip": clip.id, "first": t == min(labels), "history": list(recent)})
        if t >= max(labels):
            break
        if history > 0:
            recent = (recent + [frame])[-history:]
    return items


def labelled_items(data: str, saturation: float = 1.0, history: int = 0) -> list[dict]:
    """Every frame whose label is the bleeding source, over all clips of `data`."""
    return [it for clip in discover_clips(data) for it in clip_items(clip, saturation, history)]


def score(model: Any, items: list[dict], with_history: bool) -> list[dict]:
    """One row per item: error (px at 512x384), confidence, prediction, and the model's evidence
    maps when it keeps them."""
    rows = []
    for it in items:
        one = dict(it) if with_history else {k: v for k, v in it.items() if k != "history"}
        row = evaluate_source(model, [one])["items"][0]
        maps = getattr(model, "last_maps", None)
        rows.append({"id": it["id"], "clip": it["clip"], "first": it["first"], "error": row["error_px"],
                     "confidence": row["confidence"], "pred": row["pred"], "maps": maps})
    return rows


def block(errors: np.ndarray) -> dict[str, Any]:
    if not len(errors):
        return {"n": 0}
    return {"n": int(len(errors)), "err_avg": float(errors.mean()), "acc_100": float((errors < 100).mean())}


def summarise(alone: list[dict], hist: list[dict]) -> dict[str, Any]:
    first = np.array([r["first"] for r in alone])
    e0 = np.array([r["error"] for r in alone])
    e1 = np.array([r["error"] for r in hist])
    c1 = np.array([r["confidence"] for r in hist])
    return {"frame0": block(e0[first]), "later_alone": block(e0[~first]), "later_history": block(e1[~first]),
            "all_alone": block(e0), "all_history": block(e1), "calibration_history": calibration(c1, e1)}


def _fmt(b: dict[str, Any]) -> str:
    return "-" if not b["n"] else f"{b['err_avg']:.1f} ({100 * b['acc_100']:.0f} %, n={b['n']})"


def table(results: dict[str, dict[str, Any]]) -> str:
    cols = ["frame0", "later_alone", "later_history", "all_alone", "all_history"]
    n_all = next(iter(results.values()))["all_alone"]["n"]
    heads = ["frame 0", "later, alone", "later, history", f"all {n_all}, alone", "all, history"]
    lines = ["| model | " + " | ".join(heads) + " | calibration (rho; err low/high conf) |",
             "|---|" + "---|" * (len(cols) + 1)]
    for name, s in results.items():
        cal = s["calibration_history"]
        c = "-" if cal.get("spearman") is None else \
            f"{cal['spearman']:+.2f}; {cal['err_low_conf']:.0f} / {cal['err_high_conf']:.0f}"
        lines.append(f"| {name} | " + " | ".join(_fmt(s[k]) for k in cols) + f" | {c} |")
    return "\n".join(lines)


# -- pictures --------------------------------------------------------------------------------
def _heat_tile(m: np.ndarray | None) -> np.ndarray:
    if m is None:
        return np.zeros((TILE[1], TILE[0], 3), np.uint8)
    v = cv2.resize(m.astype(np.float32), TILE, interpolation=cv2.INTER_LINEAR)
    v = (255 * (v - v.min()) / max(float(np.ptp(v)), 1e-9)).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(v, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(img, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def clip_picture(items: list[dict], rows: dict[str, list[dict]], path: Path) -> None:
    """One row per labelled frame: the frame with the truth (green ring) and every model's point
    (coloured dots), then the evidence maps of a model that kept them."""
    names = list(rows)
    with_maps = [n for n in names if rows[n][0]["maps"] is not None]
    # the model whose maps include the most history evidence: it shows every piece of evidence
    maps_of = max(with_maps, key=lambda n: sum(getattr(rows[n][-1]["maps"], k) is not None
                                               for k in ("growth", "flow")), default=None)
    kinds = ["heat", "red", "dark", "support", "prior", "centre", "growth", "flow", "posterior"] if maps_of else []
    out = []
    for i, it in enumerate(items):
        h, w = it["frame"].shape[:2]
        s = np.array(TILE, np.float64) / (w, h)
        frame = cv2.resize(it["frame"], TILE, interpolation=cv2.INTER_AREA).copy()
        gx, gy = (np.asarray(it["xy"]) + 0.5) * s - 0.5
        cv2.circle(frame, (int(gx), int(gy)), 7, (0, 255, 0), 2, cv2.LINE_AA)
        for k, n in enumerate(names):
            px, py = (np.asarray(rows[n][i]["pred"]) + 0.5) * s - 0.5
            cv2.circle(frame, (int(px), int(py)), 3, COLOURS[k % len(COLOURS)], -1, cv2.LINE_AA)
        tiles = [_label(frame, it["id"])]
        m = rows[maps_of][i]["maps"] if maps_of else None
        tiles += [_label(_heat_tile(getattr(m, k)), k) for k in kinds]
        out.append(np.hstack(tiles))
    legend = np.zeros((16, out[0].shape[1], 3), np.uint8)
    x = 3
    for k, n in enumerate(["truth"] + names):
        col = (0, 255, 0) if k == 0 else COLOURS[(k - 1) % len(COLOURS)]
        cv2.putText(legend, n, (x, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, col, 1, cv2.LINE_AA)
        x += 9 * len(n) + 12
    picture = np.vstack([legend] + out)
    _, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    with atomic_open(path, "wb") as f:
        f.write(png.tobytes())


def write_report(out: Path, data: str, history: int, results: dict[str, dict], pictures: list[str]) -> None:
    text = [f"# Source localisation on every source label of `{data}`", "",
            "Err_avg in px of a 512x384 frame (Acc<100, n frames). 'later' = labelled frames after "
            f"frame 0; 'history' = the {history} frames before each labelled frame handed to the "
            "localizer (frame 0 has none). Calibration on 'all, history': Spearman rho of confidence "
            "against error, and the mean error of the less / more confident half.", "",
            table(results), "", "## Per clip", "",
            "Green ring: the label. Dots: each model's point (legend on top). Maps: those of a "
            "model that keeps evidence maps (with history; growth and flow when one weighs them).", ""]
    text += [f"![{p}]({p})" for p in pictures]
    with atomic_open(out / "report.md") as f:
        f.write("\n".join(text) + "\n")
    write_json_atomic(out / "metrics.json", {"data": data, "history": history, "models": results})


def run(data: str, names: list[str], history: int, saturation: float, device: str,
        report: Path | None) -> dict[str, dict]:
    models = [(n, load_stage("source", n, device)) for n in dict.fromkeys(names + list(REFERENCES))]
    alone: dict[str, list[dict]] = {n: [] for n, _ in models}
    hist: dict[str, list[dict]] = {n: [] for n, _ in models}
    pictures: list[str] = []
    for clip in discover_clips(data):
        items = clip_items(clip, saturation, history)
        if not items:
            continue
        for n, model in models:
            alone[n] += score(model, items, with_history=False)
            hist[n] += score(model, items, with_history=True)
        if report is not None:
            report.mkdir(parents=True, exist_ok=True)
            name = f"{clip.id}.png"
            clip_picture(items, {n: hist[n][-len(items):] for n, _ in models}, report / name)
            pictures.append(name)
        for rows in (*alone.values(), *hist.values()):
            for r in rows:
                r["maps"] = None  # pictures are written: free the maps
    if not any(alone.values()):
        raise BleedOriginError(f"{data}: no clip with bleeding-source labels")
    results = {n: summarise(alone[n], hist[n]) for n, _ in models}
    if report is not None:
        write_report(report, data, history, results, pictures)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder of clips (benchmark folder or clip folders)")
    ap.add_argument("--models", action="append", default=None, help="source model name or folder (repeat)")
    ap.add_argument("--history", type=int, default=HISTORY, help="frames before each labelled frame")
    ap.add_argument("--saturation", type=float, default=1.0, help="scale the frames' saturation first")
    ap.add_argument("--report", type=Path, default=None, help="folder for report.md, metrics.json, pictures")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.history < 0:
        ap.error(f"--history must be >= 0, got {args.history}")
    try:  # bad input: one line and exit 2, as the CLI does
        results = run(args.data, args.models or ["source_small"], args.history, args.saturation,
                      args.device, args.report)
    except BleedOriginError as e:
        ap.error(str(e))
    print(table(results))


if __name__ == "__main__":
    main()
