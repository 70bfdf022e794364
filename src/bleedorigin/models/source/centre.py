"""Reference rows: fixed guesses that know nothing about blood.

`source_centre` answers the image centre. `source_channel` answers 6 o'clock, half the field of
view's equivalent radius below its centre: where ESD brings the dissection site, within reach of
the instrument leaving the endoscope's working channel at the bottom of the view (the place of
the red fusion's `prior_shift`, docs/source.md). A localizer that does not beat them on real
frames has learnt nothing that transfers."""
from __future__ import annotations

import cv2
import numpy as np

from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.registry import register_model
from bleedorigin.models.source.evidence import centre_prior
from bleedorigin.models.source.fusion import FusionConfig
from bleedorigin.models.source.predictor import check_frame
from bleedorigin.types import Point
from bleedorigin.vision.color import field_of_view

CHANNEL_SHIFT = FusionConfig.prior_shift  # share of the view's equivalent radius below its centre: the red fusion's place
VIEW_WIDTH = 192  # px: the field of view is found on a copy this wide (as the localizers' working size)


class CentreGuess(SourceLocatorBase):
    name = "source_centre"
    model_id = "source_centre"

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:  # a fixed guess: no blood, old or new
        h, w = check_frame(frame).shape[:2]
        return Point((w - 1) / 2, (h - 1) / 2, 0.0)


class ChannelGuess(SourceLocatorBase):
    name = "source_channel"
    model_id = "source_channel"

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:  # a fixed place in the view: no blood, old or new
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        scale = VIEW_WIDTH / w
        small = cv2.resize(frame, (VIEW_WIDTH, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        _, (x, y) = centre_prior(field_of_view(small), 1.0, CHANNEL_SHIFT)
        return Point(float(np.clip(x / scale, 0, w - 1)), float(np.clip(y / scale, 0, h - 1)), 0.0)


@register_model("source_centre")
def source_centre() -> CentreGuess:
    return CentreGuess()


@register_model("source_channel")
def source_channel() -> ChannelGuess:
    return ChannelGuess()
