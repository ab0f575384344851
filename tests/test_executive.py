"""EXE-001..005: the cooperative executive under a lockstep clock, and its health monitor."""

import os
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight.executive.clock import LockstepClock, MonotonicClock
from flight.executive.health import HealthMonitor, LinuxWatchdog, NoWatchdog, SystemdWatchdog
from flight.executive.scheduler import Executive, ScheduledTask

PERIOD_NS = 10_000_000


class Events:
    def __init__(self):
        self.log = []

    def emit(self, name, *args):
        self.log.append((name, args))

    def names(self):
        return [n for n, _ in self.log]


def make(tasks, **kw):
    clock = LockstepClock()
    events = Events()
    exe = Executive(clock, 100, tasks, events, **kw)
    return exe, clock, events


def noop(_):
    pass


@st.composite
def schedules(draw):
    n = draw(st.integers(1, 5))
    tasks = []
    for i in range(n):
        divisor = draw(st.sampled_from([1, 2, 5, 10, 100]))
        tasks.append(ScheduledTask(f"t{i}", noop, divisor, draw(st.integers(0, divisor - 1))))
    return tasks


@given(schedules(), st.integers(1, 400))
def test_exe001_every_task_runs_at_its_rate(tasks, slots):
    """EXE-001: with no overruns each task runs exactly at the slots its divisor and offset name."""
    exe, _, events = make(tasks)
    exe.run(slots=slots)
    for t in tasks:
        expected = sum(1 for s in range(slots) if (s - t.offset) % t.divisor == 0)
        assert exe.task_stats[t.name].count == expected
    assert exe.stats.total_slips == 0 and "CYCLE_SLIP" not in events.names()


@settings(max_examples=80)
@given(schedules(), st.lists(st.tuples(st.integers(0, 300), st.integers(1, 50)), max_size=6),
       st.integers(1, 8), st.integers(1, 4))
def test_exe002_overruns_slip_skip_ahead_is_bounded(tasks, stalls, max_behind, max_per_wake):
    """EXE-002: injected overruns are counted as slips with an event; the executive never
    runs more than K slots in one wake-up, skips when more than N behind, and accounts for
    every slot (run + skipped = elapsed)."""
    stall_at = dict(stalls)  # slot -> how many periods the task in it overran
    clock_box = {}

    def staller(deadline_ns):
        slot = deadline_ns // PERIOD_NS
        if slot in stall_at:
            clock_box["c"].advance(stall_at.pop(slot) * PERIOD_NS + 1)

    tasks = [ScheduledTask("stall", staller, 1)] + tasks
    exe, clock, events = make(tasks, max_behind_slots=max_behind, max_slots_per_wake=max_per_wake)
    clock_box["c"] = clock
    per_wake = []
    exe.start()
    for _ in range(400):
        before = exe.stats.slots_run
        exe.wake()
        per_wake.append(exe.stats.slots_run - before)
    assert max(per_wake) <= max_per_wake
    elapsed_slots = exe.next_slot
    assert exe.stats.slots_run + exe.stats.slots_skipped == elapsed_slots
    if exe.stats.slots_skipped:
        assert "SLOTS_SKIPPED" in events.names()
    if exe.stats.total_slips:
        assert "CYCLE_SLIP" in events.names()


def test_exe002_a_stall_of_three_periods_slips_the_100hz_group():
    box = {}

    def stall(deadline_ns):
        if deadline_ns == 5 * PERIOD_NS:
            box["c"].advance(3 * PERIOD_NS)

    exe, clock, events = make([ScheduledTask("fast", stall, 1)], max_behind_slots=10)
    box["c"] = clock
    exe.run(slots=20)
    assert exe.stats.slips[1] >= 2  # slots 6.. started after their successor's deadline
    assert ("CYCLE_SLIP", (1, 1)) in events.log
    assert exe.stats.slots_skipped == 0


def test_exe003_budget_overrun_counted_with_event():
    ticks = iter(range(0, 10**12, 700_000))  # every timer read moves 700 us
    exe, _, events = make([ScheduledTask("slow", noop, 1, budget_us=500.0)], timer=lambda: next(ticks))
    exe.run(slots=3)
    st_ = exe.task_stats["slow"]
    assert st_.overruns == 3 and st_.max_us == pytest.approx(700.0) and st_.mean_us == pytest.approx(700.0)
    assert events.names().count("TASK_OVERRUN") == 3


def test_exe003_bad_tables_are_refused():
    with pytest.raises(ValueError, match="offset"):
        ScheduledTask("x", noop, 10, offset=10)
    with pytest.raises(ValueError, match="duplicate"):
        make([ScheduledTask("x", noop, 1), ScheduledTask("x", noop, 2)])
    exe, _, _ = make([ScheduledTask("a", noop, 101)])
    with pytest.raises(ValueError, match="smaller LCM"):  # 101 * 103 slots: too long a table
        exe.add_task(ScheduledTask("b", noop, 103))
    exe.run(slots=202)  # ... and the executive is as it was
    assert [t.name for t in exe.schedule] == ["a"] and exe.task_stats["a"].count == 2


def test_exe004_stalled_task_stops_the_watchdog():
    """EXE-004: health pets only when every task at least as fast as itself advanced."""
    stalled = {"on": False}

    def sensor(_):
        if stalled["on"]:
            raise RuntimeError("bus hung")

    wd = NoWatchdog()
    tasks = [ScheduledTask("sensor", sensor, 1), ScheduledTask("slow", noop, 1000),
             ScheduledTask("health", lambda d: health.run(d), 100)]
    exe, _, events = make(tasks)
    health = HealthMonitor(exe, wd)
    exe.run(slots=300)
    assert wd.pets == 3 and "TASK_STALLED" not in events.names()
    stalled["on"] = True  # the sensor task now fails every time: it never completes
    exe.run(slots=200)
    assert wd.pets == 4  # the check at slot 300 still saw the runs before the fault; none since
    assert ("TASK_STALLED", (0,)) in events.log and health.stalled == ["sensor"]
    assert exe.task_stats["sensor"].failures == 200 and "TASK_FAILED" in events.names()
    assert exe.task_stats["slow"].count == 1  # slower than health: not judged


def test_exe004_systemd_and_linux_watchdogs_write_to_the_real_endpoints(tmp_path):
    sock_path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(2)
    wd = SystemdWatchdog(sock_path)
    wd.pet()
    assert server.recv(64) == b"WATCHDOG=1"
    wd.close()
    server.close()
    dev = tmp_path / "watchdog"
    dev.write_bytes(b"")
    lw = LinuxWatchdog(str(dev), disarm_on_close=True)
    lw.pet()
    lw.pet()
    lw.close()
    assert dev.read_bytes() == b"\0\0V"
    with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
        os.environ.pop("NOTIFY_SOCKET", None)
        SystemdWatchdog()


def test_exe005_monotonic_clock_sleeps_to_absolute_deadlines():
    clock = MonotonicClock()
    start = clock.now_ns()
    for k in range(1, 6):
        clock.sleep_until(start + k * 2_000_000)
        assert clock.now_ns() >= start + k * 2_000_000
    assert clock.now_ns() - start < 5 * 2_000_000 + 3_000_000  # no accumulated drift
