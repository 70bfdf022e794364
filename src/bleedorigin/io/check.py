"""`bleedorigin data check`: list every problem of a benchmark folder (or sparse clip folders)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path


from bleedorigin.errors import InputError
from bleedorigin.io import bench
from bleedorigin.io.clip import read_arrays
from bleedorigin.io.labelme import load_labelme


@dataclass(frozen=True)
class Problem:
    path: str
    kind: str  # short category used for the counts
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_bench(root: str | Path) -> list[Problem]:
    """Every problem found under `root`; an empty list means the folder is usable (a folder
    without clips is a problem: there is nothing to evaluate or train on)."""
    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), "missing", "not a folder")]
    if not (root / bench.MANIFEST).is_file():
        return _check_sparse_folders(root)
    try:
        entries = bench.read_manifest(root)
    except InputError as e:
        return [Problem(str(root / bench.MANIFEST), "manifest", str(e).split(": ", 1)[-1])]
    if not entries:
        return [Problem(str(root / bench.MANIFEST), "empty", "no clips: the manifest lists none")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            clip = bench._clip_from_manifest(root, entry)
        except InputError as e:
            problems.append(Problem(str(root / bench.MANIFEST), "manifest", str(e).split(": ", 1)[-1]))
            continue
        if clip.id in seen:
            problems.append(Problem(str(root / bench.MANIFEST), "manifest", f"clip id {clip.id} appears twice"))
        seen.add(clip.id)
        problems += _check_clip(root, clip)
    clip_dirs = {p.name for p in (root / "clips").iterdir() if p.is_dir()} if (root / "clips").is_dir() else set()
    problems += [Problem(str(root / "clips" / d), "orphan", "clip folder not listed in the manifest")
                 for d in sorted(clip_dirs - seen)]
    return problems


def _check_clip(root: Path, clip: bench.Clip) -> list[Problem]:
    problems = _check_video(clip)
    labels_dir = root / "clips" / clip.id / "labels"
    frames_with_labels = []
    if labels_dir.is_dir():
        for f in sorted(labels_dir.glob("*.json")):
            if not f.stem.isdigit():
                problems.append(Problem(str(f), "label-name", "label files must be named <frame:06d>.json"))
                continue
            frame = int(f.stem)
            frames_with_labels.append(frame)
            try:
                lm = load_labelme(f)
            except InputError as e:
                problems.append(Problem(str(f), "label-json", str(e).split(": ", 1)[-1]))
                continue
            if clip.num_frames and frame >= clip.num_frames:
                problems.append(Problem(str(f), "frame-index", f"frame {frame} beyond the clip's {clip.num_frames} frames"))
            problems += _check_points(str(f), lm.points, clip.width, clip.height)
    problems += _check_label_frames(root, clip, frames_with_labels)
    if clip.gt is not None:
        problems += _check_gt(clip)
    return problems


def _check_video(clip: bench.Clip) -> list[Problem]:
    from bleedorigin.io.video import open_video

    if not Path(clip.video).is_file():
        return [Problem(str(clip.video), "missing", "video file missing")]
    count, size = 0, None
    try:
        with open_video(clip.video) as reader:
            size = (reader.info.width, reader.info.height)
            for _ in reader:
                count += 1
    except InputError as e:
        return [Problem(str(clip.video), "video", str(e))]
    problems = []
    if clip.num_frames and count != clip.num_frames:
        problems.append(Problem(str(clip.video), "frame-count",
                                f"{count} frames decoded, manifest says {clip.num_frames}"))
    if size and clip.width and size != (clip.width, clip.height):
        problems.append(Problem(str(clip.video), "size", f"video is {size[0]}x{size[1]}, manifest says "
                                f"{clip.width}x{clip.height}"))
    return problems


def _check_points(where: str, points, width: int, height: int) -> list[Problem]:
    out = []
    for k, p in enumerate(points):
        if p is not None and width and not (-0.5 <= p[0] <= width - 0.5 and -0.5 <= p[1] <= height - 0.5):
            out.append(Problem(where, "outside", f"point {k} ({p[0]:.1f}, {p[1]:.1f}) outside the "
                               f"{width}x{height} image"))
    return out


def _check_label_frames(root: Path, clip: bench.Clip, frames: list[int]) -> list[Problem]:
    """Which frames the clip kind says are annotated."""
    where = str(root / "clips" / clip.id / "labels")
    n = clip.num_frames
    out = []
    if clip.kind == "detect":
        if clip.onset_frame is None:
            out.append(Problem(where, "onset", "detection clip without an onset frame"))
        elif clip.onset_frame not in frames:
            out.append(Problem(where, "missing-label", f"onset frame {clip.onset_frame} is not annotated"))
        elif frames != [clip.onset_frame]:
            out.append(Problem(where, "frame-index", f"detection clip annotated at {frames}, expected only "
                               f"the onset frame {clip.onset_frame}"))
    elif clip.kind == "track_short":
        if frames != [0, n - 1]:
            out.append(Problem(where, "frame-index", f"short tracking clip annotated at {frames}, expected [0, {n - 1}]"))
    elif clip.kind == "track_long":
        expected = list(range(0, n, bench.LABEL_EVERY))
        if frames != expected:
            missing = sorted(set(expected) - set(frames))
            extra = sorted(set(frames) - set(expected))
            out.append(Problem(where, "frame-index", f"long tracking clip: missing labels at {missing}, "
                               f"unexpected labels at {extra}"))
    elif clip.kind == "negative" and (frames or clip.onset_frame is not None):
        out.append(Problem(where, "negative", "bleeding-free clip has labels or an onset frame"))
    if clip.onset_frame is not None and n and not 0 <= clip.onset_frame < n:
        out.append(Problem(where, "onset", f"onset frame {clip.onset_frame} outside 0..{n - 1}"))
    return out


def _check_gt(clip: bench.Clip) -> list[Problem]:
    path = Path(clip.gt)
    if not path.is_file():
        return [Problem(str(path), "missing", "gt.npz listed in the manifest but missing")]
    try:
        arrays = read_arrays(path, "source_xy", "onset_frame")
        source, onset = arrays["source_xy"], int(arrays["onset_frame"])
    except InputError as e:
        return [Problem(str(path), "gt", str(e).split(": ", 1)[-1])]
    except (KeyError, TypeError, ValueError) as e:
        return [Problem(str(path), "gt", f"unreadable dense truth (no usable {e})")]
    out = []
    if clip.num_frames and len(source) != clip.num_frames:
        out.append(Problem(str(path), "gt", f"source_xy has {len(source)} frames, clip has {clip.num_frames}"))
    if (clip.onset_frame if clip.onset_frame is not None else -1) != onset:
        out.append(Problem(str(path), "gt", f"onset_frame {onset} disagrees with the manifest ({clip.onset_frame})"))
    return out


def _check_sparse_folders(root: Path) -> list[Problem]:
    try:
        clips = bench.discover_clips(root)
    except InputError as e:
        return [Problem(str(root), "clip", str(e))]
    if not clips:
        return [Problem(str(root), "empty", "no manifest.json and no clip folders (video.mp4 + labels.json or "
                                           "meta.json with 'bleeding')")]
    problems = []
    for clip in clips:
        problems += _check_video(clip)
        where = str(Path(clip.video).parent / "labels.json")
        for frame, points in clip.labels.items():
            if clip.num_frames and frame >= clip.num_frames:
                problems.append(Problem(where, "frame-index", f"frame {frame} beyond the clip's {clip.num_frames} frames"))
            problems += _check_points(f"{where} frame {frame}", points, clip.width, clip.height)
    return problems


def summarize(problems: list[Problem]) -> str:
    """Human-readable listing: every problem, then counts per category and per file."""
    if not problems:
        return "no problems found"
    lines = [str(p) for p in problems]
    counts = Counter(p.kind for p in problems)
    files = len({p.path for p in problems})
    lines.append(f"{len(problems)} problem(s) in {files} file(s): "
                 + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)

