# facezoo — the README's two commands are `make train` and `make test`.
# Each (re)creates .venv and installs the package (editable, with the dev extras) when it is
# missing or older than setup.cfg / pyproject.toml, then does its job.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.facezoo-installed
RUN_DIR ?= runs/make_train
export OMP_NUM_THREADS ?= 2

.PHONY: help install train test test-fast bench lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,launchers,sweep]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install facezoo (editable, dev extras)

train: $(STAMP)  ## train the default model (TP-GAN, CPU preset) on built-in synthetic faces
	$(PY) -m facezoo.train experiment=tpgan_cpu hydra.run.dir=$(RUN_DIR)
	@echo "checkpoint: $(RUN_DIR)/checkpoints/last.ckpt  samples: $(RUN_DIR)/samples/  metrics: $(RUN_DIR)/metrics.json"

test: $(STAMP)  ## run the whole test suite (CPU)
	$(PY) -m pytest -q

bench: $(STAMP)  ## measure speed and memory, append to docs/benchmarks.md
	$(PY) scripts/bench.py --append docs/benchmarks.md
	$(PY) scripts/bench_psgan.py --append docs/benchmarks.md
	$(PY) scripts/bench_gannotation.py --append docs/benchmarks.md

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check src tests scripts

format: $(STAMP)  ## ruff format
	$(PY) -m ruff format src tests scripts

clean:  ## remove run outputs and caches (keeps .venv)
	rm -rf runs outputs multirun lightning_logs .pytest_cache .ruff_cache
