"""BleedSim: synthetic ESD bleeding video with exact truth (see docs/bleedsim.md)."""
from bleedorigin.sim.generator import ClipSimulator, SimClip, generate_clip
from bleedorigin.sim.realism import format_realism, realism_report
from bleedorigin.sim.scenarios import KINDS, NEGATIVE_SCENARIOS, SCENARIOS
from bleedorigin.sim.tissue import SITES
from bleedorigin.sim.writer import load_gt, save_gt, write_bench

__all__ = ["ClipSimulator", "SimClip", "generate_clip", "write_bench", "realism_report", "format_realism",
           "load_gt", "save_gt", "KINDS", "SCENARIOS", "NEGATIVE_SCENARIOS", "SITES"]
