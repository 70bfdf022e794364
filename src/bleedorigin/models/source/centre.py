"""Reference row `source_centre`: a fixed guess at the image centre.

It knows nothing about blood; a localizer that does not beat it on real frames has learnt
nothing that transfers."""
from __future__ import annotations

import numpy as np

from bleedorigin.models.base import SourceLocatorBase
from bleedorigin.models.registry import register_model
from bleedorigin.models.source.predictor import check_frame
from bleedorigin.types import Point


class CentreGuess(SourceLocatorBase):
    name = "source_centre"
    model_id = "source_centre"

    def locate(self, frame: np.ndarray, history: list[np.ndarray] | None = None,
               exclude: np.ndarray | None = None) -> Point:  # a fixed guess: no blood, old or new
        h, w = check_frame(frame).shape[:2]
        return Point((w - 1) / 2, (h - 1) / 2, 0.0)


@register_model("source_centre")
def source_centre() -> CentreGuess:
    return CentreGuess()
