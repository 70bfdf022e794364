"""Regenerate the demo's sample clip (src/bleedorigin/assets/sample/bleedsim_full.mp4).

A BleedSim `full` clip: 10 s of tissue with camera motion, a bleed starting part-way through and
water jets; its truth (onset frame, source point) goes to bleedsim_full.json beside it. Encoded at a moderate quality so the file stays small (~1-2 MB).

    .venv/bin/python tools/make_sample_clip.py
"""
from __future__ import annotations

import json
from pathlib import Path

from bleedorigin.io.video import VideoWriter
from bleedorigin.sim.generator import generate_clip

OUT = Path(__file__).resolve().parents[1] / "src" / "bleedorigin" / "assets" / "sample"
SEED, FRAMES, SCENARIO, SITE = 11, 300, "water_flushing", "gastric_body"


def main() -> None:
    clip = generate_clip("full", SEED, num_frames=FRAMES, scenario=SCENARIO, site=SITE)
    OUT.mkdir(parents=True, exist_ok=True)
    with VideoWriter(OUT / "bleedsim_full.mp4", clip.fps, (clip.frames.shape[2], clip.frames.shape[1]),
                     crf=26) as writer:
        for frame in clip.frames:
            writer.write(frame)
    truth = {"onset_frame": clip.onset_frame, "scenario": clip.scenario, "site": clip.site,
             "seed": SEED, "source_xy_at_onset": [float(v) for v in clip.source_xy[clip.onset_frame]]}
    (OUT / "bleedsim_full.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {OUT / 'bleedsim_full.mp4'} (onset at frame {clip.onset_frame})")


if __name__ == "__main__":
    main()
