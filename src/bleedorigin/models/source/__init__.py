"""BleedOrigin-Detect, source stage (paper section 4.1.2): where does the bleeding start?

Registry names: `source_evidence` (the vessel-stump cue, small dark spots in or at the edge of
blood, models.source.cues), `source_evidence_persist` (the same cue over the
history frames aligned to the current one: a stump that stays on the same tissue point wins),
`source_evidence_history` (the stump cue, also weighing where blood is red again while little
blood is in view over earlier frames), `source_evidence_red`
(the shipped pipeline's source: `source_small` fused with the Red-Mask, dark blood and a spatial
prior on the working channel's side, models.source.fusion),
`source_small` (shipped weights), `source_paper` (PE-Spatial-style ViT at 512x384, encoder
weights from a local file, or a trained checkpoint folder), `source_test` (tiny random network)
and `source_centre`, `source_channel` (references: the image centre, 6 o'clock below it).
"""
from __future__ import annotations

import logging
from typing import Any

from bleedorigin.models.registry import register_model
from bleedorigin.models.source import centre  # noqa: F401  (registers source_centre, source_channel)
from bleedorigin.models.source.fusion import PERSIST, RED, STUMP, EvidenceSourceLocator, from_options
from bleedorigin.models.source.model import SourceConfig, SourceNet
from bleedorigin.models.source.predictor import SourceLocator

log = logging.getLogger(__name__)

__all__ = ["SourceConfig", "SourceNet", "SourceLocator", "PAPER_MODEL", "TEST_MODEL"]

# The paper's localizer: PE-Spatial encoder on 512x384 frames (H/8 = 48x64 features).
PAPER_MODEL: dict[str, Any] = dict(encoder="vit_pe_spatial_small", input_size=(512, 384), dim=32, heads=4,
                                   heat_channels=16, sigma=6.0, refine_radius=3)
TEST_MODEL: dict[str, Any] = dict(encoder="cnn_test", input_size=(64, 48), dim=8, heads=2, heat_channels=4,
                                  sigma=2.0)


@register_model("source_small")
def source_small(device: str = "auto", weights: str | None = None) -> SourceLocator:
    return SourceLocator.from_pretrained(weights or "small", device=device)


@register_model("source_evidence")
def source_evidence(device: str = "auto", weights: str | None = None, **options: Any) -> EvidenceSourceLocator:
    """The vessel-stump cue (fusion.STUMP; the network is loaded and runs only when `w_net` > 0);
    `options` are FusionConfig / EvidenceConfig / CueConfig fields."""
    return from_options(SourceLocator.from_pretrained(weights or "small", device=device), **{**STUMP, **options})


@register_model("source_evidence_history")
def source_evidence_history(device: str = "auto", weights: str | None = None, **options: Any) -> EvidenceSourceLocator:
    """`source_evidence` that also weighs the refill cue over the history frames."""
    return source_evidence(device, weights, **{"w_refill": 1.0, **options})


@register_model("source_evidence_persist")
def source_evidence_persist(device: str = "auto", weights: str | None = None, **options: Any) -> EvidenceSourceLocator:
    """`source_evidence` whose stump map is combined over aligned history frames (fusion.PERSIST)."""
    return source_evidence(device, weights, **{**PERSIST, **options})


@register_model("source_evidence_red")
def source_evidence_red(device: str = "auto", weights: str | None = None, **options: Any) -> EvidenceSourceLocator:
    """The network of `weights` (default source_small) fused with the Red-Mask, dark blood, the
    support, rim and centre priors (fusion.RED); `options` as for source_evidence."""
    return from_options(SourceLocator.from_pretrained(weights or "small", device=device), **{**RED, **options})


@register_model("source_paper")
def source_paper(device: str = "auto", weights: str | None = None, pretrained: str = "",
                 **overrides: Any) -> SourceLocator:
    """A trained paper-size checkpoint folder (`weights`), or an untrained head on a
    PE-Spatial-style encoder loaded from the local file `pretrained` (to train or fine-tune)."""
    if weights:
        return SourceLocator.from_pretrained(weights, device=device)
    if not pretrained and overrides.get("encoder", PAPER_MODEL["encoder"]) == PAPER_MODEL["encoder"]:
        from bleedorigin.models.paper_weights import find_local  # `bleedorigin weights --download`
        pretrained = str(find_local("source_paper", "pe_spatial_small") or "")
    cfg = SourceConfig(**{**PAPER_MODEL, "pretrained": pretrained, **overrides})
    # only the encoder is released: the head must be trained (configs/paper/source_paper.yaml)
    log.warning("source_paper: no trained head given (weights=FOLDER); its points are random until "
                "trained with `bleedorigin train source --config configs/paper/source_paper.yaml`")
    return SourceLocator.from_config(cfg, device=device, model_id="source:paper-untrained")


@register_model("source_test")
def source_test(device: str = "cpu", seed: int = 0, **overrides: Any) -> SourceLocator:
    return SourceLocator.from_config(SourceConfig(**{**TEST_MODEL, **overrides}), device=device, seed=seed,
                                     model_id="source:test")
