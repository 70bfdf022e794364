"""BleedOrigin-Bench layout: clips with a manifest, LabelMe point labels and optional dense truth.

    ROOT/manifest.json                      clip metadata (paths relative to ROOT)
    ROOT/clips/<id>/video.mp4
    ROOT/clips/<id>/labels/<frame:06d>.json LabelMe, one `point` shape per annotated point
    ROOT/clips/<id>/gt.npz                  optional dense truth (BleedSim)

Imported sparse clips may carry dense truth as `labels_dense.json` (a point on every frame).

Clip kinds: `detect` (150 frames, onset at 120, only the onset frame annotated), `track_short`
(31 frames, first and last annotated), `track_long` (31-731 frames, every 30th annotated), `full`
(whole video, onset anywhere), `negative` (no bleeding) and `sparse` (imported clips with sparse
point labels, e.g. VL-SurgPT and the ESD samples).
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
from pathlib import Path

import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.clip import XY, Clip, check_numbers
from bleedorigin.io.importers import import_clip_folder, import_status_clip, is_status_folder
from bleedorigin.io.labelme import load_labelme, save_labelme
from bleedorigin.utils.jsonio import read_json, write_json_atomic

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
KINDS = ("detect", "track_short", "track_long", "full", "negative", "sparse")
SCENARIOS = ("clear_view", "obscured_view", "camera_jitter", "light_reflection", "water_flushing",
             "instrument_interference")
SITES = ("gastric_antrum", "gastric_body", "duodenum", "ascending_colon", "esophagus", "sigmoid_colon",
         "cardia", "lesser_curvature")
DETECT_FRAMES, DETECT_ONSET = 150, 120
LABEL_EVERY = 30
SPLITS = ("train", "val", "test")

def label_path(root: Path, clip_id: str, frame: int) -> Path:
    return Path(root) / "clips" / clip_id / "labels" / f"{frame:06d}.json"


def write_bench_clip(root: str | os.PathLike, clip: Clip, frames_or_video) -> Clip:
    """Store one clip under ROOT/clips/<id>/: the video (frames array (T,H,W,3) RGB is encoded,
    a path is copied) and one LabelMe file per annotated frame. Returns the clip as stored."""
    from bleedorigin.io.video import VideoWriter, probe_video

    root = Path(root)
    clip_dir = root / "clips" / clip.id
    clip_dir.mkdir(parents=True, exist_ok=True)
    video = clip_dir / "video.mp4"
    if isinstance(frames_or_video, (str, os.PathLike)):
        if Path(frames_or_video).resolve() != video.resolve():
            shutil.copyfile(frames_or_video, video)
        info = probe_video(video)
        num_frames, width, height = info.frames or clip.num_frames, info.width, info.height
    else:
        frames = np.asarray(frames_or_video)
        with VideoWriter(video, clip.fps, (frames.shape[2], frames.shape[1]), crf=12) as writer:
            for img in frames:
                writer.write(img)
        num_frames, width, height = len(frames), frames.shape[2], frames.shape[1]
    labels_dir = clip_dir / "labels"
    if labels_dir.is_dir():
        shutil.rmtree(labels_dir)
    for frame, points in sorted(clip.labels.items()):
        save_labelme(label_path(root, clip.id, frame), list(points), (width, height),
                     image_path=f"../video.mp4#frame={frame}")
    return dataclasses.replace(clip, video=video, num_frames=num_frames, width=width, height=height)


def write_manifest(root: str | os.PathLike, clips: list[Clip]) -> Path:
    root = Path(root)
    doc = {"version": MANIFEST_VERSION, "clips": [c.to_manifest(root) for c in clips]}
    return write_json_atomic(root / MANIFEST, doc)


def read_manifest(root: Path) -> list[dict]:
    path = Path(root) / MANIFEST
    doc = read_json(path, missing=f"{root}: no {MANIFEST} (not a benchmark folder)")
    if not isinstance(doc, dict) or not isinstance(doc.get("clips"), list):
        raise InputError(f"{path}: expected an object with a 'clips' list")
    return doc["clips"]


def _clip_from_manifest(root: Path, entry: dict) -> Clip:
    names = {f.name for f in dataclasses.fields(Clip)}
    if not isinstance(entry, dict):
        raise InputError(f"{root / MANIFEST}: bad clip entry {entry!r} (expected an object)")
    check_numbers(entry, f"{root / MANIFEST} clip {entry.get('id', '?')!r}")
    try:
        kw = {k: v for k, v in entry.items() if k in names}
        kw["video"] = root / kw["video"]
        kw["gt"] = root / kw["gt"] if kw.get("gt") else None
        kw["dense_labels"] = root / kw["dense_labels"] if kw.get("dense_labels") else None
        kw["labels"] = {}
        clip = Clip(**kw)
    except (KeyError, TypeError) as e:
        raise InputError(f"{root / MANIFEST}: bad clip entry {entry.get('id', '?')!r} ({e})") from None
    if clip.kind not in KINDS:
        raise InputError(f"{root / MANIFEST}: clip {clip.id} has unknown kind {clip.kind!r}")
    return clip


def load_bench(root: str | os.PathLike, with_labels: bool = True) -> list[Clip]:
    """All clips of a benchmark folder, with their LabelMe labels read back."""
    root = Path(root)
    clips = [_clip_from_manifest(root, e) for e in read_manifest(root)]
    if with_labels:
        for clip in clips:
            clip.labels = read_clip_labels(root, clip.id)
    return clips


def read_clip_labels(root: Path, clip_id: str) -> dict[int, list[XY | None]]:
    labels_dir = Path(root) / "clips" / clip_id / "labels"
    out: dict[int, list[XY | None]] = {}
    if labels_dir.is_dir():
        for f in sorted(labels_dir.glob("*.json")):
            if not f.stem.isdigit():
                raise InputError(f"{f}: label files are named <frame:06d>.json")
            out[int(f.stem)] = load_labelme(f).points
    return out


def split_by_patient(clips: list[Clip], ratios: tuple[int, int, int] = (4, 1, 1), seed: int = 0) -> list[Clip]:
    """Assign train/val/test by patient (no patient in two splits), about `ratios` of the patients
    each, reproducibly for a seed. Returns new Clip objects with `split` set."""
    patients = sorted({c.patient for c in clips})
    random.Random(seed).shuffle(patients)
    total = sum(ratios)
    n_train = round(len(patients) * ratios[0] / total)
    n_val = round(len(patients) * ratios[1] / total)
    if len(patients) >= 3:  # every split gets a patient when there are enough
        n_val = max(1, n_val)
        n_train = min(max(1, n_train), len(patients) - n_val - 1)
    split_of = {}
    for i, p in enumerate(patients):
        split_of[p] = SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_val else SPLITS[2]
    return [dataclasses.replace(c, split=split_of[c.patient]) for c in clips]


def discover_clips(path: str | os.PathLike) -> list[Clip]:
    """Clips under `path`: a benchmark root (manifest.json), an imported sample clip folder
    (video.mp4 + labels.json), a real clip folder with only its bleeding status (video.mp4 +
    meta.json with `bleeding`), or a folder holding any of these (searched two levels deep)."""

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    if (path / MANIFEST).is_file():
        return load_bench(path)
    if (path / "video.mp4").is_file() and (path / "labels.json").is_file():
        return import_clip_folder(path)
    if is_status_folder(path):
        return [import_status_clip(path)]

    def holds_clips(p: Path) -> bool:
        return (p / MANIFEST).is_file() or (p / "labels.json").is_file() or is_status_folder(p)

    clips: list[Clip] = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        if holds_clips(sub):
            clips.extend(discover_clips(sub))
        else:
            for subsub in sorted(p for p in sub.iterdir() if p.is_dir()):
                if holds_clips(subsub):
                    clips.extend(discover_clips(subsub))
    return clips
