"""The source chosen by the frames from the onset to the decision, not by the decision frame alone.

When the onset is raised the pipeline holds the frames from the (back-dated) onset up to the
decision frame. One frame's answer can flip between two places from frame to frame (a flush, an
instrument, glare); the place the frames agree on varies less. The localizer's candidates (its
best few places, each with the probability that the source lies within its confidence radius)
on a few of those frames are carried by the tracker to the decision frame (the caller does
that), and each carried candidate gets as support the summed probability of every candidate
within the radius of it: a vote. The candidate of largest support is the source; ties go to the
latest frame. Nothing is fitted: the probabilities are the localizer's own.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bleedorigin.source_revision import Place

CANDIDATES = 3  # the localizer's places per voting frame


def voting_frames(first: int, last: int, n: int) -> list[int]:
    """Up to `n` frames evenly spread from `first` to `last`, both included (all when fewer)."""
    if n <= 1 or last <= first:
        return [last]
    return sorted({int(round(f)) for f in np.linspace(first, last, min(n, last - first + 1))})


def vote(votes: Sequence[tuple[int, float, float, float]], radius: float, k: int) -> list[Place]:
    """Up to `k` places from `votes` (frame the candidate was found on, x, y where it is now,
    its probability), most supported first, each at least twice `radius` from the ones before;
    a place's probability is its support over the number of voting frames (the mean over the
    frames of the probability that the source lies within `radius` of it)."""
    v = np.asarray(votes, np.float64).reshape(-1, 4)
    if not len(v):
        return []
    frame, xy, p = v[:, 0], v[:, 1:3], v[:, 3]
    near = ((xy[:, None] - xy[None]) ** 2).sum(-1) <= radius ** 2
    support = (near * p[None]).sum(1)
    order = np.lexsort((-p, -frame, -support))  # support, then the latest frame, then its own probability
    voters = len(np.unique(frame))
    places: list[Place] = []
    for i in order:
        if len(places) >= k:
            break
        x, y = float(xy[i, 0]), float(xy[i, 1])
        if all((x - a) ** 2 + (y - b) ** 2 > (2 * radius) ** 2 for a, b, _ in places):
            places.append((x, y, min(1.0, float(support[i]) / voters)))
    return places
