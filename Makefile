# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs the project (building the C kernel) on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench bench-sil bench-campaign bench-realtime lint clean

$(STAMP): pyproject.toml setup.py c_kernels/build.py c_kernels/*.c c_kernels/*.h
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ground,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lander demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/filter_step.py
	$(BIN)/python benchmarks/flight_tick.py

bench-sil: $(STAMP)
	$(BIN)/python benchmarks/sil_speed.py

bench-campaign: $(STAMP)
	$(BIN)/python benchmarks/campaign_throughput.py

bench-realtime: $(STAMP)
	$(BIN)/python benchmarks/realtime_jitter.py --seconds 60

lint: $(STAMP)
	$(BIN)/ruff check flight ground hil tests benchmarks
	$(BIN)/pyright

clean:
	rm -rf $(VENV) build *.egg-info sim-out flight/_altfilter*.so flight/_altfilter.c ground/_truth*.so ground/_truth.c
