"""Reference baselines only (reference rows of every report): onset_hsv, source_redmask,
source_mllm, track_lk, track_dis and track_scene."""
from bleedorigin.models.baselines import dis, hsv, lk, mllm, redmask, scene  # noqa: F401
