# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs the project (building the C kernel) on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench bench-sil bench-campaign bench-realtime bench-arm bench-hil lint clean board-deps board-lint pico-flash

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

bench-arm: $(STAMP)
	$(BIN)/python benchmarks/arm_tick.py

bench-hil: $(STAMP)
	$(BIN)/python benchmarks/hil_latency.py

lint: $(STAMP)
	$(BIN)/ruff check flight ground hil tests benchmarks
	$(BIN)/pyright

# The Pico firmware's checks: MicroPython (WebAssembly, npm) and the MicroPython type stubs, both
# in gitignored folders under board/. Without them those tests skip locally (CI installs them).
board-deps: $(STAMP)
	cd board && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m pip install --quiet --target board/typings --no-deps --upgrade \
		micropython-rp2-rpi-pico-stubs micropython-stdlib-stubs

board-lint: $(STAMP)
	cd board && ../$(BIN)/pyright -p pyrightconfig.json

# Copy the firmware to a Pico on USB: the emulator package compiled to .mpy (v6.3; the Pico then
# does not spend its RAM compiling) at the device root, then main.py.
pico-flash: $(STAMP)
	$(BIN)/lander flash pico

clean:
	rm -rf $(VENV) .cache build *.egg-info sim-out flight/_altfilter*.so flight/_altfilter.c ground/_truth*.so ground/_truth.c
