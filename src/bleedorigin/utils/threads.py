"""One thread budget for every library that computes in parallel: torch, OpenCV, onnxruntime
and the video decoder. Each of them otherwise takes every core, so a second job on the same
cores (another pipeline, an evaluation) oversubscribes them and both slow down many times
over instead of sharing."""
from __future__ import annotations

import os
from typing import Any

from bleedorigin.errors import InputError

_BUDGET: dict[str, int | None] = {"threads": None}


def passive_waiting() -> None:
    """Let OpenMP threads (torch's) sleep between parallel regions instead of spinning
    ($OMP_WAIT_POLICY=PASSIVE unless set): spinning threads take the cores from every other job,
    so two spinning jobs on the same cores slow each other down a hundred times over. Has an
    effect only before torch is imported; worker processes inherit it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: a container or `taskset` limit counts)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _count_from_env(name: str, default: int) -> int:
    """$name as a whole number >= 1, `default` when unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{name} must be a whole number >= 1, got {text!r}")
    return int(text)


def default_threads() -> int:
    """$BLEEDORIGIN_THREADS when set, else available_cores()."""
    return _count_from_env("BLEEDORIGIN_THREADS", available_cores())


def torch_threads(n: int) -> int:
    """Threads torch gets within a budget of `n`: $BLEEDORIGIN_TORCH_THREADS when set, else 1.
    The shipped networks take under 1 GFLOP a frame, too little to split: on 2 cores the onset
    stage runs 114 frames/s on one torch thread against 70 on two (docs/robustness.md), while the
    optical flow (OpenCV) gains from every core. A larger model on a CPU (the paper presets) may
    want more."""
    return min(n, _count_from_env("BLEEDORIGIN_TORCH_THREADS", 1))


def set_threads(n: int | None = None) -> int:
    """Give OpenCV, onnxruntime sessions (ort_options) and video decoding `n` threads and torch
    torch_threads(n) of them (default: default_threads()); the budget set."""
    import cv2
    import torch

    n = default_threads() if n is None else n
    if n < 1:
        raise InputError(f"--threads must be >= 1, got {n}")
    t = torch_threads(n)
    torch.set_num_threads(t)
    try:  # allowed only before torch's first parallel work; later calls keep the first value
        torch.set_num_interop_threads(t)
    except RuntimeError:
        pass
    cv2.setNumThreads(n)
    _BUDGET["threads"] = n
    return n


def threads() -> int:
    """The budget set by set_threads, else default_threads()."""
    return _BUDGET["threads"] or default_threads()


def ort_options() -> Any:
    """onnxruntime SessionOptions within the budget."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    return options
