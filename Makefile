# bargan: two commands do everything on a fresh machine.
#   make run   - builds the demo corpus and runs every stage with DVC (dvc repro)
#   make test  - runs the test suite
# Both create .venv and install what is missing; both are safe to run twice.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bargan-installed
export DVC_NO_ANALYTICS := 1
# Stage commands call `python`; it must be the project's.
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

.PHONY: setup run test lint snakemake clean-outputs mlflow-server

setup: $(STAMP) .dvc/config .dvc/plots/offline.html
	@scripts/ensure_system_deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

.dvc/config: | $(STAMP)
	$(BIN)/dvc init --quiet $(if $(wildcard .git),,--no-scm)
	$(BIN)/dvc config core.analytics false
	$(BIN)/dvc config plots.html_template plots/offline.html

# `dvc plots show` offline: DVC's page with vega inlined (.dvc/config names it)
.dvc/plots/offline.html: | $(STAMP)
	$(BIN)/python -m pipeline.dvc_plots --out $@

run: setup
	$(BIN)/dvc repro
	$(BIN)/python -m pipeline.summary

snakemake: setup
	$(BIN)/snakemake --cores 8 train

test: setup
	@scripts/ensure_system_deps.sh --test
	$(BIN)/python -m pytest

# The shared tracking server (scripts/mlflow_server.sh: store in mlflow-server/, port 5000).
mlflow-server: setup
	scripts/mlflow_server.sh

lint: setup
	$(BIN)/ruff check pipeline tests bench workflow
