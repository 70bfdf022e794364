"""Score the onset detector on real videos with a stated onset or none, frame by frame.

    python experiments/onset_real_transition.py --model onset_small VIDEO_FOLDER...

Each folder holds `video.mp4` and either a `meta.json` with `bleeding` / `bleeding_from_frame`
(docs/data-extra.md) or sample labels (the shared ESD clips bleed from frame 0; VL-SurgPT has
none). The detector is streamed over the whole video (frames resized to the model size, as in
`detect`); per clip it prints the onset, the frame where it was raised (the decision), its cue,
and against the stated onset: the error (onset - stated), whether it lies within ±8 and ±30
frames, and the time from the stated onset to the decision. Bleeding-free clips give alarms
per hour of video. A clip with its onset at frame 0 counts as flagged when the onset lies at
frame 0..30.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bleedorigin import MODEL_SIZE
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.loading import load_stage


def stated_onset(folder: Path) -> int | None:
    meta = folder / "meta.json"
    m = json.loads(meta.read_text()) if meta.is_file() else {}
    if "bleeding" in m:
        return int(m["bleeding_from_frame"]) if m["bleeding"] else None
    return 0 if "esd_clips" in folder.parts else None  # the shared ESD samples bleed from frame 0


def stream(detector, video: Path) -> tuple[int | None, int | None, str | None, int, float]:
    """(onset, decision frame, cue, frames, fps) of one pass over the video."""
    detector.reset()
    onset = decided = cue = None
    n = 0
    with open_video(str(video)) as reader:
        fps = reader.info.fps or 30.0
        mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
        for n, item in enumerate(reader, 1):
            out = detector.step(mapper.resize(item.image))
            if out.onset_frame is not None and onset is None:
                onset, decided, cue = out.onset_frame, n - 1, out.cue
    return onset, decided, cue, n, fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--model", default="onset_small")
    args = ap.parse_args()
    detector = load_stage("onset", args.model, "cpu")
    free_frames = free_s = alarms = 0.0
    for folder in args.folders:
        stated = stated_onset(folder)
        onset, decided, cue, n, fps = stream(detector, folder / "video.mp4")
        row = f"{folder.name:36s} stated {stated!s:>5s} onset {onset!s:>5s} decided {decided!s:>5s} cue {cue}"
        if stated is None:
            free_frames += n
            free_s += n / fps
            alarms += onset is not None
        elif onset is None:
            row += "  missed"
        else:
            err = onset - stated
            row += (f"  err {err:+d}  ±8 {abs(err) <= 8}  ±30 {abs(err) <= 30}"
                    f"  stated->decision {(decided - stated) / fps:+.2f} s")
        print(row, flush=True)
    if free_s:
        print(f"bleeding-free: {int(alarms)} alarms in {int(free_frames)} frames ({free_s / 60:.1f} min): "
              f"{alarms / (free_s / 3600):.1f} per hour")


if __name__ == "__main__":
    main()
