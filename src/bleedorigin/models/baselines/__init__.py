"""Reference baselines only (reference rows of every report): onset_hsv, source_redmask,
source_mllm, track_lk, track_dis, track_scene and the zero-motion control track_still."""
from bleedorigin.models.baselines import dis, hsv, lk, mllm, redmask, scene, still  # noqa: F401
