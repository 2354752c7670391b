# Two entry points: `make demo` and `make test`. Both set up .venv idempotently first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/qmlp compile examples/can_ids_w2a2.onnx --board zcu104 -o build/demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/qmlp verify build/demo --samples 2000

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

clean:
	rm -rf build .pytest_cache

# Peers live in their own venvs, never dependencies of the compiler: .venv-peers for
# bench/peers.py (hls4ml), .venv-da4ml for bench/adder_graph.py; each from bench/requirements-<name>.txt.
.PHONY: peers-venv peers-da4ml
peers-venv: .venv-peers/.installed
peers-da4ml: .venv-da4ml/.installed
.venv-%/.installed: bench/requirements-%.txt
	test -x .venv-$*/bin/python || $(PY) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q --disable-pip-version-check -r $<
	touch $@

# CAN intrusion-detection case study (examples/can_ids/README.md): train, compile, synth, verify,
# HIL, profile, table. ARGS=--quick for the short version, ARGS=--reuse-models to skip training.
.PHONY: case-study
case-study: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/can_ids/run.py $(ARGS)

# finn-plus (FINN from PyPI) for `qmlp compile --backend finn` and bench/peers.py, in its own venv:
# its pins clash with ours. Why three pip calls: requirements-finn.txt. VENV_FINN=... builds elsewhere.
VENV_FINN ?= .venv-finn
.PHONY: finn
finn: $(VENV_FINN)/.installed
$(VENV_FINN)/.installed: requirements-finn.txt
	test -x $(VENV_FINN)/bin/python || $(PY) -m venv $(VENV_FINN)
	$(VENV_FINN)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(VENV_FINN)/bin/python -m pip install -q --disable-pip-version-check --no-deps $$(grep -E '^(finn-plus|brevitas)==' requirements-finn.txt)
	$(VENV_FINN)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 $$(grep -v -E '^(#|$$|finn-plus==|brevitas==)' requirements-finn.txt)
	$(VENV_FINN)/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.endswith('+cpu') else 'torch is not the CPU build: ' + torch.__version__)"
	touch $(VENV_FINN)/.installed
