"""Clocks for the executive: one real-time, one lockstep. The executive code is the same.

A clock gives monotonic nanoseconds and waits until an absolute deadline. Absolute
deadlines mean no drift accumulates from sleep overshoot.
"""

from __future__ import annotations

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
