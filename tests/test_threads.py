"""One thread budget (--threads) for torch, OpenCV, onnxruntime and the decoder together."""
from __future__ import annotations

import os

import cv2
import pytest
import torch

from bleedorigin.cli import main
from bleedorigin.errors import InputError
from bleedorigin.utils import threads


def test_default_budget_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("BLEEDORIGIN_THREADS", raising=False)
    if hasattr(os, "sched_setaffinity"):
        mask = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {min(mask)})  # as under taskset -c N or a one-core container
            assert threads.available_cores() == 1
        finally:
            os.sched_setaffinity(0, mask)
    assert threads.default_threads() == threads.available_cores()
    monkeypatch.setenv("BLEEDORIGIN_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("BLEEDORIGIN_THREADS", "many")
    with pytest.raises(InputError, match="BLEEDORIGIN_THREADS"):
        threads.default_threads()


def test_set_threads_reaches_every_library(monkeypatch):
    monkeypatch.delenv("BLEEDORIGIN_TORCH_THREADS", raising=False)
    try:
        threads.set_threads(2)
        # the small networks run on one torch thread; the flow and the decoder get the budget
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 2 and threads.threads() == 2
        ort = pytest.importorskip("onnxruntime")
        assert isinstance(threads.ort_options(), ort.SessionOptions)
        assert threads.ort_options().intra_op_num_threads == 2
        monkeypatch.setenv("BLEEDORIGIN_TORCH_THREADS", "8")  # more for a larger model, within the budget
        threads.set_threads(2)
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("BLEEDORIGIN_TORCH_THREADS", "0")
        with pytest.raises(InputError, match="BLEEDORIGIN_TORCH_THREADS"):
            threads.set_threads(2)
    finally:
        monkeypatch.delenv("BLEEDORIGIN_TORCH_THREADS", raising=False)
        threads.set_threads(1)


def test_cli_threads_option_sets_the_budget(tiny_clip, tmp_path):
    try:
        with pytest.raises(SystemExit) as exc:
            main(["-q", "detect", str(tiny_clip.path), "--out", str(tmp_path / "o.json"), "--model", "onset_hsv",
                  "--threads", "2"])
        assert exc.value.code in (0, None)
        assert threads.threads() == 2 and cv2.getNumThreads() == 2
    finally:
        threads.set_threads(1)


@pytest.mark.slow  # a second process loads the pipeline: about a minute on a busy machine
def test_bench_contention_times_both_pipelines():
    from bleedorigin.bench import bench_contention, bench_frames, format_bench
    models = {"onset": "onset_hsv", "source": "source_redmask", "track": "track_lk"}
    result = bench_contention(models, bench_frames(12), "cpu")
    for side in ("alone", "beside", "second"):
        assert result[side]["fps"] > 0 and result[side]["p95_ms"] >= result[side]["p50_ms"] > 0
    assert result["threads"] == threads.threads()
    text = format_bench({"stages": {}, "end_to_end": {"fps": 1.0, "p50_ms": 1.0, "p95_ms": 1.0, "peak_mb": 1.0},
                         "contention": result})
    assert "beside a second pipeline" in text


def test_cli_lets_openmp_threads_sleep_before_torch_loads(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    probe = ("import os, sys; from bleedorigin.cli import main; sys.argv = ['bleedorigin', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE False"
