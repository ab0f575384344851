"""Running a campaign: the runner interface, three ways to spread runs, and the one loop.

A runner is any callable `runner(spec: RunSpec) -> dict` that flies one run and returns its
summary (the fields of summary.json). The in-process SIL runner lives in hil/campaign.py; a
process-separated SIL rig or a bench provides its own. A runner raises `CampaignAbort` when
it cannot go on (the bench lost its board): the run is not stored and the campaign stops,
to be resumed. Any other exception is the run's result: stored with outcome "error" and the
message, so a run that breaks the flight software is seen, not retried for ever.

The loop (`run_campaign`) asks the store what is missing, hands those specs to a backend and
stores each result as it arrives, committed before the next. Whatever the backend (one
process, a local pool, a Dask cluster) the store is the only state: kill it anywhere and
`run_campaign` again runs exactly what is missing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, cast

from ground.campaign.plan import Campaign, RunSpec
from ground.campaign.store import Store

Runner = Callable[[RunSpec], dict[str, Any]]


class CampaignAbort(RuntimeError):
    """Raised by a runner that cannot fly (board gone, emulator closed): stop, store nothing."""


class RigUnavailable(RuntimeError):
    """The rig asked for does not provide a runner (yet)."""


class BackendUnavailable(RuntimeError):
    """The cluster asked for cannot be reached."""


def error_summary(spec: RunSpec, exc: BaseException) -> dict[str, Any]:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return {"scenario": spec.scenario, "estimator": spec.estimator, "seed": spec.sim_seed, "outcome": "error",
            "error": f"{type(exc).__name__}: {exc}{where}"}


def fly(runner: Runner, spec: RunSpec) -> tuple[RunSpec, dict[str, Any]]:
    """One run, anywhere (this process, a pool process, a Dask worker)."""
    try:
        summary = runner(spec)
    except CampaignAbort:
        raise
    except Exception as exc:  # noqa: BLE001 - the run's own failure is its result, stored
        summary = error_summary(spec, exc)
    return spec, summary


class Backend(Protocol):
    def map(self, runner: Runner, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
        """Results as they finish, in any order."""
        ...

    def describe(self) -> str: ...


class Sequential:
    """One run after another in this process: the bench (one board, real time), `--workers 1`."""

    def map(self, runner: Runner, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
        for spec in specs:
            yield fly(runner, spec)

    def describe(self) -> str:
        return "sequential, in this process"


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _worker_start(parent_pid: int) -> None:
    """In each pool process: Ctrl-C is the parent's to handle (the pool stops with it), and a
    parent that died (kill -9, power cut of a laptop that came back) takes its workers along
    instead of leaving them to fly runs nobody will store."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class LocalPool:
    """A process pool on this machine. At most `window` runs are handed out at a time, so an
    interrupted campaign has little in flight and memory stays flat for any campaign size."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or available_cores()
        self.window = 2 * self.workers

    def map(self, runner: Runner, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
        import multiprocessing

        # spawn, not fork: the parent has threads (the progress bar), and a fork copies their locks
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_start, initargs=(os.getpid(),))
        try:
            yield from _windowed(lambda s: pool.submit(fly, runner, s), iter(specs), self.window,
                                 lambda fs: wait(fs, return_when=FIRST_COMPLETED)[0])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"local process pool, {self.workers} worker(s)"


class DaskCluster:
    """An existing Dask cluster (`dask scheduler` + `dask worker`s): runs go to its workers,
    results come back here to be stored. The workers need this package installed."""

    def __init__(self, address: str) -> None:
        self.address = address

    def map(self, runner: Runner, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
        from distributed import Client
        from distributed import wait as dask_wait

        client = Client(self.address, timeout="30s")
        try:
            # a synchronous Client answers directly (its methods are typed for the async one too)
            threads = max(1, sum(cast(dict[str, int], client.nthreads()).values()))

            def pick(fs):
                return cast(Any, dask_wait(list(fs), return_when="FIRST_COMPLETED")).done

            yield from _windowed(lambda s: client.submit(fly, runner, s, pure=False), iter(specs), 2 * threads, pick)
        finally:
            client.close()

    def probe(self, timeout_s: float = 5.0) -> int:
        """Connect once and count the cluster's worker threads; an unreachable scheduler or a
        cluster with no worker is an error now, before the campaign starts."""
        from distributed import Client

        try:
            with Client(self.address, timeout=f"{timeout_s}s") as client:
                threads = sum(cast(dict[str, int], client.nthreads()).values())
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendUnavailable(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        if threads == 0:
            raise BackendUnavailable(f"the Dask scheduler at {self.address} has no worker")
        return threads

    def describe(self) -> str:
        return f"Dask cluster at {self.address}"


def _windowed(submit: Callable[[RunSpec], Any], specs: Iterator[RunSpec], window: int,
              pick: Callable[[set], set]) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
    pending: set[Future] = set()
    try:
        for spec in specs:
            pending.add(submit(spec))
            if len(pending) >= window:
                done = pick(pending)
                pending -= done
                for f in done:
                    yield f.result()
        while pending:
            done = pick(pending)
            pending -= done
            for f in done:
                yield f.result()
    finally:
        for f in pending:
            f.cancel()


def missing(campaign: Campaign, store: Store) -> list[RunSpec]:
    """The runs the store does not hold yet, in the campaign's order."""
    done = store.done()
    return [campaign.spec(*k) for k in campaign.run_keys() if k not in done]


def run_campaign(campaign: Campaign, store: Store, runner: Runner, backend: Backend,
                 on_result: Callable[[RunSpec, dict[str, Any]], None] | None = None) -> int:
    """Fly what is missing, storing each run as it finishes. Returns the number flown now."""
    flown = 0
    for spec, summary in backend.map(runner, missing(campaign, store)):
        store.put(spec.scenario, spec.estimator, spec.run, spec.dispersion, summary)
        flown += 1
        if on_result is not None:
            on_result(spec, summary)
    return flown
