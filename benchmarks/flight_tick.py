"""Benchmark: one full 100 Hz tick of the flight executive with every task due.

Run:  .venv/bin/python benchmarks/flight_tick.py          (or: make bench)

The real wiring (flight/wiring.py) with simulated devices and a lockstep clock, every task
moved to offset 0 and rate 100 Hz so that each timed slot runs all of them: estimation
(cffi kernel), FDIR, guidance, housekeeping telemetry encode (spacepackets), command
check, health. Time is the executive's own slot execution (perf_counter_ns), the world
step is outside it. Goal (issue): median <= 50 us. Peer in the same run: one bare
housekeeping encode, the largest single piece.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flight import wiring

SLOTS = 20_000


def main() -> int:
    config = {
        "executive": {"clock": "lockstep"},
        "schedule": {name: {"divisor": 1, "offset": 0} for name in wiring.DEFAULT_SCHEDULE},
        "devices": {"altitude_m": 1.0e6, "vertical_speed_mps": 0.0},  # far up: never lands
        "estimator": {"initial_altitude_m": 1.0e6, "initial_vertical_speed_mps": 0.0},
    }
    system = wiring.build(config)
    system.guidance.arm()
    system.guidance.start_descent()
    exe = system.executive
    exe.start()
    durations = []
    for slot in range(SLOTS):
        system.clock.sleep_until(exe.slot_deadline(slot))  # steps the simulated world
        t0 = time.perf_counter_ns()
        exe.run_slot(slot)
        durations.append((time.perf_counter_ns() - t0) / 1000.0)
    durations = durations[100:]  # warm-up
    durations.sort()
    median = statistics.median(durations)
    p99 = durations[int(0.99 * len(durations))]
    hk = range(2000)
    t0 = time.perf_counter_ns()
    values = wiring.housekeeping(system)
    for _ in hk:
        system.encoder.housekeeping(1.0, values)
    hk_us = (time.perf_counter_ns() - t0) / 1000.0 / len(hk)
    per_task = ", ".join(f"{n} {s.mean_us:.1f}" for n, s in exe.task_stats.items())
    print(f"tasks per tick: {len(exe.schedule)} ({per_task} us mean)")
    print(f"housekeeping encode alone: {hk_us:.1f} us   tick/encode = {median / hk_us:.1f}x")
    print(f"full tick: median {median:.1f} us  p99 {p99:.1f} us  max {durations[-1]:.1f} us (goal: median <= 50)")
    print(f"flight_tick: median_us={median:.1f} p99_us={p99:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
