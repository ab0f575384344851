"""Test benches for the device drivers: a device played on a real pty, a settable flight clock,
and the executive's read loop (read until None, as the estimation task does)."""

from __future__ import annotations

import os
import time
import tty
from pathlib import Path


class FlightClock:
    """The flight clock the drivers are given: the test moves it (as the lockstep clock does)."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class PtyDevice:
    """The device end of a serial line: the master of a real pty, reached by the driver through
    a symlink (`path`) so that an unplug (close the master) and a replug (a new pty behind the
    same path) look to the driver like a USB adapter that went and came back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing before the driver sets its own mode
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        if self.path.is_symlink():
            self.path.unlink()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        end = time.monotonic() + 1.0
        while view and time.monotonic() < end:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                time.sleep(0.001)

    def read(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                return out
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        self.unplug()


def drain(device_read, limit: int = 50) -> list:
    """The estimation task's loop: read() until None. A driver that never says None fails here."""
    out = []
    for _ in range(limit):
        item = device_read()
        if item is None:
            return out
        out.append(item)
    raise AssertionError(f"read() gave {limit} results in one tick without a None: the task would never end")


class CallTimer:
    """Wall time of each driver call: the evidence that nothing blocks."""

    def __init__(self) -> None:
        self.times_s: list[float] = []

    def __call__(self, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.times_s.append(time.perf_counter() - t0)

    @property
    def worst_s(self) -> float:
        return max(self.times_s, default=0.0)
