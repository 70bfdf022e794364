"""LoRA / AdaLoRA fine-tuning of the tracker through peft (paper section 4.2).

Adapters go on the attention projections (decoder cross/self/memory attention, spatial-memory
read, the shared K/V projection) and on the MLP linears (decoder FFNs, re-ranking, offset,
visibility/confidence heads). Everything else, the CNN backbone included, is frozen.
`merge_lora` folds the adapters back into plain Linear layers for export (ONNX, safetensors).
"""
from __future__ import annotations

import logging
from typing import Any

from torch import nn

from bleedorigin.errors import ConfigError
from bleedorigin.models.track.learned.model import TrackOnSmall

log = logging.getLogger(__name__)

_ATTN_LEAVES = ("q", "kv", "out")


def lora_targets(model: nn.Module) -> list[str]:
    """Full names of the Linear layers that get adapters: attention and MLP layers of the decoder
    and heads (never the backbone)."""
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or name.startswith("backbone") or name.startswith("red_enc"):
            continue
        leaf = name.rsplit(".", 1)[-1]
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        attention = leaf in _ATTN_LEAVES and (".cross" in name or "_attn" in name or parent == "sp_read"
                                              or name.startswith("sp_read"))
        mlp = any(name.startswith(p) for p in ("rerank", "offset_heads", "head")) or ".mlp." in name
        if attention or mlp or name == "kv_proj":
            names.append(name)
    return names


def apply_lora(model: TrackOnSmall, kind: str = "lora", r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
               total_step: int | None = None, targets: list[str] | None = None) -> Any:
    """Wrap `model` with peft adapters; returns the PeftModel (only adapter weights trainable).

    kind "adalora" needs `total_step` (the fine-tuning length; ranks are pruned along it) and
    a call to `lora_step(model, step)` after each optimiser step.
    """
    from peft import AdaLoraConfig, LoraConfig, get_peft_model

    targets = targets or lora_targets(model)
    if kind == "lora":
        cfg: Any = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
    elif kind == "adalora":
        if not total_step:
            raise ConfigError("apply_lora(kind='adalora') needs total_step (fine-tuning steps)")
        tinit = max(1, total_step // 10)
        tfinal = max(1, total_step // 5)
        cfg = AdaLoraConfig(init_r=int(r * 1.5) or 1, target_r=r, lora_alpha=alpha, lora_dropout=dropout,
                            target_modules=targets, tinit=tinit, tfinal=tfinal,
                            deltaT=max(1, (total_step - tinit - tfinal) // 10), total_step=total_step)
    else:
        raise ConfigError(f"unknown adapter kind {kind!r}; expected 'lora' or 'adalora'")
    peft_model = get_peft_model(model, cfg)
    n_train = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    log.info("%s on %d layers: %d trainable parameters", kind, len(targets), n_train)
    return peft_model


def base_model(model: Any) -> TrackOnSmall:
    """The TrackOnSmall inside a PeftModel (adapters stay active), or `model` itself."""
    if isinstance(model, TrackOnSmall):
        return model
    inner = model.get_base_model()
    assert isinstance(inner, TrackOnSmall)
    return inner


def lora_step(model: Any, step: int) -> None:
    """AdaLoRA's rank re-allocation after an optimiser step (no-op for plain LoRA)."""
    inner = getattr(model, "base_model", None)
    if inner is not None and hasattr(inner, "update_and_allocate"):
        inner.update_and_allocate(step)


def merge_lora(model: Any) -> TrackOnSmall:
    """Fold the adapters into the base weights and drop peft: a plain TrackOnSmall for export."""
    if isinstance(model, TrackOnSmall):
        return model
    merged = model.merge_and_unload()
    assert isinstance(merged, TrackOnSmall)
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged
