"""Frame-level domain randomisation toward real endoscope footage.

Real ESD samples are small (112 px high, square pixels stretched to 4:3), blurred, JPEG-compressed
and white-balanced differently from BleedSim. `Degrade.random` draws one such look; `frame`
applies it to one image of any size (resolution drop and back, blur, JPEG, channel gains), so
the network learns evidence that survives these losses instead of BleedSim's fine texture.
Geometry is unchanged: labels need no transform.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Degrade:
    height: int = 0                    # drop to this many rows and back (0 = keep)
    width_ratio: float = 4 / 3         # width / height at the dropped size (real: 1..4/3)
    blur_sigma: float = 0.0            # Gaussian blur at the dropped size, px
    jpeg_quality: int = 0              # 0 = no compression
    channel_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Degrade":
        """Around the real samples: 84..144 rows, 1..4/3 aspect, blur up to 1.2 px, JPEG 25..90,
        per-channel white-balance gains with an 8 % standard deviation."""
        return cls(height=int(rng.integers(84, 145)), width_ratio=float(rng.uniform(1.0, 4 / 3)),
                   blur_sigma=float(rng.uniform(0, 1.2)) if rng.random() < 0.6 else 0.0,
                   jpeg_quality=int(rng.integers(25, 91)) if rng.random() < 0.8 else 0,
                   channel_gain=tuple(float(g) for g in np.exp(rng.normal(0, 0.08, 3))))

    def frame(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> degraded copy of the same shape."""
        h, w = img.shape[:2]
        x = np.ascontiguousarray(img)
        if self.height > 0:
            sh = min(self.height, h)
            sw = min(w, max(16, round(sh * self.width_ratio)))
            x = cv2.resize(x, (sw, sh), interpolation=cv2.INTER_AREA)
        if self.blur_sigma > 0:
            x = cv2.GaussianBlur(x, (0, 0), self.blur_sigma)
        if self.jpeg_quality > 0:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(x, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:  # BGR order so the codec's chroma subsampling hits red as it does on real video
                x = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if x.shape[:2] != (h, w):
            x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
        x = x.astype(np.float32) * np.asarray(self.channel_gain, np.float32)
        return np.clip(x, 0, 255).astype(np.uint8)
