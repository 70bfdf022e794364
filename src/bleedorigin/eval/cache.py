"""Per-clip result cache, so an interrupted `evaluate` resumes where it stopped.

Layout: `OUT/cache/<stage>/<model-key>/<clip-id>.json`, one JSON record per (stage, model,
clip), written atomically. A record is reused only when its `signature` (protocol version,
model key, the source of a registry model's defining module, and a fingerprint of the clip's
video and labels) matches, so editing a clip's labels, a baseline's code or retraining a
checkpoint into the same folder re-evaluates instead of serving stale numbers.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
from pathlib import Path
from typing import Any

from bleedorigin.models import registry
from bleedorigin.utils.jsonio import write_json_atomic

log = logging.getLogger(__name__)

# Bump when the protocol changes what a record means; old cache entries are then recomputed.
PROTOCOL_VERSION = 3  # 2: track records carry hidden frames, dense visibility (eval.tap); 3: e2e scores every episode frame

_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:10]


def model_key(name_or_path: str) -> str:
    """A file-system-safe key for a model: its registry name, or for a checkpoint folder
    `<folder>-<hash of config.json and weights>` so two checkpoints never share a cache."""
    path = Path(name_or_path)
    # a registered name means the preset, never a folder of that name in the working directory
    if name_or_path in registry.list_models() or not path.is_dir():
        return _SAFE.sub("_", name_or_path)
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and (p.name == "config.json" or p.suffix in (".safetensors", ".pt", ".pth")))
    digest = _digest([p.name.encode() + p.read_bytes() for p in files])
    return f"{_SAFE.sub('_', path.resolve().name)}-{digest}"


@functools.lru_cache(maxsize=None)
def code_fingerprint(key: str) -> str:
    """For a registry model, a hash of the module that defines it, so that editing a baseline
    invalidates its cached records ('' for checkpoint folders: their key hashes the weights);
    for an end-to-end key ("onset+source+track"), the hash of its three models' fingerprints, so
    that editing the tracker also invalidates the pipelines that ran it."""
    if "+" in key:
        return _digest([code_fingerprint(part).encode() for part in key.split("+")])
    if key not in registry.list_models():
        return ""
    source = inspect.getsourcefile(registry._REGISTRY[key])
    return _digest([Path(source).read_bytes()]) if source else ""


def clip_signature(clip: Any) -> str:
    """Fingerprint of what a clip's result depends on: video bytes (size), truth, frame count."""
    video = Path(clip.video)
    size = video.stat().st_size if video.is_file() else -1
    gt = Path(clip.gt) if getattr(clip, "gt", None) else None
    gt_size = gt.stat().st_size if gt is not None and gt.is_file() else -1
    dense = Path(clip.dense_labels) if getattr(clip, "dense_labels", None) else None
    extra = [dense.stat().st_size if dense.is_file() else -1] if dense is not None else []
    labels = {str(k): v for k, v in sorted(clip.labels.items())}
    blob = json.dumps([clip.id, clip.kind, clip.num_frames, clip.width, clip.height,
                       clip.onset_frame, labels, size, gt_size, *extra], default=str, sort_keys=True)
    return _digest([blob.encode()])


class ResultCache:
    """JSON records under `root/<stage>/<model-key>/<clip-id>.json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, stage: str, key: str, clip_id: str) -> Path:
        return self.root / stage / key / f"{_SAFE.sub('_', clip_id)}.json"

    @staticmethod
    def signature(key: str, clip: Any, model_id: str = "") -> str:
        """`model_id` is the loaded predictor's id (it carries the weights' checksum), so that
        records of a registry model go stale when its shipped weights change."""
        return f"v{PROTOCOL_VERSION}:{key}:{model_id}:{code_fingerprint(key)}:{clip_signature(clip)}"

    def get(self, stage: str, key: str, clip: Any, model_id: str = "") -> dict[str, Any] | None:
        """The cached record, or None when absent, unreadable or stale."""
        path = self.path(stage, key, clip.id)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("ignoring unreadable cache entry %s", path)
            return None
        if record.get("signature") != self.signature(key, clip, model_id):
            log.info("cache entry %s is stale; recomputing", path)
            return None
        return record

    def put(self, stage: str, key: str, clip: Any, record: dict[str, Any], model_id: str = "") -> dict[str, Any]:
        record = dict(record, signature=self.signature(key, clip, model_id))
        write_json_atomic(self.path(stage, key, clip.id), record, indent=None)
        return record
