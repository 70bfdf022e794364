"""STIR-style evaluation (eval.stir): point files in, the STIR 2026 preds.json out, known scores."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_tiny_frames, write_mp4
from test_cli import cli

from bleedorigin.errors import InputError
from bleedorigin.eval import stir
from bleedorigin.models.baselines.lk import LKTracker
from bleedorigin.models.baselines.still import StillTracker

N = 16


@pytest.fixture
def sequences(tmp_path: Path) -> Path:
    """Two 64x48 sequences whose texture drifts right by 0.5 px a frame (conftest), as STIR-style
    folders: seqA.mp4 and seqB/video.mp4."""
    data = tmp_path / "stir"
    (data / "seqB").mkdir(parents=True)
    frames, _ = make_tiny_frames(n=N, onset=N + 1)
    write_mp4(data / "seqA.mp4", frames)
    write_mp4(data / "seqB" / "video.mp4", frames)
    return data


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_preds_json_layout_and_zero_motion_scores(sequences: Path, tmp_path: Path) -> None:
    start = write(tmp_path / "start.json", {"seqA": [[20.0, 20.0], [40.0, 30.0]], "seqB": [[30.0, 24.0]]})
    # true end points 3 px right of the start: the still tracker is off by 3 px everywhere
    end = write(tmp_path / "end.json", {"seqA": [[43.0, 30.0], [23.0, 20.0]], "seqB": [[33.0, 24.0]]})
    result = stir.evaluate_stir(sequences, start, end, {"still": StillTracker()}, tmp_path / "out")
    preds = json.loads((tmp_path / "out" / "still" / "preds.json").read_text())
    assert sorted(preds) == ["seqA", "seqB"] and sorted(preds["seqA"], key=int) == [str(f) for f in range(N)]
    frame = preds["seqA"]["5"]
    assert frame["coords"] == [[20.0, 20.0], [40.0, 30.0]] and frame["visibilities"] == [True, True]
    assert isinstance(frame["latency_ms"], float)
    block = result["models"]["still"]
    # 3 px: wrong at 2 px, right at 4, 8, 16, 32 (end points unordered: nearest true end point)
    assert block["ata"] == pytest.approx(0.8) and block["aj"] == pytest.approx(0.8) and block["oa"] == 1.0
    assert block["n"] == 3 and block["latency"]["frames"] == 2 * (N - stir.LATENCY_SKIP)
    assert result["control"]["aj"] == pytest.approx(0.8)


def test_frame_form_truth_scores_hidden_points_and_a_tracker_beats_the_control(sequences: Path,
                                                                               tmp_path: Path) -> None:
    start = write(tmp_path / "start.json", {"seqA": [[30.0, 24.0]]})
    drift = 0.5 * (N - 1)  # the texture's displacement at the last frame
    truth = {str(N - 1): {"coords": [[30.0 + drift, 24.0]], "visibilities": [True]},
             "3": {"coords": [[31.5, 24.0]], "visibilities": [False]}}
    end = write(tmp_path / "end.json", {"seqA": truth})
    result = stir.evaluate_stir(sequences, start, end, {"lk": LKTracker()}, tmp_path / "out")
    lk, control = result["models"]["lk"], result["control"]
    assert control["ata"] == pytest.approx(0.6)  # 7.5 px off: right at 8, 16 and 32 px of 5 thresholds
    assert lk["ata"] > control["ata"] and lk["n"] == 2
    assert control["oa"] == 0.5  # frame 3 is hidden but the control says visible


def test_bad_point_files_are_one_line_errors(sequences: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="list of"):
        stir.read_points(write(tmp_path / "a.json", {"seqA": [[1.0, 2.0, 3.0]]}))
    with pytest.raises(InputError, match="no video"):
        stir.find_sequence(sequences, "seqC")
    (sequences / "seqC").mkdir()  # an image folder is a sequence too
    assert stir.find_sequence(sequences, "seqC") == sequences / "seqC"
    assert stir.find_sequence(sequences, "seqB") == sequences / "seqB" / "video.mp4"
    out = tmp_path / "cli"
    assert cli("-q", "evaluate", sequences, "--out", out, "--stir-start", tmp_path / "missing.json") == 2
    start = write(tmp_path / "start.json", {"seqA": [[30.0, 24.0]]})
    assert cli("-q", "evaluate", sequences, "--out", out, "--stir-start", start,
               "--models", "track_still", "--no-baselines") == 0
    assert (out / "stir" / "track_still" / "preds.json").is_file()
    assert "zero-motion control" in (out / "report.md").read_text()
