# ctbench — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BUDGET ?= paper
PROTOCOL ?= paper
TABLES := 2 3 4 ed5 ed6 ed8 ed9
SWEEP ?= walker2d_cfc
MODEL ?= my_cell
TABLE ?= 3
SEARCHPATH ?= examples/my_cell
# Real data for tests and runs: ../shared/data when it exists, unless CTBENCH_DATA_MIRROR is set.
export CTBENCH_DATA_MIRROR ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)

.PHONY: help install test test-all data data-list tables reproduce-all sweep compare reproduce-gnode bench reproduce-table-1 clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 24

install:  ## create .venv and install ctbench with its dev extras (CPU torch unless CUDA is present)
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	@# torch first: a local wheel if the machine has one (pip's find-links), else PyPI's default
	@# build where CUDA is present, else the CPU build. Its dependencies come with the next step.
	@# To use another torch build, install it into .venv before `make install`.
	$(PY) -m pip install --no-index --no-deps "torch==2.13.0" \
	  || { command -v nvidia-smi >/dev/null && $(PY) -m pip install "torch==2.13.0"; } \
	  || $(PY) -m pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
	$(PY) -m pip install -e ".[dev]"

test:  ## the fast test suite (no network, no real data needed)
	WANDB_MODE=disabled $(PY) -m pytest -q

test-all:  ## every test, the slow and real-data ones too (uses CTBENCH_DATA_MIRROR)
	WANDB_MODE=disabled $(PY) -m pytest -q -m "slow or not slow"

data:  ## download, verify and cache every dataset that can be had
	$(PY) -m ctbench.cli data prepare

data-list:  ## print each dataset's state: ready, missing (and how to get it) or corrupt
	$(PY) -m ctbench.cli data list

reproduce-table-%:  ## re-run a paper table (BUDGET=smoke|quick|short|paper, PROTOCOL=paper|clean, optional ROWS=cfc,lstm COLUMN=equidistant) and render it
	$(PY) -m ctbench.tables reproduce $* --budget $(BUDGET) --protocol $(PROTOCOL) $(if $(ROWS),--rows $(ROWS)) $(if $(COLUMN),--column $(COLUMN))

reproduce-all: $(addprefix reproduce-table-,$(TABLES))  ## every table

# `make tables` without BUDGET/PROTOCOL renders each table at the budget and protocol its records have
EXPLICIT = $(filter command line environment,$(origin $(1)))
tables:  ## re-render every table from the run records only (no training; BUDGET/PROTOCOL: default, what the records have)
	@for t in $(TABLES); do $(PY) -m ctbench.tables render $$t $(if $(call EXPLICIT,BUDGET),--budget $(BUDGET)) $(if $(call EXPLICIT,PROTOCOL),--protocol $(PROTOCOL)); done

sweep:  ## Optuna sweep conf/sweep/$(SWEEP).yaml (TRIALS=n, TIMEOUT=s, STORAGE=url); resumes if killed
	$(PY) -m ctbench.sweep $(SWEEP) $(if $(TRIALS),--trials $(TRIALS)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(STORAGE),--storage $(STORAGE))

compare:  ## your model (MODEL=<config> in SEARCHPATH=<folder>) against a published table (TABLE=<id>)
	$(PY) -m ctbench.compare --model $(MODEL) --table $(TABLE) $(if $(SEARCHPATH),--searchpath $(SEARCHPATH)) --budget $(BUDGET) --protocol $(PROTOCOL)

reproduce-gnode:  ## gnODE flip-flop grid (BUDGET=smoke|quick|cpu1h|paper, conf/gnode/flipflop.yaml): runs, 2-bit attractor figures, results/tables/gnode_flipflop.md
	$(PY) -m ctbench.gnode_grid reproduce --budget $(BUDGET)

bench:  ## speed report -> results/bench/speed.{md,csv,png} (BENCH=smoke: tiny, seconds; DEVICE=auto|cpu|cuda; NOTE=conditions)
	$(PY) -m ctbench.bench speed $(if $(filter smoke,$(BENCH)),--smoke --out results/bench/smoke) --device $(or $(DEVICE),auto) $(if $(NOTE),--note "$(NOTE)")

reproduce-table-1:  ## Nature Table 1 measured: time vs n, k, p, fitted exponents -> results/bench/table1.{md,csv,png}
	$(PY) -m ctbench.bench table1 $(if $(filter smoke,$(BENCH)),--smoke --out results/bench/smoke) --device $(or $(DEVICE),auto) $(if $(NOTE),--note "$(NOTE)")

clean:  ## remove caches and logs (keeps results/runs and data/)
	rm -rf .pytest_cache results/logs outputs multirun
