"""Real-time settings the flight process applies to itself at the end of start-up, each only
when the system permits it, and a report of which it got (for housekeeping and the log).

Configured by the board file's `[realtime]` table:

    [realtime]
    cpu = 3              # pin to this CPU (isolate it with isolcpus=3 nohz_full=3 rcu_nocbs=3)
    fifo_priority = 50   # SCHED_FIFO at this priority (1..99); absent: the normal scheduler
    lock_memory = true   # mlockall(MCL_CURRENT | MCL_FUTURE): no page faults in the loop
    freeze_gc = true     # gc.freeze(): start-up objects leave the collector's generations

The entry point calls, after `wiring.build()` and before the executive runs:

    rt = realtime.apply(realtime.config_from_table(config.get("realtime", {})))
    realtime.notify_ready(rt)      # READY=1 for a Type=notify unit; no-op outside systemd

Nothing here raises at run time: a setting the kernel refuses (no CAP_SYS_NICE, a memlock
limit, a CPU that does not exist) is reported as not applied, with the reason. Standard
library only (os, gc, ctypes, socket).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from flight.tomlio import check_table

# <sys/mman.h> on Linux x86-64, aarch64 and arm (other architectures use other values)
MCL_CURRENT = 1
MCL_FUTURE = 2

FLAG_AFFINITY = 1 << 0
FLAG_FIFO = 1 << 1
FLAG_MEMORY_LOCKED = 1 << 2
FLAG_GC_FROZEN = 1 << 3


class RealtimeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RealtimeConfig:
    cpu: int | None = None
    fifo_priority: int | None = None
    lock_memory: bool = False
    freeze_gc: bool = False


def config_from_table(table: Any) -> RealtimeConfig:
    """The `[realtime]` table, checked: unknown keys, wrong types and out-of-range values are
    refused with a message naming the key."""
    sec = check_table(table, "[realtime]", {"cpu", "fifo_priority", "lock_memory", "freeze_gc"},
                      RealtimeConfigError)
    for key in ("cpu", "fifo_priority"):
        value = sec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise RealtimeConfigError(f"[realtime] {key} must be a whole number, got {value!r}")
    for key in ("lock_memory", "freeze_gc"):
        if not isinstance(sec.get(key, False), bool):
            raise RealtimeConfigError(f"[realtime] {key} must be true or false, got {sec[key]!r}")
    cpu, prio = sec.get("cpu"), sec.get("fifo_priority")
    if cpu is not None and cpu < 0:
        raise RealtimeConfigError(f"[realtime] cpu must be >= 0, got {cpu}")
    if prio is not None and not 1 <= prio <= 99:
        raise RealtimeConfigError(f"[realtime] fifo_priority must be 1..99, got {prio}")
    return RealtimeConfig(cpu, prio, sec.get("lock_memory", False), sec.get("freeze_gc", False))


@dataclass(frozen=True)
class RealtimeReport:
    """Which settings were asked for and which the process got; `notes` say why not."""

    affinity: bool = False
    fifo: bool = False
    memory_locked: bool = False
    gc_frozen: bool = False
    requested: int = 0  # the same flags, for what the configuration asked
    notes: tuple[str, ...] = field(default=())

    @property
    def flags(self) -> int:
        """One byte for housekeeping: bit0 affinity, bit1 SCHED_FIFO, bit2 memory locked, bit3 gc frozen."""
        return ((FLAG_AFFINITY if self.affinity else 0) | (FLAG_FIFO if self.fifo else 0)
                | (FLAG_MEMORY_LOCKED if self.memory_locked else 0) | (FLAG_GC_FROZEN if self.gc_frozen else 0))

    @property
    def complete(self) -> bool:
        """Everything asked for was granted."""
        return self.flags == self.requested

    def summary(self) -> str:
        names = (("affinity", FLAG_AFFINITY), ("fifo", FLAG_FIFO), ("mlock", FLAG_MEMORY_LOCKED),
                 ("gc-freeze", FLAG_GC_FROZEN))
        parts = [f"{name} {'yes' if self.flags & bit else 'NO'}" for name, bit in names if self.requested & bit]
        text = "realtime: " + (", ".join(parts) if parts else "nothing requested")
        return text + "".join(f"; {note}" for note in self.notes)


def _pin(cpu: int) -> str | None:
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        allowed = sorted(os.sched_getaffinity(0))
        return f"cpu {cpu}: {getattr(exc, 'strerror', None) or exc} (allowed: {allowed})"
    return None


def _fifo(priority: int) -> str | None:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return (f"SCHED_FIFO {priority}: not permitted (needs CAP_SYS_NICE or RLIMIT_RTPRIO >= {priority}; "
                f"the unit's CPUSchedulingPolicy=fifo or LimitRTPRIO= grants it)")
    except OSError as exc:
        return f"SCHED_FIFO {priority}: {exc.strerror}"
    return None


def _mlockall() -> str | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.mlockall(MCL_CURRENT | MCL_FUTURE)
    except (OSError, AttributeError) as exc:
        return f"mlockall unavailable: {exc}"
    if rc != 0:
        err = ctypes.get_errno()
        hint = " (raise RLIMIT_MEMLOCK: LimitMEMLOCK=infinity, or CAP_IPC_LOCK)" if err in (errno.ENOMEM, errno.EPERM) else ""
        return f"mlockall: {os.strerror(err)}{hint}"
    return None


def apply(config: RealtimeConfig) -> RealtimeReport:
    """Apply what `config` asks, in the order that keeps start-up garbage out of locked memory:
    collect and freeze the heap, pin, lock, then switch to SCHED_FIFO last (a FIFO process
    that spins before it is pinned could starve the CPU it happens to be on)."""
    notes: list[str] = []
    requested = ((FLAG_AFFINITY if config.cpu is not None else 0) | (FLAG_FIFO if config.fifo_priority else 0)
                 | (FLAG_MEMORY_LOCKED if config.lock_memory else 0) | (FLAG_GC_FROZEN if config.freeze_gc else 0))
    gc_frozen = False
    if config.freeze_gc:
        gc.collect()
        gc.freeze()  # start-up objects are never scanned again: shorter, steadier collections
        gc_frozen = True
    affinity = False
    if config.cpu is not None:
        note = _pin(config.cpu)
        affinity = note is None
        notes += [note] if note else []
    locked = False
    if config.lock_memory:
        note = _mlockall()
        locked = note is None
        notes += [note] if note else []
    fifo = False
    if config.fifo_priority:
        note = _fifo(config.fifo_priority)
        fifo = note is None
        notes += [note] if note else []
    return RealtimeReport(affinity, fifo, locked, gc_frozen, requested, tuple(notes))


def notify_ready(report: RealtimeReport | None = None, notify_socket: str | None = None) -> bool:
    """Tell systemd start-up is over (READY=1, with the report as STATUS=); False when not
    under a Type=notify unit (no NOTIFY_SOCKET) or the notice could not be sent."""
    address = notify_socket or os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    message = "READY=1" + (f"\nSTATUS={report.summary()}" if report is not None else "")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True
