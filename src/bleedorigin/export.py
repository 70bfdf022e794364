"""`bleedorigin export onnx`: the onset detector's networks and the tracker step as ONNX graphs.

Streaming state stays outside the graphs: the onset detector exports its per-frame embedding
(MDG), the clean-view gate (MDCFM) and the window transformer; the tracker exports one `step`
with its memory state as explicit inputs and outputs, so a runtime keeps the state between calls.
Each export is checked against PyTorch with onnxruntime (max abs difference) when it is installed.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bleedorigin.errors import ConfigError, InputError
from bleedorigin.utils.threads import ort_options

log = logging.getLogger(__name__)
OPSET = 17


class _Call(nn.Module):
    """Wraps a bound method so torch.onnx can export it as forward."""

    def __init__(self, owner: nn.Module, method: str):
        super().__init__()
        self.owner = owner
        self.method = method

    def forward(self, *args: torch.Tensor):  # noqa: ANN201
        return getattr(self.owner, self.method)(*args)


class _TrackStep(nn.Module):
    """One tracker step; with a `motion_mix` network the camera-motion hint (B, N, 2) is the
    second input (computed outside the graph, as `PointTracker` does)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, frame: torch.Tensor, *inputs: torch.Tensor):  # noqa: ANN201
        from bleedorigin.models.track.learned.memory import TrackState
        hint, state = (inputs[0], inputs[1:]) if self.net.cfg.motion_mix else (None, inputs)
        points, vis, conf, new = self.net.step(frame, TrackState(*state), hint)
        return (points, vis, conf, *new)


def _onset_graphs(detector: Any) -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """(name, module, example inputs) for each onset network, inputs captured from a real step."""
    net = detector.net
    captured: dict[str, tuple] = {}
    orig_emb, orig_clean = net.frame_embedding, net.clean_logits

    def emb(*args):  # noqa: ANN202
        captured["frame"] = tuple(a for a in args if a is not None)
        return orig_emb(*args)

    def clean(*args):  # noqa: ANN202
        captured["mdcfm"] = args
        return orig_clean(*args)

    net.frame_embedding, net.clean_logits = emb, clean
    try:
        rng = np.random.default_rng(0)
        detector.reset()
        for _ in range(3):
            detector.step(rng.integers(0, 255, (384, 512, 3), dtype=np.uint8))
    finally:
        del net.frame_embedding, net.clean_logits
        detector.reset()
    graphs = [("onset_frame", _Call(net.mdg, "forward"), captured["frame"])]
    if net.mdcfm is not None:
        graphs.append(("onset_mdcfm", _Call(net.mdcfm, "forward"), captured["mdcfm"]))
    window = torch.randn(1, detector.cfg.window, detector.cfg.d_model, device=detector.device)
    graphs.append(("onset_window", _Call(net.temporal, "forward"), (window,)))
    return graphs


def _track_graphs(tracker: Any) -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    rng = np.random.default_rng(0)
    f0, f1 = (rng.integers(0, 255, (384, 512, 3), dtype=np.uint8) for _ in range(2))
    (_, _, x0), (_, _, x1) = tracker._prepare(f0), tracker._prepare(f1)
    start = torch.tensor([[[256.0, 192.0]]], device=tracker.device)
    with torch.no_grad():
        state = tracker.net.start(x0, start)
    hint = (start + 3.0,) if tracker.cfg.motion_mix else ()
    return [("track_step", _TrackStep(tracker.net), (x1, *hint, *state))]


def export_onnx(stage: str, model: str | None, out_dir: str | Path, device: str = "cpu",
                check: bool = True) -> dict[str, Any]:
    """Export `stage` ("onset" | "track") of `model` (name or checkpoint folder) to OUT_DIR/*.onnx.

    Returns {graph name: {"path", "inputs", "outputs", "max_abs_diff" (None without onnxruntime)}}.
    """
    from bleedorigin.models.loading import load_stage

    if stage not in ("onset", "track"):
        raise ConfigError(f"ONNX export covers the onset detector and the tracker, not {stage!r}")
    predictor = load_stage(stage, model or f"{stage}_small", device)
    if not hasattr(predictor, "net"):
        raise InputError(f"{model or stage}: only trained models can be exported (baselines have no network)")
    predictor.net.eval()
    graphs = _onset_graphs(predictor) if stage == "onset" else _track_graphs(predictor)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    for name, module, inputs in graphs:
        path = out / f"{name}.onnx"
        tmp = path.with_suffix(".onnx.partial")
        in_names = [f"in{i}" for i in range(len(inputs))]
        # the fused inference fast path of nn.TransformerEncoder has no ONNX symbolic
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer notes on Python ints: the frame size is fixed
                expected = module(*inputs)
                expected = expected if isinstance(expected, tuple) else (expected,)
                torch.onnx.export(module, inputs, str(tmp), opset_version=OPSET, dynamo=False,
                                  input_names=in_names, output_names=[f"out{i}" for i in range(len(expected))])
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        tmp.replace(path)
        diff = _parity(path, inputs, expected) if check else None
        report[name] = {"path": str(path), "inputs": [list(t.shape) for t in inputs],
                        "outputs": [list(t.shape) for t in expected], "max_abs_diff": diff}
        log.info("%s: %s%s", name, path, "" if diff is None else f" (max abs diff vs PyTorch {diff:.2e})")
    return report


def _parity(path: Path, inputs: tuple[torch.Tensor, ...], expected: tuple[torch.Tensor, ...]) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime not installed: parity not checked (pip install 'bleedorigin[onnx]')")
        return None
    sess = ort.InferenceSession(str(path), sess_options=ort_options(), providers=["CPUExecutionProvider"])
    # ONNX drops inputs a graph does not use, so feed by name ("in<k>"), not by position
    feeds = {i.name: inputs[int(i.name[2:])].detach().cpu().numpy() for i in sess.get_inputs()}
    got = sess.run(None, feeds)
    return float(max(np.abs(g - e.detach().cpu().numpy()).max() for g, e in zip(got, expected)))
