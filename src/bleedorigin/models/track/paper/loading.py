"""Strict loading of the released Track-On checkpoint and of DINOv2 weights into `TrackOn`."""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from bleedorigin.errors import InputError
from bleedorigin.models.layout import compare_layout, layout_of, read_state_dict
from bleedorigin.models.backbones.vit import load_pretrained, vit_dinov2_small
from bleedorigin.models.track.paper.model import TrackOn, TrackPaper

log = logging.getLogger(__name__)


def _show(keys: list[str]) -> str:
    return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")


def _load_strict(module: nn.Module, state: dict, path: Path | str, what: str) -> None:
    """`state` into `module` with every key and shape checked first, for a one-line error."""
    diff = compare_layout(state, layout_of(module.state_dict()))
    if any(diff.values()):
        raise InputError(f"{path}: not a {what} checkpoint for this model: missing [{_show(diff['missing'])}], "
                         f"unexpected [{_show(diff['unexpected'])}], wrong shape [{_show(diff['shape'])}]")
    module.load_state_dict(state, strict=True)


def load_trackon(net: TrackOn, path: str | Path) -> None:
    """`track_on_checkpoint.pt` (or any state dict with its layout) into `net`, every key checked."""
    state = read_state_dict(path)
    _load_strict(net, state, path, "Track-On v1")
    log.info("loaded Track-On weights (%d tensors) from %s", len(state), path)


def load_dinov2(net: TrackOn, path: str | Path) -> None:
    """DINOv2 ViT-S/14 weights (torch hub, timm or Hugging Face layout) into the frozen ViT only;
    the adapter and heads keep their initialisation (training from DINOv2, as Track-On did)."""
    vit = vit_dinov2_small()
    load_pretrained(vit, path)  # strict on the ViT's own keys
    missing, unexpected = net.backbone.vit_encoder.load_state_dict(vit.state_dict(), strict=False)
    assert not unexpected, unexpected  # the adapter is a superset of the ViT
    log.info("loaded DINOv2 ViT-S/14 from %s (%d adapter tensors left as initialised)", path, len(missing))


def load_track_paper(model: TrackPaper, path: str | Path) -> str:
    """A released Track-On checkpoint (into `model.net`; the Red-Mask module keeps its identity
    start) or a fine-tuned track_paper file or folder (`net.*` and `red.*`, all strict).
    Returns what was loaded: "track_on" or "finetuned"."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    state = read_state_dict(path)
    if not any(k.startswith("net.") for k in state):
        _load_strict(model.net, state, path, "Track-On v1")
        log.info("loaded Track-On weights (%d tensors) from %s", len(state), path)
        return "track_on"
    _load_strict(model, state, path, "track_paper")
    return "finetuned"
