"""How often the bleeding-present check would raise if it were armed anywhere in a video.

Arms `models.onset.present.PresenceCheck` at every STRIDE-th frame of each video, either as at
stream start (`reset`: any blood counts) or as after an episode (`rearm`: only fresh blood, not
the blood in view on the first armed frame) and prints, per video and mode, how many armings
raised bleeding out of how many. A third column re-arms as after an episode and lets the check run
on to the end of the video (as it does while the pipeline waits for the next episode: every
`watch_stride`-th frame after the first window), printing the frames it raised at. On
bleeding-free video every raise is a false alarm; on video that bleeds throughout it shows
whether an episode that ended early is raised again. Frames go through the same resize to the
model size as in `bleedorigin run`. From the repository root:

    python experiments/onset_rearm_windows.py --stride 20 VIDEO [VIDEO ...]
"""
from __future__ import annotations

import argparse

from bleedorigin import MODEL_SIZE
from bleedorigin.errors import BleedOriginError
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.onset.present import PresenceCheck


def model_frames(video: str) -> list:
    with open_video(video) as reader:
        mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
        return [mapper.resize(item.image) for item in reader]


def armings(frames: list, stride: int, after_episode: bool) -> tuple[int, int, list[int]]:
    """(armings that raised, armings, their start frames); an arming needs a full window."""
    check = PresenceCheck()
    window = check.arm_frames + check.persist
    starts = list(range(0, len(frames) - window + 1, stride))
    raised = []
    for s in starts:
        check.rearm() if after_episode else check.reset()
        if any(check.step(f)[1] is not None for f in frames[s:s + window]):
            raised.append(s)
    return len(raised), len(starts), raised


def watched(frames: list, stride: int) -> tuple[int, int, list[int]]:
    """As `armings` after an episode, each arming running on to the end of the video: (armings
    that raised, armings, the frames they raised at)."""
    check = PresenceCheck()
    starts = list(range(0, len(frames) - check.arm_frames - check.persist + 1, stride))
    onsets = []
    for s in starts:
        check.rearm()
        found = next((o for o in (check.step(f)[1] for f in frames[s:]) if o is not None), None)
        if found is not None:
            onsets.append(s + found)
    return len(onsets), len(starts), onsets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stride", type=int, default=20, help="frames between armings")
    ap.add_argument("videos", nargs="+")
    args = ap.parse_args()
    if args.stride < 1:
        ap.error("--stride must be at least 1")
    try:  # bad input: one line and exit 2, as the CLI does
        print("video\tstream start: raised/armed\tafter episode: raised/armed (starts)"
              "\twatched to the end: raised/armed (frames raised at)")
        for video in args.videos:
            frames = model_frames(video)
            a, n, _ = armings(frames, args.stride, False)
            b, m, starts = armings(frames, args.stride, True)
            c, k, onsets = watched(frames, args.stride)
            print(f"{video}\t{a}/{n}\t{b}/{m} {starts}\t{c}/{k} {onsets}", flush=True)
    except BleedOriginError as e:
        ap.error(str(e))


if __name__ == "__main__":
    main()
