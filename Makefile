# Two entry points (see README): `make run` and `make test`.
# Everything is installed into .venv; nothing touches the system Python.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= profiles/local
CONFIG ?= config/config.yaml
# Extra arguments for snakemake, e.g. `make run SMK_ARGS="-n"`.
SMK_ARGS ?=
# Training jobs run side by side by `make run` (the profile's `gpu` resource caps them; the
# demo's jobs use one thread each, config runtime.threads).
TRAIN_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: run test lint format venv clean-results dag help

help:
	@echo "make run    set up .venv and run the whole pipeline on the demo suite ($(CONFIG))"
	@echo "make test   set up .venv with test extras and run the test suite"
	@echo "make lint   ruff lint + format check, snakefmt check, snakemake --lint"

# torch first, pinned, so that pip never resolves a multi-GB CUDA build on a CPU machine
# (see scripts/install_torch.sh); then the package itself in editable mode.
$(BIN)/.installed: pyproject.toml scripts/install_torch.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	sh scripts/install_torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

venv: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/snakemake --profile $(PROFILE) --configfile $(CONFIG) --resources gpu=$(TRAIN_JOBS) \
	    $(SMK_ARGS) -- all

test: $(BIN)/.installed-test
	$(BIN)/python -m pytest

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow
	$(BIN)/python -m snakemake --lint --cores 1

format: $(BIN)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

dag: $(BIN)/.installed
	$(BIN)/snakemake --configfile $(CONFIG) --rulegraph dot -- all 2>/dev/null \
	    | $(BIN)/maestro report-rulegraph --markdown README.md

clean-results:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .snakemake
