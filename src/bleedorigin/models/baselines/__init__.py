"""Reference baselines (registered as onset_hsv, source_redmask, track_lk, track_dis, source_mllm)."""
from bleedorigin.models.baselines import dis, hsv, lk, mllm, redmask  # noqa: F401
