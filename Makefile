# One virtual environment for everything; each target installs what it needs itself.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.radnerf-installed
TSTAMP  := $(VENV)/.radnerf-test-installed
# torch is pinned; which build (CPU or CUDA) depends on the index: TORCH_INDEX=https://download.pytorch.org/whl/cpu
# or .../whl/cu130 (see README, Install). Empty: pip's configured index.
TORCH   ?= torch==2.13.0
TORCH_INDEX ?=
# mediapipe 0.10.14 (the face tracker) has wheels for CPython 3.9-3.12 only; pyproject says >=3.10,<3.13.
PY_OK   := import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)

.PHONY: install test test-fast bench demo lint clean

# Before a new environment is made, check the interpreter: one line instead of a resolver failure.
ifeq ($(wildcard $(BIN)/python),)
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),install)),)
ifneq ($(shell $(PY) -c '$(PY_OK)' 2>/dev/null && echo ok),ok)
$(error radnerf needs Python 3.10, 3.11 or 3.12 (mediapipe 0.10.14 has no wheels for others); $(PY) is $(shell $(PY) --version 2>&1). Run e.g.: make $(or $(MAKECMDGOALS),install) PY=python3.12)
endif
endif
endif

install: $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# runtime only: what a user needs to run radnerf
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# the test extras (pytest, ruff), for the targets that need them
$(TSTAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[test]"
	touch $(TSTAMP)

test: $(TSTAMP)
	$(BIN)/pip check
	$(BIN)/python -m pytest -q

test-fast: $(TSTAMP)
	$(BIN)/pip check
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

demo: $(STAMP)
	$(BIN)/radnerf demo

lint: $(TSTAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info bench-results
