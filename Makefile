# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU build available on the machine; a range it
	# satisfies afterwards installs nothing more.
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e ".[dev,onnx,cluster]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bleedorigin demo --out runs/demo

# the test suite, then the wheel installed in a fresh virtualenv outside the tree runs the demo
test: $(STAMP)
	$(BIN)/python -m pytest -q
	PYTHON=$(PYTHON) bash tools/check_wheel.sh

clean:
	rm -rf $(VENV) runs
