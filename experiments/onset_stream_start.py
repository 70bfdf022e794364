"""How long the stream-start window of the bleeding-present check waits for blood to spread
(docs/onset.md, "A longer stream-start window"): the detector frame by frame on the shared ESD
clips streamed from frame 0, 20, 40, 60 and reversed, on bleeding-free real video (with
`esd_deployment_1` before its onset, from several frames), and on BleedSim validation folders.

    python experiments/onset_stream_start.py --open-frames 0 --out open0.json \
        --negatives val_negative --onsets val_detect --onsets simval_full
"""
from __future__ import annotations

import argparse
import glob
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bleedorigin.io.video import read_frames

SHARED = "../shared/data"
DEPLOYMENT = "data/extra_real/positive_esd/esd_deployment_1"
DEPLOYMENT_ONSET = 456  # its stated onset (meta.json `bleeding_from_frame`)
WAYS = ("plain", "from20", "from40", "from60", "reversed")  # also "twiceN": every frame twice from N (a 50 fps
# stream of the 25 fps clip's motion), "halfN": every second frame from N


def runs(ways: list[str], negatives: list[str], onsets: list[str]) -> list[tuple]:
    """(kind, video, way, true onset) of every run."""
    out = [("shared", f"{c}/video.mp4", w, 0) for c in sorted(glob.glob(f"{SHARED}/esd_clips/*")) for w in ways]
    real_free = sorted(glob.glob("data/extra_real/negative_*/*")) + sorted(glob.glob(f"{SHARED}/vlsurgpt/*"))
    out += [("real_free", f"{c}/video.mp4", "plain", None) for c in real_free]
    out += [("real_free", f"{DEPLOYMENT}/video.mp4", w, None) for w in ("cut0", "cut100", "cut200", "cut300", "cutrev")]
    out.append(("deployment", f"{DEPLOYMENT}/video.mp4", "plain", DEPLOYMENT_ONSET))
    out += [("sim_free", f"{c}/video.mp4", "plain", None) for d in negatives for c in sorted(glob.glob(f"{d}/clips/*"))]
    out += [("sim_onset", f"{c}/video.mp4", "plain", int(np.load(f"{c}/gt.npz")["onset_frame"]))
            for d in onsets for c in sorted(glob.glob(f"{d}/clips/*"))]
    return out


def frames_of(video: str, way: str) -> np.ndarray:
    v = read_frames(video)
    if way == "plain":
        return v
    if way == "reversed":
        return v[::-1]
    if way.startswith("from"):
        return v[int(way[4:]):]
    if way.startswith("twice"):
        return np.repeat(v[int(way[5:] or 0):], 2, axis=0)
    if way.startswith("half"):
        return v[int(way[4:] or 0)::2]
    before = v[:DEPLOYMENT_ONSET]  # "cutN": the bleeding-free part from frame N, "cutrev": reversed
    return before[::-1] if way == "cutrev" else before[int(way[3:]):]


def one(job: tuple, open_frames: int) -> dict:
    """The shipped onset stage (its pipeline options), fed frames at the model size as `detect` feeds them."""
    from bleedorigin import MODEL_SIZE
    from bleedorigin.io.video import FrameMapper
    from bleedorigin.models.loading import load_stage
    from bleedorigin.utils.threads import set_threads
    set_threads(1)
    kind, video, way, truth = job
    det = load_stage("onset", None, "cpu")
    det.presence.open_frames = open_frames
    det.reset()
    frames = frames_of(video, way)
    mapper = FrameMapper((frames.shape[2], frames.shape[1]), MODEL_SIZE)
    raised = onset = cue = None
    for i, frame in enumerate(frames):
        onset = det.step(mapper.resize(frame)).onset_frame
        if onset is not None:
            raised, cue = i, det.cue
            break
    return dict(kind=kind, clip=Path(video).parent.name, way=way, truth=truth, raised=raised, onset=onset, cue=cue)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open-frames", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--negatives", action="append", default=[], help="BleedSim folder of bleeding-free clips")
    ap.add_argument("--onsets", action="append", default=[], help="BleedSim folder of clips with an onset")
    ap.add_argument("--ways", default=",".join(WAYS), help="how the shared clips are streamed, comma list")
    ap.add_argument("--real-free", action=argparse.BooleanOptionalAction, default=True,
                    help="also the bleeding-free real video and esd_deployment_1")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    jobs = [j for j in runs(a.ways.split(","), a.negatives, a.onsets)
            if a.real_free or j[0] not in ("real_free", "deployment")]
    with ProcessPoolExecutor(a.workers) as ex:
        res = list(ex.map(one, jobs, [a.open_frames] * len(jobs)))
    Path(a.out).write_text(json.dumps(res, indent=1))
    shared = [r for r in res if r["kind"] == "shared"]
    flagged = sum(r["onset"] is not None and r["onset"] <= 30 for r in shared)
    alarms = [f"{r['clip']} ({r['way']}, {r['cue']} at {r['raised']})" for r in res
              if r["kind"] in ("real_free", "sim_free") and r["raised"] is not None]
    sim = [r for r in res if r["kind"] == "sim_onset"]
    within = sum(r["onset"] is not None and abs(r["onset"] - r["truth"]) <= 8 for r in sim)
    print(f"shared ESD runs flagged (onset 0..30): {flagged} / {len(shared)}")
    for r in shared:
        if r["onset"] is None or r["onset"] > 30:
            print(f"  not flagged: {r['clip']} {r['way']}: raised {r['raised']}, onset {r['onset']}, {r['cue']}")
    print(f"alarms on bleeding-free video: {len(alarms)} {alarms}")
    print(f"BleedSim onsets within ±8: {within} / {len(sim)}")
    for r in res:
        if r["kind"] == "deployment":
            print(f"esd_deployment_1: onset {r['onset']}, raised {r['raised']} ({r['cue']})")


if __name__ == "__main__":
    main()
