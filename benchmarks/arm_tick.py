"""Benchmark: the flight tick on aarch64 CPython 3.11 under qemu-user, against the native tick,
in the same run.

Run:  .venv/bin/python benchmarks/arm_tick.py          (or: make bench-arm)

Runs benchmarks/flight_tick.py twice: with this Python (x86-64, the checkout's kernel) and with
the aarch64 CPython under qemu-aarch64 with the flight wheel installed (board/arm.py), and prints
both medians and p99s and their ratio. qemu-user translates every guest instruction, so the ratio
is the emulation's cost on this machine, not a Raspberry Pi's speed: measure that on the Pi.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from board import arm

SCRIPT = ROOT / "benchmarks" / "flight_tick.py"
# flight_tick.py puts the checkout first on sys.path; under qemu the wheel's flight must win, so
# it is imported before the script runs (the checkout's flight/ holds the x86-64 kernel).
ARM_RUNNER = ("import flight, flight.wiring, runpy, sys\n"
              f"sys.argv = [{str(SCRIPT)!r}]\n"
              f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")


def _figures(out: str) -> tuple[float, float]:
    match = re.search(r"flight_tick: median_us=([\d.]+) p99_us=([\d.]+)", out)
    if not match:
        raise SystemExit(f"no figures in the benchmark's output:\n{out}")
    return float(match.group(1)), float(match.group(2))


def main() -> int:
    try:
        target = arm.prepare()
    except arm.ArmError as exc:
        print(f"arm_tick: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    native = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    native_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emulated = target.run("-c", ARM_RUNNER, capture_output=True, text=True, check=True, timeout=1800).stdout
    emulated_s = time.perf_counter() - t0
    (nm, n99), (am, a99) = _figures(native), _figures(emulated)
    print(f"x86-64 native          : median {nm:8.1f} us  p99 {n99:8.1f} us  (whole benchmark {native_s:5.1f} s)")
    print(f"aarch64 under qemu-user: median {am:8.1f} us  p99 {a99:8.1f} us  (whole benchmark {emulated_s:5.1f} s)")
    print(f"emulated / native      : median x{am / nm:.1f}  p99 x{a99 / n99:.1f}  "
          f"(100 Hz budget 10,000 us: {am / 100:.1f}% used under emulation)")
    print(f"arm_tick: native_median_us={nm:.1f} arm_median_us={am:.1f} ratio={am / nm:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
