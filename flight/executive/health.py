"""Health: the watchdog is petted only when every monitored task has run since the last check.

A stalled task means a FATAL event and no pet, so the hardware watchdog (or systemd)
restarts the flight computer. Watchdog implementations: Linux /dev/watchdog, systemd
WATCHDOG=1 notify, and a no-op that counts.
"""

from __future__ import annotations

import os
import socket
from typing import Protocol

from flight.executive.scheduler import Executive


class Watchdog(Protocol):
    def pet(self) -> None: ...

    def close(self) -> None: ...


class NoWatchdog:
    def __init__(self) -> None:
        self.pets = 0

    def pet(self) -> None:
        self.pets += 1

    def close(self) -> None:
        pass


class LinuxWatchdog:
    """/dev/watchdog: any write pets it. close() disarms it with the magic 'V' only when
    asked: a flight computer that exits by accident should be reset."""

    def __init__(self, path: str = "/dev/watchdog", disarm_on_close: bool = False) -> None:
        self._fd = os.open(path, os.O_WRONLY)
        self.disarm_on_close = disarm_on_close

    def pet(self) -> None:
        os.write(self._fd, b"\0")

    def close(self) -> None:
        if self._fd >= 0:
            if self.disarm_on_close:
                os.write(self._fd, b"V")
            os.close(self._fd)
            self._fd = -1


class SystemdWatchdog:
    """sd_notify's WATCHDOG=1 on $NOTIFY_SOCKET (WatchdogSec= in the unit file)."""

    def __init__(self, notify_socket: str | None = None) -> None:
        address = notify_socket or os.environ.get("NOTIFY_SOCKET")
        if not address:
            raise ValueError("systemd watchdog selected but NOTIFY_SOCKET is not set (run under systemd)")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def notify(self, message: bytes) -> None:
        self._sock.sendto(message, self._address)

    def pet(self) -> None:
        self.notify(b"WATCHDOG=1")

    def close(self) -> None:
        self._sock.close()


class HealthMonitor:
    """Run as the 1 Hz health task. It watches every task that runs at least as often as
    itself (a slower task could not have advanced between two checks)."""

    def __init__(self, executive: Executive, watchdog: Watchdog, own_name: str = "health") -> None:
        self.executive = executive
        self.watchdog = watchdog
        self.own_name = own_name
        self._last_counts: dict[str, int] = {}
        self.checks = 0
        self.stalled: list[str] = []

    def run(self, _deadline_ns: int) -> None:
        self.checks += 1
        stalled = []
        own = next(t for t in self.executive.schedule if t.name == self.own_name)
        for task in self.executive.schedule:
            if task.name == self.own_name or task.divisor > own.divisor:
                continue
            count = self.executive.task_stats[task.name].count
            previous = self._last_counts.get(task.name)
            if previous is not None and count == previous:
                stalled.append(task.name)
            self._last_counts[task.name] = count
        self.stalled = stalled
        if stalled:
            for name in stalled:
                self.executive.events.emit("TASK_STALLED", [t.name for t in self.executive.schedule].index(name))
            return
        self.watchdog.pet()
