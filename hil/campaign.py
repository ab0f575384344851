"""Many SIL runs over a process pool: (scenario, estimator, seed) in, summaries out, in order.

Each run is independent and deterministic, so the pool's size changes only the wall time.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ground.scenarios import load
from hil import sil


@dataclass(frozen=True)
class Job:
    scenario: str  # built-in name or path
    estimator: str = "terrain-aware"
    seed: int = 0
    record: bool = False  # keep the 10 Hz trace in the result


def run_one(job: Job) -> sil.SilResult:
    result = sil.run(load(job.scenario), job.estimator, job.seed, record=job.record)
    result.terrain = None  # not worth pickling back
    return result


def run_many(jobs: Iterable[Job], workers: int = 2) -> list[sil.SilResult]:
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        return [run_one(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run_one, jobs))


def summaries(results: Iterable[sil.SilResult]) -> list[dict[str, Any]]:
    return [r.summary for r in results]
