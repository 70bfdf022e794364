#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtualenv outside the source tree, and run the demo
# and `run` on the shipped sample from there: what a user of `pip install bleedorigin` gets.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d /tmp/bleedorigin-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip wheel --no-deps -q -w "$work/dist" .
"$PYTHON" -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install -q --upgrade pip
# the CPU build of torch on this machine first (as the Makefile does), then the wheel
"$pip" install -q "torch==2.13.0" || "$pip" install -q torch
"$pip" install -q "$work"/dist/*.whl
cd "$work"  # nothing of the source tree on the path
sample=$("$work/venv/bin/python" -c "from bleedorigin.commands import SAMPLE_CLIP; print(SAMPLE_CLIP)")
case "$sample" in "$work"/venv/*) ;; *) echo "sample clip not inside the installed package: $sample" >&2; exit 1;; esac
"$work/venv/bin/bleedorigin" -q demo --out "$work/demo"
"$work/venv/bin/bleedorigin" -q run "$sample" --out "$work/run" --no-overlay
"$work/venv/bin/python" - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
for run in ("demo", "run"):
    res = json.loads((work / run / "result.json").read_text())
    assert res["onset"] is not None, f"{run}: no onset on the sample clip"
    assert all("@" in v for k, v in res["models"].items() if k != "track"), res["models"]
print("wheel check: demo and run from the installed wheel OK;", res["models"])
PY
