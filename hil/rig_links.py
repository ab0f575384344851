"""The HIL rig's edges: the processes it starts, the sensor stream, the flight's clock socket and
its telemetry link. Each is a small class with bounded waits; a peer that dies or stops answering
is a `RigError` naming it, never a hang.

- `EmulatorProcess`: `python -m hil.emulator_host --dir DIR` (started, killed -9, restarted,
  stopped by its PID).
- `FlightProcess`: `lander-flight` (native or under qemu-aarch64), stopped by its PID.
- `Stream`: the sensor stream (the emulator's `stream` pty, or a Pico's USB serial) with
  pyserial: HELLO, SYNC/ACK, ENGINE reports.
- `ClockServer`: the rig's side of `flight.executive.clock.RigClock` (WAIT in, GO/STOP out).
- `Telemetry`: the flight's UDP link: every packet decoded with the dictionary into a JSON-lines
  file; housekeeping and events kept for the rig; telecommands sent back.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from board.emulator import stream as st
from flight.executive import clock as rig_clock
from flight.telemetry.commands import build_command
from flight.telemetry.packets import TelemetryError, decode_tm

REPO = Path(__file__).resolve().parents[1]


class RigError(RuntimeError):
    """The rig cannot go on: a process died, a link stopped answering. The message says which."""


def _stop_pid(proc: subprocess.Popen, timeout_s: float = 10.0) -> int | None:
    """SIGTERM by PID, then SIGKILL if it does not go: the process's exit code."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=timeout_s)


class EmulatorProcess:
    """The host emulator, one instance at a time on `directory`; each instance's counters go to
    its own stats file (an instance killed -9 keeps what it wrote at its last stall)."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.dir = directory
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.instances = 0

    def start(self, timeout_s: float = 20.0) -> None:
        self.instances += 1
        stats = self.dir.parent / f"emulator-stats-{self.instances}.json"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hil.emulator_host", "--dir", str(self.dir),
                                          "--stats", str(stats)], cwd=REPO, stdout=log, stderr=log)
        pid_file = self.dir / "emulator.pid"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if pid_file.read_text().strip() == str(self.proc.pid):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RigError(f"the emulator process exited with {self.proc.returncode} (see {self.log})")
            time.sleep(0.01)
        _stop_pid(self.proc)
        raise RigError(f"the emulator process was not ready within {timeout_s:g} s (see {self.log})")

    def kill(self) -> None:
        """kill -9, as a crash would: it leaves its links, socket and PID file behind."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            _stop_pid(self.proc)

    def stats(self) -> dict[str, Any]:
        """The instances' counters added up."""
        total: dict[str, Any] = {"instances": self.instances, "lockstep_stalls": 0, "i2c_transactions": 0,
                                 "stalls": []}
        for i in range(1, self.instances + 1):
            try:
                s = json.loads((self.dir.parent / f"emulator-stats-{i}.json").read_text())
            except (OSError, ValueError):
                continue
            total["lockstep_stalls"] += s.get("lockstep_stalls", 0)
            total["i2c_transactions"] += s.get("i2c_transactions", 0)
            total["stalls"] += s.get("stalls", [])
        return total


class FlightProcess:
    def __init__(self, argv: list[str], env: dict[str, str] | None, log: Path) -> None:
        self.argv = argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.log.parent, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout_s: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        return _stop_pid(self.proc) if self.proc is not None else None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stream:
    """The sensor stream, laptop side: the emulator's `stream` pty or a Pico's USB serial."""

    def __init__(self, path: str, baudrate: int = 115200) -> None:
        import serial

        try:
            self.port = serial.Serial(path, baudrate, timeout=0, write_timeout=1.0)
        except (serial.SerialException, OSError) as exc:
            raise RigError(f"cannot open the sensor stream {path}: {exc}") from None
        self.path = path
        self.fd = self.port.fileno()
        self.decoder = st.StreamDecoder()
        self.backlog: list = []
        self.name = ""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 2.0
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RigError(f"the sensor stream {self.path} does not take bytes") from None
                select.select([], [self.fd], [], 0.01)
            except OSError as exc:
                raise RigError(f"the sensor stream {self.path}: {exc}") from None

    def _read(self, timeout_s: float) -> list:
        ready, _, _ = select.select([self.fd], [], [], max(timeout_s, 0.0))
        if not ready:
            return []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise RigError(f"the sensor stream {self.path}: {exc}") from None
        if not data:
            raise RigError(f"the sensor stream {self.path} hung up")
        return self.decoder.feed(data)

    def poll(self) -> list:
        """Messages that have arrived (no wait)."""
        out, self.backlog = self.backlog, []
        return out + self._read(0.0)

    def hello(self, timeout_s: float = 5.0) -> str:
        """Ask who is there (pyserial dropped the start-up HELLO when it opened the port)."""
        self.write(st.encode_hello_request())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in self._read(deadline - time.monotonic()):
                if isinstance(msg, st.Hello):
                    self.name = msg.name
                    return msg.name
                self.backlog.append(msg)
        raise RigError(f"no HELLO from the emulator on {self.path} within {timeout_s:g} s")

    def sync(self, seq: int, before: bytes = b"", timeout_s: float = 2.0) -> tuple[st.Ack | None, list]:
        """`before` + SYNC(seq); wait for its ACK. Returns (the ACK or None on timeout, the
        ENGINE reports and other messages that came first, in order)."""
        self.write(before + st.encode_sync(seq))
        deadline = time.monotonic() + timeout_s
        others: list = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.backlog += others
                return None, []
            for msg in self._read(left):
                if isinstance(msg, st.Ack) and msg.seq == seq:
                    return msg, others
                others.append(msg)

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001, S110 - the pty may be gone already
            pass


@dataclass(frozen=True)
class Wait:
    deadline_ns: int
    counters: tuple[int, ...]
    values: tuple[float, ...]


class ClockServer:
    """The rig's end of the flight's RigClock: one flight at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists() or path.is_symlink():
            path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.conn: socket.socket | None = None
        self._wait: struct.Struct | None = None
        self.n_counters = self.n_values = 0
        self.flight_pid = 0

    def accept(self, timeout_s: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if ready:
                self.conn, _ = self.listener.accept()
                return
            if not alive():
                raise RigError("the flight process exited before it connected to the rig's clock")
        raise RigError(f"the flight did not connect to the rig's clock within {timeout_s:g} s")

    def _recv(self, n: int, timeout_s: float, alive: Callable[[], bool]) -> bytes | None:
        assert self.conn is not None
        buf = bytearray()
        deadline = time.monotonic() + timeout_s
        while len(buf) < n:
            ready, _, _ = select.select([self.conn], [], [], min(1.0, max(deadline - time.monotonic(), 0.0)))
            if not ready:
                if not alive():
                    return None
                if time.monotonic() > deadline:
                    raise RigError(f"the flight did not come back to the rig's clock within {timeout_s:g} s")
                continue
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def wait(self, timeout_s: float, alive: Callable[[], bool]) -> Wait | None:
        """The flight's next WAIT; None when the flight closed the connection (it ended)."""
        if self._wait is None:
            hello = self._recv(rig_clock.RIG_HELLO.size, timeout_s, alive)
            if hello is None:
                return None
            magic, self.n_counters, self.n_values, self.flight_pid = rig_clock.RIG_HELLO.unpack(hello)
            if magic != rig_clock.RIG_MAGIC:
                raise RigError(f"the flight's clock speaks {magic!r}, not {rig_clock.RIG_MAGIC!r}")
            self._wait = rig_clock.wait_format(self.n_counters, self.n_values)
        raw = self._recv(self._wait.size, timeout_s, alive)
        if raw is None:
            return None
        fields = self._wait.unpack(raw)
        if fields[0] != rig_clock.RIG_WAIT:
            raise RigError(f"the flight's clock sent {fields[0]!r}, not WAIT")
        return Wait(fields[1], tuple(fields[2:2 + self.n_counters]), tuple(fields[2 + self.n_counters:]))

    def go(self, now_ns: int) -> None:
        self._send(rig_clock.RIG_REPLY.pack(rig_clock.RIG_GO, now_ns))

    def stop(self, now_ns: int) -> None:
        self._send(rig_clock.RIG_REPLY.pack(rig_clock.RIG_STOP, now_ns))

    def _send(self, data: bytes) -> None:
        assert self.conn is not None
        try:
            self.conn.sendall(data)
        except OSError as exc:
            raise RigError(f"the flight's clock connection: {exc}") from None

    def close(self) -> None:
        for sock in (self.conn, self.listener):
            if sock is not None:
                sock.close()
        self.path.unlink(missing_ok=True)


class Telemetry:
    """The flight's UDP link on the rig's side: decoded into `out` (JSON lines), the last
    housekeeping and every event kept, telecommands sent to where the telemetry comes from."""

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0), out: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            self.sock.bind(bind)
        except OSError as exc:
            raise RigError(f"cannot bind the telemetry port {bind[0]}:{bind[1]}: {exc.strerror}") from None
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.file = open(out, "w", encoding="utf-8") if out else None  # noqa: SIM115 - closed in close()
        self.flight_address: tuple[str, int] | None = None
        self.last_hk: dict[str, Any] | None = None
        self.events: list[tuple[float, str, tuple]] = []
        self.verifications: list[tuple[int, int, int]] = []  # (subtype, request id, code)
        self.packets = 0
        self.undecodable = 0
        self.command_sequence = 0

    def drain(self) -> list:
        out = []
        while True:
            try:
                raw, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError:
                return out
            self.flight_address = addr
            self.packets += 1
            try:
                tm = decode_tm(raw)
            except TelemetryError as exc:
                self.undecodable += 1
                if self.file:
                    self.file.write(json.dumps({"kind": "undecodable", "reason": str(exc)}) + "\n")
                continue
            if tm.kind == "housekeeping":
                self.last_hk = dict(tm.values)  # type: ignore[arg-type]
            elif tm.kind == "event":
                self.events.append((tm.time_s, tm.name, tuple(tm.values)))  # type: ignore[arg-type]
            elif tm.kind == "verification":
                self.verifications.append(tuple(tm.values))  # type: ignore[arg-type]
            if self.file:
                values = tm.values if isinstance(tm.values, dict) else list(tm.values)
                self.file.write(json.dumps({"kind": tm.kind, "time_s": tm.time_s, "name": tm.name,
                                            "values": values}, default=str) + "\n")
            out.append(tm)

    def command(self, key: bytes, name: str, *args: float, to: tuple[str, int] | None = None) -> None:
        """One authenticated telecommand for the flight's current epoch (from its housekeeping)."""
        target = to or self.flight_address
        if target is None or self.last_hk is None:
            raise RigError(f"cannot send {name}: no housekeeping from the flight yet (epoch unknown)")
        self.command_sequence += 1
        packet = build_command(key, name, self.command_sequence, *args, epoch=int(self.last_hk["command_epoch"]),
                               packet_seq=self.command_sequence)
        self.sock.sendto(packet, target)

    def close(self) -> None:
        self.sock.close()
        if self.file:
            self.file.close()
