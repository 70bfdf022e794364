"""Tracking stage: the shipped multi-reference flow tracker (`flow`, registered as track_mft*),
the learned Track-On-style tracker (`learned`, track_small*) and the paper-scale Track-On
(`paper`, track_paper) side by side."""
from bleedorigin.models.track import flow, learned, paper  # noqa: F401
