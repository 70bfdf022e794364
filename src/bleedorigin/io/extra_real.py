"""Extra real clips from public GitHub repositories, staged as clip folders for onset checks
(`bleedorigin data stage-extra --repos DIR --out DIR`, docs/data-extra.md).

DIR holds a git copy of every source repository, named `<owner>+<name>` (a clone with its full
history, a bare mirror, or a folder with a `repo/` git directory inside), e.g.
`git clone https://github.com/SzuPc/ESD_BleedOrigin DIR/SzuPc+ESD_BleedOrigin`. Files are read
by blob id, so older files that a repository has since deleted or replaced are found too.

Each clip becomes OUT/<category>/<name>/video.mp4 with a meta.json (origin, blob, licence note,
fps, size, frames, `bleeding` and `bleeding_from_frame`, and the processing applied); clips whose
bleeding status cannot be told get no `bleeding` key, so evaluation skips them. Processing:
- copy: the source mp4, byte for byte;
- crop: one panel of a project-page figure video cut out, exact repeats of the previous frame
  dropped (the page video repeats most frames), re-encoded;
- deoverlay: the on-screen label box blacked out, the flashing alarm border cropped away and the
  green tracker marker filled by inpainting (cv2 Telea) in every frame, re-encoded.
Clips marked `labels="marker"` (the deployment video) also get the centre of the marker that the
authors' deployed system drew, on every frame where it is drawn, as `labels_dense.json` and
`labels.json` (the shared ESD clips' format, pixels of the staged frame): another system's point,
not ground truth.
The clips are for local evaluation only: none of the sources states a licence for its videos.
"""
from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.video import VideoWriter, open_video, probe_video
from bleedorigin.utils.jsonio import write_json_atomic

ESD = "SzuPc/ESD_BleedOrigin"
ENDONERF = "med-air/EndoNeRF"
DEVCLOUD = "jlee17/iot-devcloud"
NO_LICENCE = "none stated for the videos; research use only, do not redistribute"
ENDOCONTROLMAG = ("EndoControlMag (Wang et al., CUHK) project-page clip, kept in the history of the BleedOrigin "
                  "page repository; output of x8 vascular motion magnification, so small motions are amplified")
ENDONERF_NOTE = ("EndoNeRF (Wang et al., MICCAI 2022) project page: the 'Reference' panel (the real "
                 "da Vinci prostatectomy input video) cut out of the result figure video")

# name, category, repo, commit, path, blob, bleeding_from_frame (None = bleeding-free), processing, note
CLIPS = [
    dict(name="lap_cholecystectomy_calot", category="negative_laparoscopic", repo=ESD,
         commit="c18a2450fce122c45381222702feb8b1165f0ca4",
         path="static/工具移动牵拉组织_x8_update_4_track_math.mp4",
         blob="67aa95271d6a5c76849d7202e2f648971ce2b20b",
         bleeding_from_frame=None, process="copy",
         note=ENDOCONTROLMAG + "; laparoscopic cholecystectomy, dark-red liver, gallbladder, hook"),
    dict(name="robotic_prostatectomy_ui", category="negative_robotic", repo=ESD,
         commit="c076ca9cc4a8acd8483c45fd7a53eae78a54cb48",
         path="static/easy/Prostatectomy/正常_x8_mag_static.mp4", blob="1745aac34a91abee9c401c810a4883665d2c2282",
         bleeding_from_frame=None, process="copy",
         note=ENDOCONTROLMAG + "; robotic prostatectomy with the da Vinci on-screen interface"),
    dict(name="robotic_endovis17_suturing", category="negative_robotic", repo=DEVCLOUD,
         commit="7c8754856b301da6eb4e99aa593efc1a6e43c968",
         path="python/developer_samples/surgery-segmentation-python/data/short_source.mp4",
         blob="ef81adba0cda6e2b4755ba8909013eebc9fe2f16", bleeding_from_frame=None, process="copy",
         note=("Intel IoT DevCloud robotic-surgery demo input: MICCAI EndoVis 2017 robotic instrument frames "
               "(da Vinci Xi, porcine; sampled at 2 Hz in the challenge) played at 10 fps, so frames jump")),
] + [
    dict(name=f"robotic_endonerf_{scene}", category="negative_robotic", repo=ENDONERF,
         commit="ee8b3dd4b7060ebf19cecf2f1eb157a6c1815083", path=f"images/{clip}.mp4", blob=blob,
         bleeding_from_frame=None, process="crop", crop=(1358, 276, 508, 406), note=ENDONERF_NOTE + f" ({scene})")
    for scene, clip, blob in (("traction", "clip1", "19ff02d0e17aed8901981aa24d5005224978a3c4"),
                              ("pulling_fascia", "clip2", "6fafd83c1835e34096f9749da479a240d3672dc5"),
                              ("pushing_tissues", "clip3", "c55f81bffc3c27e808c45d9ee0d110998579cc02"),
                              ("pulling_tissues", "clip4", "c8e486c0135f32fd3937e79adf2e8cfc42c668dc"),
                              ("cutting_twice", "clip5", "3df917c6da7210802883e1263f1731cd4f30bf00"))
] + [
    dict(name=f"lap_hysterectomy_{clip}", category="unscored_laparoscopic", repo="AutoLaparo/AutoLaparo.github.io",
         commit="4320e7eaef99fc5abec9afe9e7b3df6aa8309562", path=f"files/{path}", blob=blob,
         bleeding_from_frame=None, unscored=True, process="copy",
         note=("AutoLaparo (MICCAI 2022) project page: laparoscopic hysterectomy, camera-motion example "
               f"'{clip}'; blood-stained tissue, instrument jaws and a dark pool of blood are in view, "
               "but no bleeding event can be told from the video, so it carries no bleeding status"))
    for clip, path, blob in (("up", "Up-1_2.mp4", "a5c686e34544a1d647ed69e1f48a7beebbc10ef9"),
                             ("zoomin", "Zoomin_2.mp4", "e04ff0ef413e8585ef18ed60315015212f0bc61d"))
] + [
    dict(name="esd_deployment_1", category="positive_esd", repo=ESD,
         commit="c9b11225c378fd77951322b4fe052cc272d3d5a8", path="static/deployment_video/1.mp4",
         blob="5e5638a9b9e5ea41edf7d8126cc1e038ddbaff94", bleeding_from_frame=456, process="deoverlay",
         labels="marker",
         note=("BleedOrigin page 'deployment' video (an early, heavily compressed version; the current one is "
               "larger): real ESD, the authors' system switches its label from non-bleeding to bleeding at "
               "frame 456 and then draws its marker; bleeding_from_frame is that switch (a small red point "
               "at the dissection site is visible from about frame 440)")),
]

MARKER_LABELS = ("labels_dense.json: {frame: [[x, y]]} on every frame where the marker is drawn (frames without it "
                 "left out); labels.json: the first frame of each segment and every 30th after it")
MARKER_ORIGIN = ("centre of the marker (green disk) drawn by the authors' deployed system, extracted by colour "
                 "before inpainting; that system's prediction, not manual ground truth")
COORDINATES = "pixels of the staged frame (border cropped), x right, y down, origin at the centre of the top-left pixel"

DUPLICATE_DIFF = 0.5  # mean |diff| below this = a repeated frame of the page video
LABEL_BOX = (0, 0, 276, 72)  # x, y, w, h of the on-screen label in the deployment video
BORDER = 16  # px of the alarm border flashed around the deployment video
# The deployment video's marker: a semi-transparent green disk (about 84 px across in the 830x720
# frame) with a bright green centre dot and a thin green trail. Set on that video's frames 0-714:
MARKER_GREEN = 12  # green excess (G - max(R, B)) that the disk adds over tissue
MARKER_MIN_RADIUS = 20  # px: the disk holds a circle of radius 28-46; colour fringes of compression reach 30
MARKER_DOT = 15  # px: window over which the centre dot's green excess is averaged
MARKER_MIN_DOT = 85  # that average peaks at >= 104 inside every drawn disk, at <= 69 in frames without one
LABEL_EVERY = 30  # sparse labels: a segment's first frame and every 30th after it (the shared clips' step)


def _git_dir(repos: Path, repo: str) -> Path:
    base = repos / repo.replace("/", "+")
    for cand in (base / "repo", base):
        if cand.is_dir():
            return cand
    raise InputError(f"{base}: no git copy of {repo} (clone it there first)")


def _read_blob(repos: Path, spec: dict) -> bytes:
    git = _git_dir(repos, spec["repo"])
    out = subprocess.run(["git", "-C", str(git), "cat-file", "blob", spec["blob"]], capture_output=True)
    if out.returncode != 0:
        raise InputError(f"{spec['repo']}: blob {spec['blob']} ({spec['path']}) missing: {out.stderr.decode().strip()}")
    return out.stdout


def _frames(path: Path) -> tuple[list[np.ndarray], float]:
    with open_video(str(path)) as reader:
        fps = reader.info.fps or 30.0
        return [item.image for item in reader], fps


def _write(frames: list[np.ndarray], fps: float, out: Path) -> None:
    h, w = frames[0].shape[:2]
    with VideoWriter(out, fps, (w, h), crf=12) as writer:
        for f in frames:
            writer.write(f)


def crop_dedup(frames: list[np.ndarray], fps: float, box: tuple[int, int, int, int]) -> tuple[list[np.ndarray], float]:
    x, y, w, h = box
    kept = [frames[0][y:y + h, x:x + w]]
    for f in frames[1:]:
        c = f[y:y + h, x:x + w]
        if np.abs(c.astype(np.int16) - kept[-1].astype(np.int16)).mean() >= DUPLICATE_DIFF:
            kept.append(c)
    return kept, fps * len(kept) / len(frames)


def green_excess(frame: np.ndarray) -> np.ndarray:
    """G - max(R, B) per pixel: what the deployed system's green overlay adds over tissue."""
    rgb = frame.astype(np.int16)
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


def deoverlay(frames: list[np.ndarray]) -> list[np.ndarray]:
    x, y, w, h = LABEL_BOX
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    out = []
    for f in frames:
        f = f.copy()
        f[y:y + h, x:x + w] = 0
        mask = cv2.dilate((green_excess(f) > 10).astype(np.uint8), kernel)
        if mask.any():
            f = cv2.inpaint(f, mask, 5, cv2.INPAINT_TELEA)
        out.append(f[BORDER:-BORDER, BORDER:-BORDER])
    return out


def marker_centre(frame: np.ndarray) -> tuple[float, float] | None:
    """Centre (x, y) of the deployed system's marker in a raw frame of the deployment video, or None
    when none is drawn. The centre is that of the largest circle inside the green area (holes
    filled), so the trail and colour fringes touching the disk do not pull it; a disk counts only
    with its bright centre dot inside, which compression fringes lack."""
    g = green_excess(frame)
    x, y, w, h = LABEL_BOX
    g[y:y + h, x:x + w] = 0  # the on-screen label is green before the alarm
    mask = cv2.morphologyEx((g > MARKER_GREEN).astype(np.uint8), cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(mask, contours, -1, 1, -1)  # fill the dark tissue seen through the disk
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    radius = float(dist.max())
    if radius < MARKER_MIN_RADIUS:
        return None
    ys, xs = np.nonzero(dist >= radius - 1.0)  # the plateau of centres, one or a few pixels wide
    cx, cy = float(xs.mean()), float(ys.mean())
    yy, xx = np.ogrid[:g.shape[0], :g.shape[1]]
    dot = cv2.blur(g.astype(np.float32), (MARKER_DOT, MARKER_DOT))[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2]
    return (cx, cy) if dot.max() >= MARKER_MIN_DOT else None


def marker_labels(frames: Sequence[np.ndarray], offset: int = BORDER) -> tuple[dict, dict]:
    """(dense, sparse) labels {frame: [[x, y]]} of the marker centre in frames cropped by `offset`
    px on each side; frames without the marker are left out. Sparse: each run of marked frames
    (segment) contributes its first frame and every LABEL_EVERY-th after it."""
    dense: dict[str, list[list[float]]] = {}
    sparse: dict[str, list[list[float]]] = {}
    segment_start = None
    for i, frame in enumerate(frames):
        c = marker_centre(frame)
        if c is None:
            segment_start = None
            continue
        segment_start = i if segment_start is None else segment_start
        dense[str(i)] = [[round(c[0] - offset, 2), round(c[1] - offset, 2)]]
        if (i - segment_start) % LABEL_EVERY == 0:
            sparse[str(i)] = dense[str(i)]
    return dense, sparse


def segments(dense: dict) -> list[list[int]]:
    """[first, last] frame of each run of consecutive labelled frames."""
    out: list[list[int]] = []
    for f in sorted(map(int, dense)):
        if out and f == out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out


def stage(spec: dict, repos: Path, out_root: Path) -> Path:
    folder = out_root / spec["category"] / spec["name"]
    folder.mkdir(parents=True, exist_ok=True)
    data = _read_blob(repos, spec)
    video = folder / "video.mp4"
    if spec["process"] == "copy":
        tmp = folder / ".video.partial.mp4"
        tmp.write_bytes(data)
        tmp.replace(video)
        kept_fps = None
    else:
        with tempfile.TemporaryDirectory() as td:
            src = Path(td) / "source.mp4"
            src.write_bytes(data)
            frames, fps = _frames(src)
        if spec["process"] == "crop":
            frames, kept_fps = crop_dedup(frames, fps, spec["crop"])
        elif spec["process"] == "deoverlay":
            if spec.get("labels") == "marker":  # read before the marker is inpainted
                dense, sparse = marker_labels(frames)
            frames, kept_fps = deoverlay(frames), fps
        else:
            raise InputError(f"unknown processing {spec['process']!r}")
        _write(frames, kept_fps, video)
    info = probe_video(video)
    b = spec["bleeding_from_frame"]
    meta = {"source": f"github.com/{spec['repo']}", "commit": spec["commit"], "path": spec["path"],
            "blob": spec["blob"], "licence": NO_LICENCE, "category": spec["category"], "note": spec["note"],
            "processing": spec["process"] + (f" {list(spec['crop'])}" if "crop" in spec else ""),
            "fps": round(float(info.fps), 3), "size": [info.width, info.height],
            "frames": info.frames}
    if not spec.get("unscored"):  # without `bleeding` the folder is not an evaluation clip
        meta.update(bleeding=b is not None, bleeding_from_frame=b)
    if spec.get("labels") == "marker":
        meta.update(labels=MARKER_LABELS, label_origin=MARKER_ORIGIN, coordinates=COORDINATES,
                    label_frames=len(dense), segments=segments(dense))
        write_json_atomic(folder / "labels_dense.json", dense, indent=None)
        write_json_atomic(folder / "labels.json", sparse, indent=None)
    write_json_atomic(folder / "meta.json", meta)
    return folder


def stage_all(repos: str | Path, out: str | Path, only: Sequence[str] = ()) -> Iterator[Path]:
    """Stage every clip of CLIPS (or those named in `only`), yielding each folder as it is written."""
    unknown = set(only) - {spec["name"] for spec in CLIPS}
    if unknown:
        raise InputError(f"unknown clip name(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(spec['name'] for spec in CLIPS)}")
    for spec in CLIPS:
        if not only or spec["name"] in only:
            yield stage(spec, Path(repos), Path(out))
