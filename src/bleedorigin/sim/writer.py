"""BleedSim clips -> benchmark folder (docs/dev-contracts.md): mp4 + LabelMe + manifest + gt.npz."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bleedorigin.errors import InputError, note_kept
from bleedorigin.sim.appearance import Appearance
from bleedorigin.sim.generator import SimClip, generate_clip
from bleedorigin.sim.scenarios import KINDS
from bleedorigin.utils.files import atomic_open
from bleedorigin.utils.progress import track as progress_track

log = logging.getLogger(__name__)

LABEL_EVERY = 30
BENCH_KINDS = KINDS + ("track",)  # "track" alternates short and long tracking clips
SEED_STRIDE = 100_000             # clip i of a run with seed S uses seed S * SEED_STRIDE + i


def label_frames(clip: SimClip) -> list[int]:
    """Annotated frames: detection clips only the onset frame (120); tracking clips every 30
    frames from 0 and the last frame; full videos every 30 frames from the onset; negatives none."""
    n = clip.num_frames
    if clip.onset_frame is None:
        return []
    if clip.kind == "detect":
        return [clip.onset_frame]
    start = clip.onset_frame if clip.kind == "full" else 0
    frames = list(range(start, n, LABEL_EVERY))
    if clip.kind != "full" and frames[-1] != n - 1:
        frames.append(n - 1)
    return frames


def clip_labels(clip: SimClip) -> dict[int, list[tuple[float, float]]]:
    """The bleeding source at each annotated frame (also when blood hides it, as annotators
    mark the source they know is there; visibility is in gt.npz)."""
    return {f: [(float(clip.source_xy[f, 0]), float(clip.source_xy[f, 1]))] for f in label_frames(clip)}


def save_gt(path: Path, clip: SimClip) -> None:
    """gt.npz of the contract, written atomically; blood_mask bit-packed along the last axis."""
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(
            fh, onset_frame=np.int64(-1 if clip.onset_frame is None else clip.onset_frame),
            source_xy=clip.source_xy.astype(np.float32), source_visible=clip.source_visible.astype(bool),
            tracks_xy=clip.tracks_xy.astype(np.float32), tracks_visible=clip.tracks_visible.astype(bool),
            blood_mask_packed=np.packbits(clip.blood_mask, axis=-1),
            mask_shape=np.array(clip.blood_mask.shape, np.int64),
            scenario=np.str_(clip.scenario), site=np.str_(clip.site))


def load_gt(path: Path) -> dict[str, Any]:
    """gt.npz -> dict with `blood_mask` unpacked and `onset_frame` as int or None."""
    try:
        z = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read ground truth {path}: {exc}") from None
    with z:
        out = {k: z[k] for k in z.files}
    shape = tuple(int(v) for v in out.pop("mask_shape"))
    out["blood_mask"] = np.unpackbits(out.pop("blood_mask_packed"), axis=-1, count=shape[-1]).astype(bool)
    onset = int(out["onset_frame"])
    out["onset_frame"] = None if onset < 0 else onset
    out["scenario"], out["site"] = str(out["scenario"]), str(out["site"])
    return out


def clip_kind(kind: str, index: int) -> str:
    if kind not in BENCH_KINDS:
        raise InputError(f"unknown kind {kind!r}; expected one of {', '.join(BENCH_KINDS)}")
    if kind == "track":
        return "track_short" if index % 2 == 0 else "track_long"
    return kind


def write_bench(out_dir: str | Path, n: int, seed: int, kind: str, size: tuple[int, int] = (512, 384),
                progress: bool = True, appearance: Appearance | None = None, local_motion: bool = False,
                scenario: str | None = None) -> list:
    """Generate `n` clips and write them as a benchmark folder; returns the io.bench Clips.
    `scenario` renders every clip in that scenario (e.g. a hard case of sim.scenarios.HARD_CASES)
    instead of one drawn at random;
    `appearance` (sim.appearance.Appearance) adds BleedSim v2 appearance features;
    `local_motion` adds local tissue deformation and instrument pulls (sim/local_motion.py)."""
    from bleedorigin.io.bench import write_manifest

    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    clips: list = []
    try:
        _write_clips(root, n, seed, kind, size, scenario, appearance, local_motion, progress, clips)
    except KeyboardInterrupt as e:  # SIGINT, SIGTERM, SIGHUP: the finished clips stay usable
        if clips:
            note_kept(e, write_manifest(root, clips))
        raise
    write_manifest(root, clips)
    return clips


def _write_clips(root: Path, n: int, seed: int, kind: str, size: tuple[int, int], scenario: Any,
                 appearance: Any, local_motion: bool, progress: bool, clips: list) -> None:
    """Render and store clip after clip, appending each to `clips` once it is complete."""
    from bleedorigin.io.bench import Clip, write_bench_clip

    for i in progress_track(range(n), total=n, description="BleedSim", enabled=progress, unit="clip"):
        k = clip_kind(kind, i)
        clip_seed = int(seed) * SEED_STRIDE + i
        sim = generate_clip(k, clip_seed, size=size, scenario=scenario, appearance=appearance,
                            local_motion=local_motion)
        cid = f"sim_{k}_{clip_seed:09d}"
        clip_dir = root / "clips" / cid
        gt_path = clip_dir / "gt.npz"
        save_gt(gt_path, sim)
        meta = Clip(id=cid, video=clip_dir / "video.mp4", kind=k, patient=sim.patient, site=sim.site,
                    scenario=sim.scenario, num_frames=sim.num_frames, fps=sim.fps, width=size[0],
                    height=size[1], onset_frame=sim.onset_frame, labels=clip_labels(sim), gt=gt_path,
                    split=None)
        clips.append(write_bench_clip(root, meta, sim.frames) or meta)
        log.debug("wrote %s (%d frames, %s, %s)", cid, sim.num_frames, sim.scenario, sim.site)
