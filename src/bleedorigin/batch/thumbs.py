"""Small JPEGs of each episode's onset frame with the located source drawn, for the report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bleedorigin.errors import InputError
from bleedorigin.io.video import open_video
from bleedorigin.utils.files import atomic_open

THUMB_WIDTH = 256
JPEG_QUALITY = 80
FOLDER = "onsets"


def thumb_name(episode: int) -> str:
    return f"{FOLDER}/episode_{episode}.jpg"


def _draw(image: np.ndarray, x: float, y: float, confidence: float) -> np.ndarray:
    scale = THUMB_WIDTH / image.shape[1]
    small = cv2.resize(image, (THUMB_WIDTH, max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    c = (int(round(x * scale)), int(round(y * scale)))
    cv2.circle(bgr, c, 12, (0, 0, 0), 4, cv2.LINE_AA)  # dark rim: readable on red tissue
    cv2.circle(bgr, c, 12, (60, 255, 60), 2, cv2.LINE_AA)
    cv2.drawMarker(bgr, c, (60, 255, 60), cv2.MARKER_CROSS, 8, 1, cv2.LINE_AA)
    cv2.putText(bgr, f"{confidence:.2f}", (c[0] + 14, c[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (60, 255, 60), 1, cv2.LINE_AA)
    return bgr


def write_thumbnails(result: dict[str, Any], video: str | Path, run_dir: Path) -> list[Path]:
    """One JPEG per episode in `run_dir/onsets/` (decodes the video up to the last onset)."""
    wanted = {int(e["onset"]["frame"]): k for k, e in enumerate(result.get("events") or [], 1)}
    if not wanted:
        return []
    events = result["events"]
    written: list[Path] = []
    with open_video(str(video)) as reader:
        for item in reader:
            k = wanted.get(item.index)
            if k is not None:
                source = events[k - 1]["source"]
                ok, jpeg = cv2.imencode(".jpg", _draw(item.image, source["x"], source["y"],
                                                      source.get("confidence", 1.0)),
                                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise InputError(f"cannot encode the onset thumbnail of {video}")
                path = run_dir / thumb_name(k)
                with atomic_open(path, "wb") as f:
                    f.write(jpeg.tobytes())
                written.append(path)
            if item.index >= max(wanted):
                break
    return written
