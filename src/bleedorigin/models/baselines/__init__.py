"""Classical models: the reference baselines (registered as onset_hsv, source_redmask, track_lk,
track_dis, track_scene, source_mllm) and the multi-reference flow tracker (track_mft*)."""
from bleedorigin.models.baselines import dis, hsv, lk, mllm, multiflow, redmask, scene  # noqa: F401
