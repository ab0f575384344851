"""A throwaway Dask cluster on this machine, as real processes: one `dask scheduler` and
`workers` x `dask worker` (one thread each, no nanny, no dashboard) on 127.0.0.1, each started
here and stopped by its PID (SIGTERM, then SIGKILL after a grace period), even when the body
fails. For the tests and the benchmark of `lander campaign --scheduler`, and for trying it.

    with DaskProcesses(workers=2) as address:
        ... lander campaign ... --scheduler {address}
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_command() -> list[str]:
    """The `dask` command of this interpreter's environment."""
    exe = Path(sys.executable).parent / "dask"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]


class DaskProcesses:
    def __init__(self, workers: int = 1, log_dir: Path | None = None, start_timeout_s: float = 90.0) -> None:
        self.workers = workers
        self.log_dir = log_dir
        self.start_timeout_s = start_timeout_s
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
        # own session: a stray child of theirs (there should be none) cannot outlive the group
        p = subprocess.Popen([*dask_command(), *args], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def __enter__(self) -> str:
        try:
            port = free_port()
            self.address = f"tcp://127.0.0.1:{port}"
            self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
            self._wait_port(port)
            for i in range(self.workers):
                self._start(f"worker-{i}", ["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                                            "--no-nanny", "--no-dashboard", "--name", f"worker-{i}"])
            from distributed import Client

            with Client(self.address, timeout=f"{self.start_timeout_s}s") as client:
                client.wait_for_workers(self.workers, timeout=self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.address

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"dask scheduler exited with {self.procs[0].returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"dask scheduler not listening on {port} after {self.start_timeout_s} s")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self, grace_s: float = 15.0) -> None:
        """Workers first (a worker whose scheduler vanished first keeps trying to reconnect),
        then the scheduler; each by its PID, SIGKILL after the grace period."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(grace_s)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            try:  # the group this PID leads: anything it forked goes with it
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = []

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
