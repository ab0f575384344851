"""Clocks for the executive: real-time, lockstep (in process), and the HIL rig's (over a
socket, the rig owns time). The executive code is the same.

A clock gives monotonic nanoseconds and waits until an absolute deadline. Absolute
deadlines mean no drift accumulates from sleep overshoot.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def sleep_until(self, deadline_ns: int) -> None: ...


class FlightTime:
    """The flight's one time base: seconds since the executive started.

    `slot_s` (also what calling the object returns) is the time of the slot being run: FDIR,
    events, throttling and every timeout use it, so a slot's logic sees one consistent time and
    a lockstep run is deterministic. `now_s()` reads the clock itself: what drivers stamp
    samples with at decode. Before the executive starts, time counts from this object's birth.
    """

    __slots__ = ("clock", "slot_s", "start_ns")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start_ns = clock.now_ns()
        self.slot_s = 0.0

    def __call__(self) -> float:
        return self.slot_s

    def now_s(self) -> float:
        return (self.clock.now_ns() - self.start_ns) / 1e9


class MonotonicClock:
    """time.monotonic_ns with a sleep that ends in a short spin for sub-100 us accuracy."""

    def __init__(self, spin_ns: int = 150_000) -> None:
        self.spin_ns = spin_ns

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        remaining = deadline_ns - time.monotonic_ns() - self.spin_ns
        if remaining > 0:
            time.sleep(remaining * 1e-9)
        while time.monotonic_ns() < deadline_ns:
            pass


class LockstepClock:
    """Time moves only when the executive waits: it jumps to the deadline and tells the
    simulator (on_advance) so the world is stepped to exactly that instant."""

    def __init__(self, start_ns: int = 0, on_advance: Callable[[int], None] | None = None) -> None:
        self._now = start_ns
        self.on_advance = on_advance

    def now_ns(self) -> int:
        return self._now

    def sleep_until(self, deadline_ns: int) -> None:
        if deadline_ns > self._now:
            self._now = deadline_ns
            if self.on_advance is not None:
                self.on_advance(deadline_ns)

    def advance(self, ns: int) -> None:
        """Time passing without the executive waiting (a test injecting an overrun)."""
        self._now += ns


# -- the rig's clock ------------------------------------------------------------------------------
# The HIL rig owns time (as PX4 SITL lockstep does): the flight process asks the rig for each
# deadline over a unix stream socket and runs its slot when the rig answers. Fixed-size frames,
# big-endian; the sizes are set by the flight's HELLO:
#   flight -> rig  HELLO  b"LRC1" | n_counters u8 | n_values u8 | pid u32
#   flight -> rig  WAIT   b"W" | deadline_ns u64 | counters u64 x n_counters | values f64 x n_values
#   rig -> flight  GO     b"G" | now_ns u64          (now_ns >= deadline_ns: run the slot)
#   rig -> flight  STOP   b"S" | now_ns u64          (the run is over: sleep_until raises ClockStopped)
# Counters are what the flight wrote and read on its UARTs (so the rig can make the emulator take
# in every byte before it moves time on); values are what the flight publishes for the rig to
# record (its estimate, its command): both are the wiring's choice, the clock only carries them.
RIG_MAGIC = b"LRC1"
RIG_HELLO = struct.Struct(">4sBBI")
RIG_REPLY = struct.Struct(">cQ")
RIG_GO = b"G"
RIG_STOP = b"S"
RIG_WAIT = b"W"


class ClockLost(Exception):
    """The rig's clock is gone (its socket closed or failed): there is no time to run on."""


class ClockStopped(ClockLost):
    """The rig ended the run: the executive stops after the slot it ran last."""


def wait_format(n_counters: int, n_values: int) -> struct.Struct:
    """The WAIT frame for these sizes (the rig decodes with the same function)."""
    return struct.Struct(f">cQ{n_counters}Q{n_values}d")


class RigClock:
    """Time from the rig over a unix socket: `sleep_until` tells the rig the deadline (with the
    counters and values of the slot just run) and blocks until the rig says GO; `now_ns` is the
    time the rig gave last (0 until the first GO). Stdlib only. The connection is made at
    construction (the rig listens before it starts the flight); HELLO goes with the first wait."""

    def __init__(self, path: str, counters: Callable[[], tuple[int, ...]] = tuple,
                 values: Callable[[], tuple[float, ...]] = tuple, connect_timeout_s: float = 10.0) -> None:
        self.path = path
        self.counters = counters  # may be set until the first wait (the wiring binds them last)
        self.values = values
        self._wait: struct.Struct | None = None
        self._now = 0
        self.waits = 0
        self._interrupted = False
        deadline = time.monotonic() + connect_timeout_s
        while True:  # the rig may still be binding: retry for a while, then say why
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise ClockLost(f"rig clock {path}: {exc.strerror}") from None
                time.sleep(0.02)
        self.sock = sock

    def now_ns(self) -> int:
        return self._now

    def sleep_until(self, deadline_ns: int) -> None:
        """Every wait goes to the rig, even one already due (the first slot): the rig prepares
        the world for each slot before it runs."""
        counters = [c & 0xFFFFFFFFFFFFFFFF for c in self.counters()]
        values = self.values()
        if self._wait is None:  # the first wait says what every wait will carry
            self._wait = wait_format(len(counters), len(values))
            self._send(RIG_HELLO.pack(RIG_MAGIC, len(counters), len(values), os.getpid()))
        self._send(self._wait.pack(RIG_WAIT, max(deadline_ns, 0), *counters, *values))
        kind, now = RIG_REPLY.unpack(self._recv(RIG_REPLY.size))
        self.waits += 1
        if kind == RIG_STOP:
            raise ClockStopped(f"the rig ended the run at {now / 1e9:.2f} s")
        if kind != RIG_GO or now < self._now:
            raise ClockLost(f"rig clock: unexpected reply {kind!r} {now}")
        self._now = now

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ClockLost(f"rig clock {self.path}: {exc}") from None

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except InterruptedError:
                continue
            except OSError as exc:
                raise ClockLost(f"rig clock {self.path}: {exc}") from None
            if not chunk:
                if self._interrupted:
                    raise ClockStopped("stopped while waiting for the rig")
                raise ClockLost(f"rig clock {self.path}: the rig closed the connection")
            buf += chunk
        return bytes(buf)

    def interrupt(self) -> None:
        """End a wait for the rig from a signal handler (SIGTERM): the wait raises ClockStopped."""
        self._interrupted = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
