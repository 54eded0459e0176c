# genlab: `make train` trains the default experiment, `make test` runs lint + the test suite.
# Both create .venv on first use (CPU torch 2.13.0 first, unless a torch is already importable
# or TORCH_SPEC names another, e.g. TORCH_SPEC="torch==2.5.1 --index-url ...").
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv train test test-slow test-minimum lint format bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep]'
	touch $@

train: venv
	$(BIN)/genlab-train $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: venv
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The declared minimum versions (.ci/minimum.txt) in their own venv, with a smoke subset of the
# tests. torch stays at TORCH_SPEC: its minimum (2.1) is not installable on the CPU-only index.
MIN_VENV := .venv-min
SMOKE_TESTS ?= tests/test_dependencies.py tests/metrics/test_quality.py tests/test_checkpoints.py \
	tests/test_train.py tests/test_eval_commands.py tests/test_cli_errors.py tests/test_resume.py
test-minimum:
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet $(TORCH_SPEC)
	grep -v '^torch==' .ci/minimum.txt > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/constraints.txt -e '.[dev]'
	$(MIN_VENV)/bin/python -m pytest -k "not ddp" $(SMOKE_TESTS) $(PYTEST_ARGS)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python benchmarks/data_loader.py
	$(BIN)/python benchmarks/reference_cache.py
	$(BIN)/python benchmarks/pixelcnn_sampling.py
	$(BIN)/python benchmarks/gan_step.py
	$(BIN)/python benchmarks/cpu_threads.py

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .ruff_cache
