# facezoo — the README's two commands are `make train` and `make test`.
# Each (re)creates .venv and installs the package (editable, with the dev extras) when it is
# missing or older than setup.cfg / pyproject.toml, then does its job.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.facezoo-installed
RUN_DIR ?= runs/make_train
BENCH_FILE ?= docs/benchmarks.md
OFFICIAL_DIR ?=
BENCH_ARGS ?=
NET_BENCHES ?= stylegan2 psp
NET_BENCH_ARGS ?=
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
	$(PY) -m pytest -q --durations=15

# `make bench`: scripts/bench.py for the renderer and every method it lists (`scripts/bench.py --list`), appended
# to $(BENCH_FILE). Official side-by-side rows for a method when FACEZOO_OFFICIAL_<METHOD> (e.g.
# FACEZOO_OFFICIAL_PSGAN=/src/PSGAN) or OFFICIAL_DIR/<method> (OFFICIAL_DIR=/src/official with psgan/, gannotation/)
# is a checkout of its official repository; without one the section says the rows were skipped. Rows per method:
# inference at batch 1 and 8 (fp32, the fast path, the official network), the training step at the CPU preset
# (eager and compile=true), the preset's training loop with its share of time waiting for data, and the training
# step at the method's real size (beside the official trainer's where it runs here: PSGAN).
# More options: BENCH_ARGS="--device cuda --repeats 5".
# Then the network benchmarks at the official sizes (scripts/bench_<net>.py: StyleGAN2's generator at 256 and 1024 px
# and its training step at 64 and 256 px beside rosinality's code, FACEZOO_OFFICIAL_STYLEGAN2 or
# OFFICIAL_DIR/stylegan2; pSp's encoder + decoder at 256 and 1024 px output, batch 1 and 8, and its training step at
# 256 px beside the official models/psp.py, FACEZOO_OFFICIAL_PSP or OFFICIAL_DIR/psp); their options:
# NET_BENCH_ARGS="--device cuda".
bench: $(STAMP)  ## speed and memory of every method (+ official rows), appended to docs/benchmarks.md
	$(PY) scripts/bench.py model=renderer --append $(BENCH_FILE) $(BENCH_ARGS)
	@set -e; for m in $$($(PY) scripts/bench.py --list); do \
	  dir=$$(printenv FACEZOO_OFFICIAL_$$(echo $$m | tr a-z A-Z) || true); \
	  if [ -z "$$dir" ] && [ -n "$(OFFICIAL_DIR)" ] && [ -d "$(OFFICIAL_DIR)/$$m" ]; then dir="$(OFFICIAL_DIR)/$$m"; fi; \
	  echo "$(PY) scripts/bench.py model=$$m $${dir:+--official $$dir} --variants --preset --compile --append $(BENCH_FILE) $(BENCH_ARGS)"; \
	  $(PY) scripts/bench.py model=$$m $${dir:+--official "$$dir"} --variants --preset --compile --append $(BENCH_FILE) $(BENCH_ARGS); \
	done
	@set -e; for n in $(NET_BENCHES); do \
	  dir=$$(printenv FACEZOO_OFFICIAL_$$(echo $$n | tr a-z A-Z) || true); \
	  if [ -z "$$dir" ] && [ -n "$(OFFICIAL_DIR)" ] && [ -d "$(OFFICIAL_DIR)/$$n" ]; then dir="$(OFFICIAL_DIR)/$$n"; fi; \
	  echo "$(PY) scripts/bench_$$n.py $${dir:+--official $$dir} --append $(BENCH_FILE) $(NET_BENCH_ARGS)"; \
	  $(PY) scripts/bench_$$n.py $${dir:+--official "$$dir"} --append $(BENCH_FILE) $(NET_BENCH_ARGS); \
	done

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check src tests scripts

format: $(STAMP)  ## ruff format
	$(PY) -m ruff format src tests scripts

clean:  ## remove run outputs and caches (keeps .venv)
	rm -rf runs outputs multirun lightning_logs .pytest_cache .ruff_cache
