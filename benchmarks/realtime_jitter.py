"""Benchmark: start jitter of the real-time executive at 100 Hz.

Run:  .venv/bin/python benchmarks/realtime_jitter.py [--seconds 60]   (or: make bench-realtime)

The full flight wiring (simulated devices, monotonic clock with absolute deadlines) runs
for the given time; a probe task first in the table records how late each slot started
(now - deadline). Slips are the executive's own count. Goal (issue): p99 <= 500 us, 0 slips.
Peer in the same run: the same probe on a bare `time.sleep(period)` loop, the naive timer
that drifts.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flight import wiring
from flight.executive.scheduler import ScheduledTask


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def naive_sleep_loop(seconds: float, period_s: float = 0.01) -> list[float]:
    """The peer: sleep(period) after each tick; lateness against the ideal schedule."""
    start = time.monotonic_ns()
    late = []
    for k in range(int(seconds / period_s)):
        late.append((time.monotonic_ns() - (start + int(k * period_s * 1e9))) / 1000.0)
        time.sleep(period_s)
    return late


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    system = wiring.build({"executive": {"clock": "realtime"},
                           "devices": {"altitude_m": 1.0e6, "vertical_speed_mps": 0.0},
                           "estimator": {"initial_altitude_m": 1.0e6, "initial_vertical_speed_mps": 0.0}})
    exe = system.executive
    clock = system.clock
    world = system.devices.world
    late_us: list[float] = []

    def probe(deadline_ns: int) -> None:
        late_us.append((clock.now_ns() - deadline_ns) / 1000.0)
        world.advance_to(deadline_ns - exe.start_ns)  # the bench world keeps pace with real time

    exe.add_task(ScheduledTask("probe", probe, 1, 0, 100.0), index=0)
    gc.collect()
    gc.freeze()  # as on the flight computer: no full collections of start-up objects
    exe.run(slots=int(args.seconds * 100))
    naive = naive_sleep_loop(min(args.seconds, 10.0))
    p50, p99, worst = percentile(late_us, 0.5), percentile(late_us, 0.99), max(late_us)
    print(f"executive: {len(late_us)} slots over {args.seconds:.0f} s, start lateness "
          f"p50 {p50:.0f} us  p99 {p99:.0f} us  max {worst:.0f} us  slips {exe.stats.total_slips}  "
          f"skipped {exe.stats.slots_skipped}")
    print(f"naive sleep loop ({len(naive)} ticks): p99 {percentile(naive, 0.99):.0f} us  "
          f"final drift {naive[-1]:.0f} us  (executive p99 / naive p99 = "
          f"{p99 / max(percentile(naive, 0.99), 1e-9):.3f})")
    print(f"realtime_jitter: p99_us={p99:.0f} max_us={worst:.0f} slips={exe.stats.total_slips}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
