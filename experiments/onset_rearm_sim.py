"""BleedSim: a bleed stops and its source is rinsed clean while the pool it made stays in view.

Renders `full` BleedSim clips (onset at frame 30) of the `obscured_view` scenario (slow, pooling
blood) with a steady camera, in crimson blood the bleeding-present check's masks see. The source
stops after STOP blood steps and, for 60 steps from then, blood within RADIUS grid cells of it is
rinsed away, so the pipeline's episode can end (no blood around the tracked source) while the
pool lies elsewhere in view. With --rebleed, the source starts bleeding again at that frame (a
new bleed after the episode). Each clip runs through the shipped pipeline twice: as shipped (the
onset model re-armed after an episode counts fresh blood only) and with the onset model re-armed
as at stream start (any blood counts). Prints the events (onset frame, and the source's distance
to the true source at the onset in clip pixels) and episode ends of both. With --untold, the
shipped pipeline's localizer is not told which blood the last episode left (no `exclude`). From
the repository root:

    python experiments/onset_rearm_sim.py --seeds 0 1 2 3
    python experiments/onset_rearm_sim.py --seeds 0 3 4 --frames 450 --rebleed 330
"""
from __future__ import annotations

import argparse

import numpy as np

from bleedorigin.errors import BleedOriginError
from bleedorigin.pipeline import Pipeline, PipelineConfig
from bleedorigin.sim.blood import BloodField
from bleedorigin.sim.camera import camera_path
from bleedorigin.sim.generator import ClipSimulator, SimClip, _rng

CRIMSON = (185.0, 28.0, 36.0), (80.0, 10.0, 14.0)  # thin film, thick pool (real ESD blood's hue)
RINSE_STEPS = 60


class StoppedBleed(BloodField):
    """A source that stops after `stop` steps, is then rinsed for RINSE_STEPS steps, and bleeds
    again from step `again` (None: never)."""

    def stop_after(self, stop: int, radius: float, again: int | None = None) -> None:
        gh, gw = self.shape
        yy, xx = np.mgrid[:gh, :gw]
        self.stop, self.again = stop, again
        self.rinse = (((xx - self.src[0]) ** 2 + (yy - self.src[1]) ** 2) <= radius ** 2).astype(np.float32)

    def emission(self) -> float:
        stopped = self.t >= self.stop and (self.again is None or self.t < self.again)
        return 0.0 if stopped else super().emission()

    def step(self, emit: bool = True) -> None:
        super().step(emit)
        if self.stop <= self.t < self.stop + RINSE_STEPS:
            self.wash(self.rinse, 0.3)


def stopped_clip(seed: int, frames: int, stop: int, radius: float, rebleed: int | None = None) -> SimClip:
    sim = ClipSimulator("full", seed, num_frames=frames, scenario="obscured_view", num_tracks=0)
    sim.spec.onset = 30
    motion = sim.params.motion
    motion.drift, motion.rotation, motion.zoom = 4.0, 0.01, 0.01  # steady: the pool stays in view
    sim.path = camera_path(_rng(seed, 5), frames, sim.view, sim.tex_size, motion)
    blood = sim.params.blood
    blood.thin_rgb, blood.thick_rgb = CRIMSON
    sim.blood = StoppedBleed(_rng(seed, 10), sim.tex_size, sim.tissue.height, sim.source_tex, blood)
    sim.blood.stop_after(stop, radius, None if rebleed is None else rebleed - sim.spec.onset)
    return sim.run()


def events(pipe: Pipeline, clip: SimClip) -> tuple[list[tuple[int, int]], list[int]]:
    """((onset frame, source error in pixels) per event, frames where an episode had ended)."""
    pipe.reset()
    phases = [pipe.step(f).phase for f in clip.frames]
    ends = [i for i in range(1, len(phases)) if phases[i - 1] == "tracking" and phases[i] == "waiting"]
    found = [(e.onset.frame, round(float(np.hypot(*(np.array([e.source.x, e.source.y]) - clip.source_xy[e.onset.frame])))))
             for e in pipe.events]
    return found, ends


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--stop", type=int, default=90, help="blood steps before the source stops")
    ap.add_argument("--radius", type=float, default=12.0, help="rinsed radius (blood grid cells)")
    ap.add_argument("--rebleed", type=int, help="frame where the source bleeds again")
    ap.add_argument("--untold", action="store_true", help="the localizer is not told the leftover blood")
    args = ap.parse_args()
    if args.frames < 100 or args.stop < 1 or args.radius <= 0:
        ap.error("need --frames >= 100, --stop >= 1 and --radius > 0")
    if args.rebleed is not None and not 30 + args.stop + RINSE_STEPS <= args.rebleed < args.frames:
        ap.error("--rebleed must come after the rinse and before the last frame")
    try:  # bad input: one line and exit 2, as the CLI does
        shipped = Pipeline.from_pretrained(PipelineConfig(device="cpu"))
        if args.untold:
            shipped.onset.leftover_blood = lambda: None
        as_start = Pipeline.from_pretrained(PipelineConfig(device="cpu"))
        as_start.onset.rearm = as_start.onset.reset  # any blood counts after an episode too
        print("seed\tblood in view at the end (truth)\tevents (onset, source error px), episode ends: shipped\tre-armed as at stream start")
        for seed in args.seeds:
            clip = stopped_clip(seed, args.frames, args.stop, args.radius, args.rebleed)
            left = float(clip.blood_mask[-30:].mean())
            (a, ea), (b, eb) = events(shipped, clip), events(as_start, clip)
            print(f"{seed}\t{100 * left:.1f} %\t{a}, {ea}\t{b}, {eb}", flush=True)
    except BleedOriginError as e:
        ap.error(str(e))


if __name__ == "__main__":
    main()
