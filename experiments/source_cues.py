"""Measure each source cue alone against the centre guess, on real clips with dense labels and on
BleedSim clips (docs/source-choices.md, "Cues": the rule and the table this prints).

Protocols (errors in px of a 512x384 frame):
- real `f0`: frame 0 alone; `f60`: frame 60 with frames 0..59 as history; `all`: every
  `--stride`-th frame with the 30 frames before it as history (frame 0 alone); `early`: frames
  10, 15, .., 35 with the 30 frames before them (where the pipeline locates on these clips);
- BleedSim `on`: the GT onset frame with the 10 frames before it; `on8`: 8 frames after the onset
  with the 18 frames before it.

`--cache FILE` keeps every map of every item (npz) so fusions can be fitted without recomputing
(`experiments/source_fuse_fit.py`); `--cues` computes only the maps named.

    python experiments/source_cues.py --real ../shared/data/esd_clips --sim val_detect --cache cues.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.eval.protocol import dense_source
from bleedorigin.io.bench import discover_clips
from bleedorigin.io.video import FrameMapper, read_frames
from bleedorigin.models.registry import create
from bleedorigin.models.source.cues import (CueConfig, outflow_map, persistent_stump_map, refill_map, streak_map,
                                            stump_map)
from bleedorigin.models.source.evidence import flow_map, growth_map
from bleedorigin.models.source.predictor import to_model
from bleedorigin.vision.color import field_of_view

SIZE = (192, 144)
SCALE = 512 / SIZE[0]  # working px -> px of a 512x384 frame (same in y: 384 / 144)
CUES = ("centre", "net", "red", "dark", "red_fusion", "streak", "stump", "stump_persist", "outflow", "refill", "growth",
        "flowdiv")
FUSION_MAPS = ("net", "red", "dark", "red_fusion", "support", "rim", "centre_log")  # from the red fusion's maps
PERSIST = CueConfig(stump_history=8)  # as `source_evidence_persist`


def small(frame: np.ndarray) -> np.ndarray:
    """The frame as the localizer sees it in `evaluate` and the pipeline: first at the model size
    (512x384, FrameMapper: linear when enlarging), then at the working size (INTER_AREA)."""
    if frame.shape[1::-1] != MODEL_SIZE:
        frame = FrameMapper(frame.shape[1::-1], MODEL_SIZE).resize(frame)
    return cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)


def real_items(root: str, stride: int) -> list[dict]:
    items = []
    for clip in discover_clips(root):
        dense = dense_source(clip)
        if dense is None:
            continue
        video = read_frames(clip.video)
        size = (video.shape[2], video.shape[1])
        frames = [small(f) for f in video]
        picks = [("f0", 0, 0), ("f60", 60, 60)] + [("all", t, 30) for t in range(0, len(frames), stride)]
        picks += [("early", t, 30) for t in range(10, 40, 5)]
        for proto, t, hist in picks:
            if t < len(frames) and np.isfinite(dense[t, 0]):
                items.append({"set": "real", "proto": proto, "clip": clip.id, "t": t, "frame": frames[t],
                              "history": frames[max(0, t - hist):t], "xy": to_model(dense[t], size, SIZE)})
    return items


def sim_items(root: str, tag: str) -> list[dict]:
    items = []
    for clip in discover_clips(root):
        dense = dense_source(clip)
        if dense is None or clip.onset_frame is None:
            continue
        video = read_frames(clip.video)
        size = (video.shape[2], video.shape[1])
        on = int(clip.onset_frame)
        for proto, t, hist in (("on", on, 10), ("on8", on + 8, 18)):
            if t < len(video) and np.isfinite(dense[t, 0]):
                items.append({"set": tag, "proto": proto, "clip": clip.id, "t": t, "frame": small(video[t]),
                              "history": [small(f) for f in video[max(0, t - hist):t]],
                              "xy": to_model(dense[t], size, SIZE)})
    return items


def cue_maps(loc, item: dict, wanted: tuple[str, ...]) -> dict[str, np.ndarray | None]:
    frame, hist = item["frame"], item["history"]
    fov = field_of_view(frame)
    h, w = fov.shape
    centre = np.zeros((h, w), np.float32)
    centre[(h - 1) // 2, (w - 1) // 2] = 1  # the image centre, as `source_centre`
    out: dict[str, np.ndarray | None] = {"fov": fov.astype(np.float32), "centre": centre}
    if any(c in FUSION_MAPS for c in wanted):
        m = loc.maps(frame)
        out.update({"net": m.heat, "red": m.red, "dark": m.dark, "red_fusion": m.posterior, "support": m.support,
                    "rim": m.prior, "centre_log": m.centre})
    maker = {"streak": lambda: streak_map(frame, fov), "stump": lambda: stump_map(frame, fov),
             "stump_persist": lambda: persistent_stump_map(frame, hist, fov, PERSIST),
             "outflow": lambda: outflow_map(frame, hist, fov) if hist else None,
             "refill": lambda: refill_map(frame, hist, fov) if hist else None,
             "growth": lambda: growth_map(frame, hist, fov=fov) if hist else None,
             "flowdiv": lambda: flow_map(frame, hist, fov=fov) if hist else None}
    out.update({c: make() for c, make in maker.items() if c in wanted})
    return out


def argmax_xy(m: np.ndarray | None, fov: np.ndarray, fallback: tuple[float, float]) -> tuple[float, float]:
    if m is None or float((m * fov).max()) <= 0:
        return fallback
    y, x = np.unravel_index(int(np.argmax(m * fov)), m.shape)
    return float(x), float(y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", action="append", default=[])
    ap.add_argument("--sim", action="append", default=[], help="BleedSim folder (repeatable)")
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--cache", default="")
    ap.add_argument("--cues", default=",".join(CUES), help="comma-separated maps to compute (default: all)")
    a = ap.parse_args()
    items = [it for r in a.real for it in real_items(r, a.stride)]
    items += [it for s in a.sim for it in sim_items(s, Path(s).name)]
    cues = tuple(c for c in CUES if c in a.cues.split(","))
    loc = create("source_evidence_red", device="cpu")  # its maps (network heat, Red-Mask, dark blood, priors)
    rows, store = [], {}
    for i, it in enumerate(items):
        maps = cue_maps(loc, it, cues)
        fov = maps["fov"] > 0
        centre = argmax_xy(maps["centre"], fov, (SIZE[0] / 2, SIZE[1] / 2))
        for cue in cues:
            p = argmax_xy(maps[cue], fov, centre)
            err = SCALE * float(np.hypot(p[0] - it["xy"][0], p[1] - it["xy"][1]))
            rows.append((it["set"], it["proto"], it["clip"], cue, err, maps[cue] is None))
        if a.cache:
            for k, v in maps.items():
                if v is not None:
                    store[f"{i}/{k}"] = v.astype(np.float16)
            store[f"{i}/xy"] = np.asarray(it["xy"], np.float32)
            store[f"{i}/rgb"] = it["frame"]
            store[f"{i}/meta"] = np.array([it["set"], it["proto"], it["clip"], str(it["t"])])
    if a.cache:
        np.savez_compressed(a.cache, **store)
    keys = sorted({(r[0], r[1]) for r in rows})
    print("| cue | " + " | ".join(f"{s} {p}" for s, p in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for cue in cues:
        cells = []
        for s, p in keys:
            e = [r[4] for r in rows if r[0] == s and r[1] == p and r[3] == cue]
            none = sum(r[5] for r in rows if r[0] == s and r[1] == p and r[3] == cue)
            cells.append(f"{np.mean(e):.1f} (n={len(e)}{f', {none} none' if none else ''})")
        print(f"| {cue} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
