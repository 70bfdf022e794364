"""Contact sheet: one row per scenario, synthetic frames next to the matching real clip."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.sim.appearance import Appearance
from bleedorigin.sim.generator import generate_clip
from bleedorigin.io.video import load_clip_frames
from bleedorigin.sim.scenarios import SCENARIOS

# real sample folder name prefix of each scenario (../shared/data/esd_clips)
REAL_PREFIX = {"clear_view": "clear_view", "obscured_view": "bleeding_view", "camera_jitter": "camera",
               "light_reflection": "reflection", "water_flushing": "water", "instrument_interference": "instrument"}
TILE = (224, 168)


def _tile(img: np.ndarray, label: str = "") -> np.ndarray:
    out = cv2.resize(img, TILE, interpolation=cv2.INTER_AREA if img.shape[1] > TILE[0] else cv2.INTER_CUBIC)
    if label:
        cv2.putText(out, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def make_contact_sheet(out_png: str | Path, real_dir: str | Path | None = None, seed: int = 0,
                       sim_per_row: int = 3, real_per_row: int = 2, appearance: Appearance | None = None) -> Path:
    """Write the sheet PNG: per scenario `sim_per_row` BleedSim frames (after onset, several
    seeds; with `appearance`, the first of them as v1 and the rest as v2), then `real_per_row`
    frames of the real clip of that scenario when available."""
    real = {}
    if real_dir is not None:
        root = Path(real_dir)
        if not root.is_dir():
            raise InputError(f"not a folder: {root}")
        for d in sorted(root.iterdir()):
            for sc, prefix in REAL_PREFIX.items():
                if d.is_dir() and d.name.startswith(prefix):
                    real[sc] = load_clip_frames(d)
    rows = []
    for i, sc in enumerate(SCENARIOS):
        tiles = []
        for j in range(sim_per_row):
            look = appearance if appearance is not None and j > 0 else None
            clip = generate_clip("track_short", seed + 97 * i + j, scenario=sc, num_tracks=0, appearance=look)
            label = (f"{'v2' if look else 'v1'} {sc}" if appearance is not None and j < 2 else
                     f"sim {sc}" if j == 0 else "")
            tiles.append(_tile(clip.frames[10 + 10 * (j % 2)], label))
        if sc in real:
            fr = real[sc]
            for j, t in enumerate(np.linspace(0, len(fr) - 1, real_per_row + 2)[1:-1].astype(int)):
                tiles.append(_tile(fr[t], "real" if j == 0 else ""))
        else:
            tiles += [np.zeros((TILE[1], TILE[0], 3), np.uint8)] * real_per_row
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet = sheet >> 3 << 3 | 4  # 5 bits a channel: a sheet for looking at, a third of the file size
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise InputError(f"cannot write {out}")
    return out
