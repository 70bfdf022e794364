"""Reference baselines (registered as onset_hsv, source_redmask, track_lk, track_dis, track_scene,
source_mllm)."""
from bleedorigin.models.baselines import dis, hsv, lk, mllm, redmask, scene  # noqa: F401
