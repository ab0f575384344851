"""Benchmark: one altitude-filter step through cffi against FilterPy and a bare cffi call.

Run:  .venv/bin/python benchmarks/filter_step.py      (or: make bench)

All figures are measured in this run on this machine (median of several repeats):
  per_step_ns   predict + range update, one `alt_step` call from Python through cffi
  noop_ns       a cffi call that does nothing (the floor for any Python->C call)
  filterpy_ns   FilterPy KalmanFilter predict + update, same 4-state model, F, Q, H, R
  batch         `alt_run_batch` over a descent (100 Hz IMU steps, 10 Hz ranges) and over
                steps that all carry a range
Goals (issue): speedup_vs_filterpy >= 150, per_step_ns <= 3 x noop_ns, batch >= 10 M steps/s.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filterpy.kalman import KalmanFilter
from flight._altfilter import ffi, lib

from flight.estimation.altitude_filter import AltitudeFilter
from ground.filter_batch import BatchRunner
from ground.filter_profiles import descent_profile

REPEATS = 7
DT, FORCE, VX, SIGMA = 0.01, 1.62, 0.0, 0.8


def hover_ranges(n: int) -> list[float]:
    rng = np.random.default_rng(0)
    return [float(v) for v in np.round(1000.0 + rng.normal(0.0, SIGMA, n), 2)]


def time_per_call(fn, n: int) -> float:
    runs = []
    for _ in range(REPEATS):
        gc.disable()
        t0 = time.perf_counter_ns()
        fn(n)
        runs.append((time.perf_counter_ns() - t0) / n)
        gc.enable()
    return statistics.median(runs)


def bench_cffi_step(n: int) -> float:
    filt = AltitudeFilter("terrain-aware", x0=(1000.0, 0.0, 0.0, 0.0))
    f, step = filt.handle, lib.alt_step
    ranges = hover_ranges(n)

    def loop(m: int, dt=DT, force=FORCE, vx=VX, sigma=SIGMA) -> None:
        for r in ranges[:m]:
            step(f, dt, force, vx, 1, r, 1.0, sigma, 0)

    per = time_per_call(loop, n)
    accepted = filt.sensor_counts(0)["accepted"]
    assert accepted > 0.9 * n * REPEATS, "benchmark left the accepted path"
    return per


def bench_noop(n: int) -> float:
    f = AltitudeFilter().handle
    noop = lib.alt_noop
    ranges = hover_ranges(n)

    def loop(m: int, dt=DT, force=FORCE, vx=VX, sigma=SIGMA) -> None:  # same loop, same locals
        for _r in ranges[:m]:
            noop(f)

    return time_per_call(loop, n)


def bench_filterpy(n: int) -> float:
    filt = AltitudeFilter("none", x0=(1000.0, 0.0, 0.0, 0.0))
    F, Q, u = ffi.new("double[16]"), ffi.new("double[16]"), ffi.new("double[4]")
    lib.alt_process_model(filt.handle, DT, FORCE, VX, F, Q, u)
    kf = KalmanFilter(dim_x=4, dim_z=1, dim_u=1)
    kf.F = np.array(list(F)).reshape(4, 4)
    kf.Q = np.array(list(Q)).reshape(4, 4)
    kf.B = np.array(list(u)).reshape(4, 1)
    kf.H = np.array([[1.0, 0.0, 0.0, -1.0]])
    kf.R = np.array([[SIGMA**2]])
    kf.x = np.array([[1000.0], [0.0], [0.0], [0.0]])
    kf.P = np.diag([1e4, 1.0, 1e-4, 1e4])
    ranges = hover_ranges(n)

    def loop(m: int) -> None:
        for r in ranges[:m]:
            kf.predict(u=1.0)
            kf.update(r)

    return time_per_call(loop, n)


def bench_batch(all_ranges: bool) -> float:
    prof = descent_profile(2000.0, 15000.0, -5.0, horizontal_speed_mps=300.0, seed=3)  # 200k steps
    inputs = prof.inputs()
    if all_ranges:
        inputs["valid"] = np.ones_like(inputs["valid"])
        inputs["range_m"] = np.round(prof.true_hat_m + np.random.default_rng(1).normal(0, 1, len(prof.dt_s)), 2)
    runner = BatchRunner()
    n = len(prof.dt_s)
    rates = []
    for _ in range(REPEATS):
        filt = AltitudeFilter("terrain-aware", x0=(15000.0, -5.0, 0.0, 0.0))
        t0 = time.perf_counter_ns()
        runner.run(filt, **inputs, copy=False)
        rates.append(n / ((time.perf_counter_ns() - t0) * 1e-9) / 1e6)
    return statistics.median(rates)


def main() -> int:
    n = 200_000
    step_ns = bench_cffi_step(n)
    noop_ns = bench_noop(n)
    fp_ns = bench_filterpy(20_000)
    batch_mix = bench_batch(all_ranges=False)
    batch_all = bench_batch(all_ranges=True)
    speedup = fp_ns / step_ns
    print(f"cffi alt_step (predict+update): {step_ns:8.1f} ns/step")
    print(f"cffi no-op call:                {noop_ns:8.1f} ns/call   step/no-op = {step_ns / noop_ns:.2f}x (goal <= 3)")
    print(f"FilterPy predict+update:        {fp_ns:8.1f} ns/step   speedup = {speedup:.0f}x (goal >= 150)")
    print(f"batch, 100 Hz steps, 10 Hz LRF: {batch_mix:8.2f} M steps/s (goal >= 10)")
    print(f"batch, a range every step:      {batch_all:8.2f} M steps/s")
    print(f"filter_step: speedup_vs_filterpy={speedup:.0f} per_step_ns={step_ns:.0f} "
          f"noop_ns={noop_ns:.0f} batch_msteps_per_s={batch_mix:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
