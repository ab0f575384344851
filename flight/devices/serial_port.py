"""A serial port opened by path that survives being unplugged: the I/O edge of the UART drivers.

pyserial opens and configures the port (raw, 8N1, the baud rate); the bytes then go through
`os.read`/`os.write` on its non-blocking descriptor. pyserial 3.5's own `write()` with
`write_timeout=0` spins forever when the kernel's output buffer is full (it retries EAGAIN in
a loop), and its `read()` adds a `select()` per call: neither belongs in a 100 Hz task.

Nothing here raises. A failed read or write closes the port, counts `io_errors`, and the next
calls reopen it by its path (a USB adapter unplugged and plugged back, a pty re-created behind
a symlink) with a doubling back-off; a successful reopen counts `reopens`. Time is the flight
clock, so a lockstep run backs off in flight time like everything else.
"""

from __future__ import annotations

import contextlib
import os
import termios
from collections.abc import Callable
from typing import Any

from flight.devices.interfaces import LinkHealth


def _open_serial(path: str, baudrate: int):
    import serial  # pyserial: imported here so the pure codecs import without it

    port = serial.Serial(path, baudrate, timeout=0, write_timeout=0)
    try:
        # pyserial leaves VMIN = 0, with which an empty read returns b"" exactly like a hung-up
        # line; VMIN = 1 makes "nothing yet" EAGAIN (the descriptor is non-blocking) and leaves
        # b"" meaning gone
        attrs = termios.tcgetattr(port.fileno())
        attrs[6][termios.VMIN] = 1
        termios.tcsetattr(port.fileno(), termios.TCSANOW, attrs)
        port.reset_input_buffer()  # bytes from before this open are stale: never stamp them "now"
    except Exception:
        port.close()
        raise
    return port


class ReopeningSerial:
    def __init__(self, path: str, baudrate: int, clock_s: Callable[[], float], health: LinkHealth, *,
                 backoff_min_s: float = 0.05, backoff_max_s: float = 0.4,
                 open_port: Callable[[str, int], Any] = _open_serial) -> None:
        self.path = path
        self.baudrate = baudrate
        self.clock_s = clock_s
        self.health = health
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s  # < 0.5 s: a port that comes back is used within 1 s
        self._open_port = open_port
        self.port = None
        self._fd = -1
        self._backoff_s = backoff_min_s
        self._next_open_s = -float("inf")
        self.opened_once = False
        self.generation = 0  # +1 per successful open: the driver resets its parser on a change
        self.last_error = ""
        self.bytes_read = 0  # every byte taken from the line, all opens (the HIL rig's lockstep counts them)
        self.bytes_written = 0  # every byte the kernel took from us

    @property
    def is_open(self) -> bool:
        return self.port is not None

    def ensure_open(self) -> bool:
        """Open the port if it is closed and the back-off allows; True when it is open."""
        if self.port is not None:
            return True
        now = self.clock_s()
        if now < self._next_open_s:
            return False
        try:
            port = self._open_port(self.path, self.baudrate)
            fd = port.fileno()
        except Exception as exc:  # noqa: BLE001 - SerialException, OSError, ValueError: not there yet
            self.last_error = f"open {self.path}: {exc}"
            self._next_open_s = now + self._backoff_s
            self._backoff_s = min(self.backoff_max_s, 2.0 * self._backoff_s)
            return False
        self.port, self._fd = port, fd
        self._backoff_s = self.backoff_min_s
        if self.opened_once:
            self.health.reopens += 1
        self.opened_once = True
        self.generation += 1
        return True

    def open_now(self) -> bool:
        """Open now whatever the back-off says (preflight asks once, then waits itself)."""
        if self.port is None:
            self._next_open_s = -float("inf")
        return self.ensure_open()

    def read(self, max_bytes: int) -> bytes:
        """Whatever has arrived, at most max_bytes; b"" when nothing has or the port is closed."""
        if not self.ensure_open():
            return b""
        try:
            data = os.read(self._fd, max_bytes)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:  # EIO: the other end went away (USB unplug, pty master closed)
            self._lost(f"read {self.path}: {exc}")
            return b""
        if not data:  # end of file on a tty: hung up
            self._lost(f"read {self.path}: hung up")
        self.bytes_read += len(data)
        return data

    def write(self, data: bytes) -> int:
        """Write without waiting; returns the bytes the kernel took (0 when closed or full)."""
        if not self.ensure_open():
            return 0
        try:
            taken = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._lost(f"write {self.path}: {exc}")
            return 0
        self.bytes_written += taken
        return taken

    def discard_input(self) -> None:
        """Drop what the kernel holds for us (it is old: a tty that overflowed keeps the oldest)."""
        if self.port is not None:
            with contextlib.suppress(OSError):
                termios.tcflush(self._fd, termios.TCIFLUSH)

    def _lost(self, reason: str) -> None:
        self.health.io_errors += 1
        self.health.ok = False
        self.last_error = reason
        self.close()
        self._next_open_s = self.clock_s() + self._backoff_s

    def close(self) -> None:
        port, self.port, self._fd = self.port, None, -1
        if port is not None:
            with contextlib.suppress(Exception):  # closing a port that is already gone
                port.close()
