"""Campaign runners for the rigs in this folder, and the plain SIL pool the tests use.

A campaign runner is `runner(spec: RunSpec) -> summary dict` (ground/campaign/execution.py).
`sil_runner` flies a spec in this process with the real flight executive (hil/sil.py);
`sil_trace` re-flies one with the 10 Hz trace for a report. `runner_for(rig, emulator)` picks
the runner of a rig: the process-separated SIL rig and the bench provide theirs as
`hil.rig.campaign_runner(rig, emulator)`; until that exists they are refused with a clear
message.

`run_many(jobs, workers)`: independent deterministic runs of built-in scenarios over a
process pool, (scenario, estimator, seed) in, results out, in order (the SIL tests' pool).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ground.campaign.execution import RigUnavailable, Runner
from ground.campaign.plan import RunSpec
from ground.scenarios import Scenario, load
from ground.sim.terrain import Terrain
from hil import sil


def navigation_error(scenario: Scenario, estimator: str, terrain: Terrain, seed: int) -> dict[str, float]:
    """What the flight was told at descent start minus the truth (drawn from the run's seed
    by hil/sil.py): the initial navigation error of this run, for the campaign's scatter plots."""
    told = sil.flight_config(scenario, estimator, terrain, seed)["estimator"]
    ini = scenario.initial
    return {
        "altitude_m": round(told["initial_altitude_m"] - ini.altitude_m, 3),
        "vertical_speed_mps": round(told["initial_vertical_speed_mps"] - ini.vertical_speed_mps, 4),
        "horizontal_speed_mps": round(told["horizontal_speed_mps"] - ini.horizontal_speed_mps, 4),
        "terrain_prior_m": round(told["initial_terrain_m"] - terrain.elevation(ini.downrange_m), 3),
    }


def sil_runner(spec: RunSpec) -> dict[str, Any]:
    """The in-process SIL rig: one run, no trace (a campaign keeps summaries)."""
    scenario = spec.build_scenario()
    result = sil.run(scenario, spec.estimator, spec.sim_seed, record=False)
    summary = dict(result.summary)
    assert result.terrain is not None
    summary["navigation_error"] = navigation_error(scenario, spec.estimator, result.terrain, spec.sim_seed)
    return summary


@dataclass
class Traced:
    columns: tuple[str, ...]
    trace: list[tuple]
    events: list[tuple[float, str, tuple[float, ...]]]
    summary: dict[str, Any]


def sil_trace(spec: RunSpec) -> Traced:
    """Re-fly a run with its 10 Hz trace (runs are deterministic: the same flight)."""
    result = sil.run(spec.build_scenario(), spec.estimator, spec.sim_seed, record=True)
    return Traced(sil.TRACE_COLUMNS, result.trace, result.events, result.summary)


def runner_for(rig: str, emulator: str | None = None) -> Runner:
    """The runner of `rig`: `sil` (this process), or what the HIL rig provides for
    `sil-process` and `bench` (`hil.rig.campaign_runner(rig, emulator)`)."""
    if rig == "sil":
        return sil_runner
    try:
        module = importlib.import_module("hil.rig")
    except ImportError:
        module = None
    factory = getattr(module, "campaign_runner", None)
    if factory is None:
        raise RigUnavailable(
            f"--rig {rig}: the process-separated HIL rig does not provide a campaign runner yet "
            "(hil.rig.campaign_runner(rig, emulator) -> runner(spec) -> summary); use --rig sil meanwhile")
    return factory(rig, emulator)


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
