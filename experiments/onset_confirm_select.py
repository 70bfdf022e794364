"""Choose how a raised onset is confirmed and how soon the bleeding-present check decides.

    python experiments/onset_confirm_select.py --out val.jsonl SIM_FOLDER... [--real VIDEO_FOLDER...]
    python experiments/onset_confirm_select.py --summary val.jsonl [--group]

One pass per clip records what each variant would raise, so all are compared on the same
frames: the network's transitions (`onset_small` without the bleeding-present check), each with
its decision frame, whether new red confirmed it (`TransitionConfirm` at 0.5 %, the largest
candidate) and the new-red share of every check (so a smaller share is read from the record), and the
bleeding-present check alone for each `--persist` (checked frames over the threshold before it
decides). A variant's onset is the earlier decision of its two parts, as in `OnsetDetector`.
Summary per folder (BleedSim: Acc±8, Err_avg, missed, false alarms on bleeding-free clips; real:
the onset against the stated one, frames from the stream start or stated onset to the alarm,
alarms on bleeding-free clips). Rule and figures: docs/onset.md.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from onset_real_transition import stated_onset

from bleedorigin import MODEL_SIZE
from bleedorigin.eval.protocol import ClipFrames
from bleedorigin.io.bench import discover_clips
from bleedorigin.io.video import FrameMapper, open_video
from bleedorigin.models.onset.predictor import OnsetDetector
from bleedorigin.models.onset.present import PresenceCheck

TOLERANCE = 8


def clip_sources(folders: list[Path], real: list[Path]):
    """(folder label, clip id, stated onset or None, frame iterator factory)."""
    for folder in folders:
        for clip in discover_clips(folder):
            onset = None if clip.kind == "negative" else clip.onset_frame
            yield folder.name, clip.id, onset, lambda c=clip: (f for _, f in ClipFrames(c, budget_mb=0))
    for folder in real:
        def frames(v=folder / "video.mp4"):
            with open_video(str(v)) as reader:
                mapper = FrameMapper((reader.info.width, reader.info.height), MODEL_SIZE)
                for item in reader:
                    yield mapper.resize(item.image)
        yield "real", folder.name, stated_onset(folder), frames


def record(detector: OnsetDetector, persists: list[int], frames) -> dict:
    """Network proposals [(decided, onset, confirmed at or None, [(frame, new red share) of
    each check])] and, per persist, the check's (decided, onset) or None."""
    detector.reset()
    checks = {k: PresenceCheck(persist=k) for k in persists}
    found: dict[int, tuple[int, int] | None] = {k: None for k in persists}
    proposals: list[list] = []
    confirm, check = detector.confirm, detector.confirm._check
    shares: list[tuple[int, float]] = []

    def traced(i, small):
        hit = check(i, small)
        shares.append((i, confirm.last_share))
        return hit
    confirm._check = traced
    n = 0
    for t, frame in enumerate(frames):
        n = t + 1
        for k, presence in checks.items():
            if found[k] is None:
                o = presence.step(frame)[1]
                if o is not None:
                    found[k] = (t, o)
        pending = detector.proposed
        if pending is None:
            shares = []
        out = detector.step(frame)
        if out.onset_frame is not None:  # confirmed now (proposed now or before)
            if pending is None:
                proposals.append([t, out.onset_frame, t, shares])
            else:
                proposals[-1][2] = t
        elif detector.proposed is not None and pending is None:  # proposed now, pending
            proposals.append([t, detector.proposed[0], None, shares])
        if detector.onset is not None and all(v is not None for v in found.values()):
            break
    return {"proposals": proposals, "present": {str(k): v for k, v in found.items()}, "frames": n}


def variant(rec: dict, confirm: float, persist: int) -> tuple[int | None, int | None]:
    """(onset, decision frame) of one variant from a clip's record; `confirm`: the share of the
    view new red must cover (at most the recorded run's), 0 for unconfirmed transitions."""
    net = None
    for decided, onset, _, shares in rec["proposals"]:
        if not confirm:
            net = (decided, onset)
            break
        hit = next((i for i, s in shares if s > confirm), None)
        if hit is not None:
            net = (max(hit, decided), onset)
            break
    pres = rec["present"].get(str(persist))
    cands = [c for c in (net, tuple(pres) if pres else None) if c is not None]
    if not cands:
        return None, None
    decided, onset = min(cands, key=lambda c: (c[0], c[1]))
    return onset, decided


def summary(rows: list[dict], persists: list[int], confirms: list[float], group: bool) -> None:
    by = defaultdict(list)
    for r in rows:
        by[r["folder"] if group else "all"].append(r)
    for name, rs in sorted(by.items()):
        for confirm in confirms:
            for k in persists:
                if str(k) not in rs[0]["present"]:
                    continue
                pos = [r for r in rs if r["stated"] is not None]
                neg = [r for r in rs if r["stated"] is None]
                outs = [(r, *variant(r, confirm, k)) for r in pos]
                hits = sum(o is not None and abs(o - r["stated"]) <= TOLERANCE for r, o, _ in outs)
                errs = [abs(o - r["stated"]) for r, o, _ in outs if o is not None]
                missed = sum(o is None for _, o, _ in outs)
                fa = [r["clip"] for r in neg if variant(r, confirm, k)[0] is not None]
                line = (f"{name:28s} confirm {100 * confirm:.2f} % persist {k:2d}: onsets {len(pos)} acc±8 {hits}"
                        f" err_avg {sum(errs) / max(1, len(errs)):.2f} missed {missed}"
                        f" | bleeding-free {len(neg)} alarms {len(fa)} {' '.join(fa)}")
                if name == "real" or not group:
                    line += " | " + " ".join(f"{r['clip']}:{o}@{d}" for r, o, d in outs)
                print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--real", nargs="*", type=Path, default=[])
    ap.add_argument("--weights", default="small")
    ap.add_argument("--persist", nargs="*", type=int, default=[10, 5, 3])
    ap.add_argument("--confirm", nargs="*", type=float, default=[0.0, 0.005, 0.0025, 0.001],
                    help="shares of the view new red must cover (0: unconfirmed); summary only")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--summary", nargs="*", type=Path)
    ap.add_argument("--group", action="store_true", help="one summary per folder")
    args = ap.parse_args()
    if args.summary:
        rows = [json.loads(line) for p in args.summary for line in p.read_text().splitlines() if line]
        summary(rows, args.persist, args.confirm, args.group)
        return
    detector = OnsetDetector.from_pretrained(args.weights, device="cpu", presence=False, confirm=0.005)
    with open(args.out, "a") as f:
        for folder, clip, stated, frames in clip_sources(args.folders, args.real):
            rec = {"folder": folder, "clip": clip, "stated": stated, **record(detector, args.persist, frames())}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(folder, clip, stated, [p[:3] for p in rec["proposals"]], rec["present"], flush=True)


if __name__ == "__main__":
    main()
