"""Time-triggered cooperative executive: a table of (task, rate divisor, offset, budget)
driven by one tick source with absolute deadlines.

Every deadline miss is counted and reported: per task execution count, last/max/mean time
and budget overruns; per rate group, cycle slips. When the executive falls more than
`max_behind_slots` behind it skips to the current slot and counts what it skipped; it never
runs more than `max_slots_per_wake` slots in one wake-up. Must never import a device module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from flight.executive.clock import Clock, FlightTime

MAX_HYPERPERIOD_SLOTS = 10_000  # the slot table's length at most (100 s at 100 Hz)


class EventSink(Protocol):
    def emit(self, name: str, *args: float) -> None: ...


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    run: Callable[[int], None]  # called with the slot's deadline in ns
    divisor: int  # runs every `divisor` ticks
    offset: int = 0  # ... at ticks where (tick - offset) % divisor == 0
    budget_us: float = 1000.0

    def __post_init__(self) -> None:
        if self.divisor < 1 or not 0 <= self.offset < self.divisor:
            raise ValueError(f"task {self.name}: need divisor >= 1 and 0 <= offset < divisor")
        if self.budget_us <= 0:
            raise ValueError(f"task {self.name}: budget must be positive")

    def due(self, slot: int) -> bool:
        return (slot - self.offset) % self.divisor == 0


@dataclass(slots=True)
class TaskStats:
    count: int = 0
    last_us: float = 0.0
    max_us: float = 0.0
    total_us: float = 0.0
    overruns: int = 0
    failures: int = 0  # raised instead of returning: not counted as an execution

    @property
    def mean_us(self) -> float:
        return self.total_us / self.count if self.count else 0.0


@dataclass(slots=True)
class ExecutiveStats:
    slots_run: int = 0
    slots_skipped: int = 0
    wakeups: int = 0
    slips: dict[int, int] = field(default_factory=dict)  # rate divisor -> cycle slips
    max_lateness_us: float = 0.0

    @property
    def total_slips(self) -> int:
        return sum(self.slips.values())


class Executive:
    def __init__(
        self,
        clock: Clock,
        tick_hz: int,
        schedule: list[ScheduledTask],
        events: EventSink,
        max_behind_slots: int = 10,
        max_slots_per_wake: int = 3,
        timer: Callable[[], int] = time.perf_counter_ns,
        flight_time: FlightTime | None = None,
    ) -> None:
        names = [t.name for t in schedule]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate task names in schedule: {names}")
        if tick_hz < 1 or max_behind_slots < 1 or max_slots_per_wake < 1:
            raise ValueError("tick_hz, max_behind_slots and max_slots_per_wake must be >= 1")
        self.clock = clock
        self.period_ns = 1_000_000_000 // tick_hz
        self.schedule = list(schedule)
        self.events = events
        self.max_behind_slots = max_behind_slots
        self.max_slots_per_wake = max_slots_per_wake
        self.timer = timer
        self.time = flight_time or FlightTime(clock)
        self.task_stats = {t.name: TaskStats() for t in schedule}
        self.stats = ExecutiveStats(slips={d: 0 for d in sorted({t.divisor for t in schedule})})
        self.next_slot = 0
        self.start_ns: int | None = None
        self.stopped = False
        self.failures = 0  # task runs that raised, all tasks
        self.last_failed_task = ""
        self.last_failure = ""
        self.emit_errors = 0
        self._table = self._slot_table(self.schedule, self.task_stats)

    def add_task(self, task: ScheduledTask, index: int | None = None) -> None:
        """Add a task to the table (before start): at the end, or at `index`. A refused task
        leaves the executive as it was."""
        if task.name in self.task_stats:
            raise ValueError(f"duplicate task name {task.name}")
        where = len(self.schedule) if index is None else index
        schedule = self.schedule[:where] + [task] + self.schedule[where:]
        stats = {**self.task_stats, task.name: TaskStats()}
        self._table = self._slot_table(schedule, stats)  # raises before anything changed
        self.schedule.insert(where, task)  # in place: others may hold these
        self.task_stats[task.name] = stats[task.name]
        self.stats.slips.setdefault(task.divisor, 0)

    @staticmethod
    def _slot_table(schedule: list[ScheduledTask], stats: dict[str, TaskStats]):
        """What runs in each slot of the hyperperiod (the LCM of the divisors), in table
        order: the schedule is periodic, so a slot's work is looked up, not decided."""
        period = math.lcm(*(t.divisor for t in schedule)) if schedule else 1
        if period > MAX_HYPERPERIOD_SLOTS:
            raise ValueError(f"the divisors {sorted({t.divisor for t in schedule})} repeat only every "
                             f"{period} slots (more than {MAX_HYPERPERIOD_SLOTS}); choose divisors with a smaller LCM")
        return [[(i, t, stats[t.name]) for i, t in enumerate(schedule) if t.due(slot)] for slot in range(period)]

    # -- one slot ----------------------------------------------------------------------
    def run_slot(self, slot: int) -> None:
        deadline = self.slot_deadline(slot)
        self.time.slot_s = slot * self.period_ns / 1e9  # exact integer / 1e9: the nearest double
        timer = self.timer
        for index, task, st in self._table[slot % len(self._table)]:
            t0 = timer()
            try:
                task.run(deadline)
            except Exception as exc:  # noqa: BLE001 - one task's fault must not stop the others; health sees it
                st.failures += 1
                self.failures += 1
                self.last_failed_task = task.name
                self.last_failure = f"{task.name}: {exc!r}"
                self._emit("TASK_FAILED", index, st.failures)
                continue
            elapsed_us = (timer() - t0) / 1000.0
            st.count += 1
            st.last_us = elapsed_us
            st.total_us += elapsed_us
            st.max_us = max(st.max_us, elapsed_us)
            if elapsed_us > task.budget_us:
                st.overruns += 1
                self._emit("TASK_OVERRUN", index, elapsed_us)
        self.stats.slots_run += 1

    def _emit(self, name: str, *args: float) -> None:
        """Report without ever raising: the event service counts its own failures, and a sink
        that raises anyway costs one event, counted here."""
        try:
            self.events.emit(name, *args)
        except Exception:  # noqa: BLE001
            self.emit_errors += 1

    def slot_deadline(self, slot: int) -> int:
        return (self.start_ns or 0) + slot * self.period_ns

    # -- the loop ----------------------------------------------------------------------
    def start(self) -> None:
        self.start_ns = self.time.start_ns = self.clock.now_ns()
        self.next_slot = 0

    def wake(self) -> None:
        """Wait for the next slot, then run what is due: at most max_slots_per_wake slots,
        or skip ahead when more than max_behind_slots behind."""
        if self.start_ns is None:
            self.start()
        start_ns, period, clock, stats = self.start_ns or 0, self.period_ns, self.clock, self.stats
        clock.sleep_until(start_ns + self.next_slot * period)
        stats.wakeups += 1
        current = (clock.now_ns() - start_ns) // period
        behind = current - self.next_slot
        if behind > self.max_behind_slots:
            self._count_slips(self.next_slot, current)
            stats.slots_skipped += behind
            self._emit("SLOTS_SKIPPED", behind)
            self.next_slot = current
        ran = 0
        while ran < self.max_slots_per_wake and self.next_slot <= current and not self.stopped:
            slot = self.next_slot
            lateness_ns = clock.now_ns() - (start_ns + slot * period)
            if lateness_ns > stats.max_lateness_us * 1000.0:
                stats.max_lateness_us = lateness_ns / 1000.0
            if lateness_ns >= period:
                # started after the next slot's deadline: every group due here slipped
                self._count_slips(slot, slot + 1)
            self.run_slot(slot)
            self.next_slot = slot + 1
            ran += 1

    def _count_slips(self, first: int, end: int) -> None:
        """Count a slip for each rate-group cycle due in slots [first, end)."""
        for divisor in self.stats.slips:
            offsets = {t.offset for t in self.schedule if t.divisor == divisor}
            whole, rest = divmod(end - first, divisor)  # O(divisor) however long the stall
            n = whole * len(offsets) + sum(1 for s in range(first, first + rest) if s % divisor in offsets)
            if n:
                self.stats.slips[divisor] += n
                self._emit("CYCLE_SLIP", divisor, n)

    def run(self, slots: int | None = None, until: Callable[[], bool] | None = None) -> None:
        """Run until `slots` slots have run, `until()` is true, or stop() is called."""
        if self.start_ns is None:
            self.start()
        target = None if slots is None else self.next_slot + slots
        while not self.stopped:
            if target is not None and self.next_slot >= target:
                break
            if until is not None and until():
                break
            self.wake()

    def stop(self) -> None:
        self.stopped = True
