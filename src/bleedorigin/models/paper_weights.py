"""The released checkpoints the paper presets build on: where to get them, and checking a file.

Nothing here is shipped: the files are the authors' releases, fetched by the user (or by
`bleedorigin weights --download`) into the paper weights folder ($BLEEDORIGIN_PAPER_WEIGHTS, else
~/.cache/bleedorigin/paper). Each file is judged against the key layout recorded from its
reference implementation (assets/layouts, see tools/make_parity_fixtures.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.models.layout import compare_layout, load_layout, read_state_dict
from bleedorigin.io.checkpoint import sha256_file


@dataclass(frozen=True)
class WeightFile:
    preset: str          # registry name that uses the file
    filename: str        # file name in the paper weights folder (and on the hub)
    role: str
    layout: str          # assets/layouts/<layout>.json
    page: str            # official page to get it from
    license: str
    repo_id: str = ""    # Hugging Face repo for --download ("" = not on the hub)
    sha256: str = ""     # published digest, when the publisher gives one
    optional: bool = False


CATALOG: tuple[WeightFile, ...] = (
    WeightFile("track_paper", "track_on_checkpoint.pt", "Track-On v1 (ICLR 2025) tracker, DINOv2 ViT-S/14 included",
               "trackon_v1", "https://github.com/gorkaydemir/track_on (branch track-on)", "MIT",
               repo_id="gaydemir/track_on"),
    WeightFile("track_paper", "dinov2_vits14_pretrain.pth", "DINOv2 ViT-S/14 only (when training the adapter "
               "and heads from scratch)", "dinov2_vits14_hub",
               "https://github.com/facebookresearch/dinov2 (dl.fbaipublicfiles.com/dinov2/dinov2_vits14/)",
               "Apache-2.0", optional=True),
    WeightFile("source_paper", "model.safetensors", "PE-Spatial-S16-512 encoder, timm layout",
               "pe_spatial_small", "https://huggingface.co/timm/vit_pe_spatial_small_patch16_512.fb "
               "(original: https://huggingface.co/facebook/PE-Spatial-S16-512)", "Apache-2.0",
               repo_id="timm/vit_pe_spatial_small_patch16_512.fb"),
)

HF_LAYOUTS = ("dinov2_small_hf", "pe_spatial_large")  # accepted by --check beside the catalogue


def paper_dir() -> Path:
    return Path(os.environ.get("BLEEDORIGIN_PAPER_WEIGHTS") or Path.home() / ".cache" / "bleedorigin" / "paper")


def local_path(entry: WeightFile) -> Path:
    """Where `bleedorigin weights --download` puts the file: <paper dir>/<preset>/<filename>."""
    return paper_dir() / entry.preset / entry.filename


def find_local(preset: str, layout: str | None = None) -> Path | None:
    """The first catalogue file of `preset` (optionally of one layout) present on disk."""
    for e in CATALOG:
        if e.preset == preset and (layout is None or e.layout == layout) and local_path(e).is_file():
            return local_path(e)
    return None


@dataclass
class CheckResult:
    path: Path
    size: int
    sha256: str
    layout: str              # best-matching layout
    missing: list[str]
    unexpected: list[str]
    shape: list[str]
    n_keys: int
    expected_sha256: str = ""

    @property
    def ok(self) -> bool:
        digest_ok = not self.expected_sha256 or self.expected_sha256 == self.sha256
        return not (self.missing or self.unexpected or self.shape) and digest_ok

    def verdict(self) -> str:
        if self.ok:
            return f"OK: {self.n_keys} tensors match the {self.layout} layout"
        parts = []
        if self.expected_sha256 and self.expected_sha256 != self.sha256:
            parts.append("sha256 differs from the published digest")
        for what, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("wrong shape", self.shape)):
            if keys:
                parts.append(f"{len(keys)} {what} (" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + ")")
        return f"MISMATCH against the {self.layout} layout: " + "; ".join(parts)


def check_file(path: str | Path, layout: str | None = None) -> CheckResult:
    """Judge a local checkpoint against `layout`, or against the best-matching known layout."""
    path = Path(path)
    state = read_state_dict(path)  # InputError when missing or unreadable
    names = [layout] if layout else [e.layout for e in CATALOG] + list(HF_LAYOUTS)
    best = None
    for name in names:
        try:
            keys = load_layout(name)["keys"]
        except FileNotFoundError:
            raise InputError(f"unknown layout {name!r}") from None
        diff = compare_layout(state, keys)
        score = sum(len(v) for v in diff.values())
        if best is None or score < best[0]:
            best = (score, name, diff)
    assert best is not None
    _, name, diff = best
    digest = next((e.sha256 for e in CATALOG if e.layout == name and e.filename == path.name), "")
    return CheckResult(path, path.stat().st_size, sha256_file(path), name, diff["missing"], diff["unexpected"],
                       diff["shape"], len(state), digest)


def expected_bytes(layout: str) -> int:
    """fp32 bytes of a layout's tensors (a released file is about this size, or half in fp16)."""
    doc = load_layout(layout)
    return int(doc.get("tensor_bytes_fp32") or sum(int(np.prod(s)) * 4 for s in doc["keys"].values()))


def download(entry: WeightFile) -> Path:
    """Fetch `entry` from the Hugging Face hub (honours HF_ENDPOINT) into the paper weights folder."""
    if not entry.repo_id:
        raise InputError(f"{entry.filename} is not on the Hugging Face hub; get it from {entry.page}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise InputError("--download needs huggingface_hub (pip install huggingface_hub)") from None
    dest = local_path(entry).parent
    dest.mkdir(parents=True, exist_ok=True)
    try:
        got = hf_hub_download(entry.repo_id, entry.filename, local_dir=str(dest),
                              endpoint=os.environ.get("HF_ENDPOINT") or None)
    except Exception as e:  # offline, 404, refused: one line
        raise InputError(f"download of {entry.repo_id}/{entry.filename} failed ({type(e).__name__}: {e})") from None
    return Path(got)


def describe(preset: str | None = None) -> list[str]:
    """Human-readable lines: each file of each paper preset, where to get it, and whether it is here."""
    lines = [f"paper weights folder: {paper_dir()}"]
    for e in CATALOG:
        if preset and e.preset != preset:
            continue
        here = local_path(e)
        status = f"present ({here})" if here.is_file() else "absent"
        size_mb = expected_bytes(e.layout) / 1e6
        lines += [f"{e.preset}: {e.filename}{' (optional)' if e.optional else ''} - {e.role}",
                  f"  get it: {e.page}  [{e.license}]",
                  f"  hub: {e.repo_id or 'not on the hub (download by hand)'}; tensors ~{size_mb:.0f} MB in fp32; "
                  f"{status}"]
    return lines
