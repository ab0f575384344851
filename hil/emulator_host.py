"""The host emulator process: the Pico's emulator core served over real ptys and a socket.

    python -m hil.emulator_host --dir DIR [--name NAME] [--stats FILE]

In DIR (created if missing):
- `rangefinder`, `engine`, `stream`: symlinks to the slave ends of three ptys (the
  rangefinder UART, the engine-controller UART, the laptop's USB-serial sensor stream). A driver
  opens them by path with pyserial; when a port is unplugged the link disappears, and on replug
  it points to a new pty.
- `i2c.sock`: the I2C bridge (a unix stream socket; wire format in HELPERS/hil README): the
  ICM-42688-P at 0x68 and the LIDAR-Lite v3HP at 0x62; any other address, or a device told to
  stop answering, gets status 121 (EREMOTEIO), what smbus2 raises for a silent device.
- `emulator.pid`: written last, once every link and the socket are ready; removed on exit.

Faults come in over the stream (FAULT frames): silent, garbage, lie, unplug (this process closes
the pty and removes the link; a later CLEAR opens a new pty and repoints the link). Killing the
process and starting it again on the same DIR works: stale links, socket and PID file are
replaced. SIGTERM or SIGINT: close everything, remove the links, the socket and the PID file,
exit 0.

One thread, one selector: bus transactions, UART bytes and stream frames are handled one at a
time, so every register update falls between two bus transactions (atomic for the master).

Lockstep (the rig's VALUES carry the lockstep flag; the flight waits for the rig): the device
lines are read only when a SYNC drains them, never as bytes arrive, so a request is always
answered with the measurement of the same rig step, however the processes are scheduled; and
every byte written on a device line is waited for (bounded) until the kernel has pushed it
through the pty to the flight's side (`TIOCINQ` on this process's own slave descriptor) before
anything more is written on the stream, so by the time the rig reads an ACK the flight can read
every reply and STATUS written before it. A wait that times out is a lockstep stall, counted in
the `--stats FILE` JSON (written at exit and at every stall) and on stderr.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time
import tty
from pathlib import Path

from board.emulator.core import Emulator
from board.emulator.lidarlite import TICKS_MASK

OP_WRITE = 1
OP_READ = 2
MAX_BLOCK = 32
PID_FILE = "emulator.pid"
SOCKET_NAME = "i2c.sock"
LANDED_TIMEOUT_S = 0.2  # a device line's bytes not at the flight's side by then: a lockstep stall
N_TTY_ROOM = 4000  # below the line discipline's 4096-byte buffer: beyond it the kernel holds bytes back


def now_us() -> int:
    """Monotonic microseconds, wrapped like MicroPython's ticks_us (the core's clock)."""
    return (time.monotonic_ns() // 1000) & TICKS_MASK


def _replace_symlink(target: str, link: Path) -> None:
    tmp = link.with_name(link.name + ".new")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic: a driver never sees the path missing during a repoint


class PtyPort:
    """One pty: this process keeps the master and its own slave descriptor (so the master never
    sees EIO while the driver has the port closed), the slave's path is published as a link."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.dropped_bytes = 0
        self.opened = 0

    @property
    def is_open(self) -> bool:
        return self.master is not None

    def open(self) -> int:
        """Open a new pty and point the link at it; returns the master descriptor."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, even before the driver opens it
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        _replace_symlink(os.ttyname(slave), self.link)
        self.opened += 1
        return master

    def close(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def read(self) -> bytes:
        if self.master is None:
            return b""
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # EIO: nothing on the other side
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def write(self, data: bytes) -> bool:
        """Write all of data; False when the line's buffer had to be flushed (or the port is
        closed), i.e. what the reader will find is not simply what it had plus data."""
        if not data:
            return True
        if self.master is None:
            self.dropped_bytes += len(data)
            return False
        try:
            sent = os.write(self.master, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.dropped_bytes += len(data)
            return False
        if sent < len(data) and self.slave is not None:
            # Nobody is reading: the line's buffer is full of stale bytes. A real UART would
            # have overrun long ago; drop the backlog so a reader that comes back sees fresh data.
            termios.tcflush(self.slave, termios.TCIFLUSH)
            rest = data[sent:]
            try:
                sent2 = os.write(self.master, rest)
            except OSError:
                sent2 = 0
            self.dropped_bytes += len(rest) - sent2
            return False
        return True

    def readable_at_slave(self) -> int:
        """Bytes waiting at the slave's side (what the flight can read now), or -1."""
        if self.slave is None:
            return -1
        try:
            return struct.unpack("i", fcntl.ioctl(self.slave, termios.TIOCINQ, b"\0\0\0\0"))[0]
        except OSError:
            return -1

    def write_landed(self, data: bytes, timeout_s: float = LANDED_TIMEOUT_S) -> bool:
        """Write data and wait until the kernel has pushed it to the slave's side (pty writes
        reach the reader from a work queue, later). Only while the reader is not reading (the
        flight waits for the rig in lockstep). False: not there within timeout_s."""
        if not data:
            return True
        before = self.readable_at_slave()
        if not self.write(data) or before < 0 or before + len(data) > N_TTY_ROOM:
            return True  # flushed, closed, or a full line: nothing exact to wait for
        want = before + len(data)
        deadline = time.monotonic() + timeout_s
        spins = 0
        while self.readable_at_slave() < want:
            if time.monotonic() > deadline:
                return False
            spins += 1
            if spins < 50:
                os.sched_yield()
            else:
                time.sleep(0.0001)
        return True


class BridgeClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()


class EmulatorHost:
    def __init__(self, directory: Path, name: str = "lander-emulator host", stats: Path | None = None) -> None:
        self.dir = directory
        self.stats_path = stats
        self.selector = selectors.DefaultSelector()
        self.ports = {key: PtyPort(directory / key) for key in ("rangefinder", "engine", "stream")}
        self.emulator = Emulator(name=name, drain=self._drain)
        self.listener: socket.socket | None = None
        self.clients: dict[int, BridgeClient] = {}
        self.i2c_transactions = 0
        self.running = True
        self.watched: set[str] = set()  # ports whose readability the selector reports
        self.lockstep_stalls = 0
        self.stall_log: list[str] = []

    # --- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for port in self.ports.values():
            self._open_port(port)
        sock_path = self.dir / SOCKET_NAME
        if sock_path.exists() or sock_path.is_symlink():
            sock_path.unlink()  # a previous instance that was killed
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(sock_path))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self._flush()  # HELLO into the stream pty: the rig reads it when it opens the port
        pid_tmp = self.dir / (PID_FILE + ".new")
        pid_tmp.write_text(f"{os.getpid()}\n")
        os.replace(pid_tmp, self.dir / PID_FILE)

    def stop(self) -> None:
        for client in list(self.clients.values()):
            self._drop_client(client)
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            (self.dir / SOCKET_NAME).unlink(missing_ok=True)
        for port in self.ports.values():
            self._close_port(port)
        self.write_stats()
        (self.dir / PID_FILE).unlink(missing_ok=True)
        self.selector.close()

    def write_stats(self) -> None:
        stats = {"pid": os.getpid(), "lockstep_stalls": self.lockstep_stalls, "stalls": self.stall_log[-20:],
                 "i2c_transactions": self.i2c_transactions,
                 "dropped_bytes": {k: p.dropped_bytes for k, p in self.ports.items()},
                 "ptys_opened": {k: p.opened for k, p in self.ports.items()}}
        if self.stats_path is None:
            return
        tmp = self.stats_path.with_name(self.stats_path.name + ".new")
        try:
            tmp.write_text(json.dumps(stats) + "\n")
            os.replace(tmp, self.stats_path)
        except OSError:
            pass

    def run(self) -> None:
        while self.running:
            for key, _ in self.selector.select(self._timeout()):
                kind, obj = key.data
                if kind == "port":
                    self._from_port(obj)
                elif kind == "listen":
                    self._accept()
                else:
                    self._from_client(obj)
            self.emulator.poll(now_us())
            self._flush()
            self._watch_ports()

    def _watch_ports(self) -> None:
        """Device lines wake the loop only outside lockstep (in lockstep a SYNC drains them)."""
        for key, port in self.ports.items():
            want = port.is_open and (key == "stream" or not self.emulator.lockstep)
            if want and key not in self.watched:
                self.selector.register(port.master, selectors.EVENT_READ, ("port", port))  # type: ignore[arg-type]
                self.watched.add(key)
            elif not want and key in self.watched:
                self._unwatch(key)

    def _unwatch(self, key: str) -> None:
        port = self.ports[key]
        if key in self.watched:
            self.watched.discard(key)
            try:
                self.selector.unregister(port.master)  # type: ignore[arg-type]
            except (KeyError, ValueError):
                pass

    def _timeout(self) -> float:
        if self.emulator.lockstep:
            return 0.05  # nothing is clocked by the wall in lockstep
        if self.emulator.lidar.busy:
            return 0.0005
        return 0.005

    # --- ptys ------------------------------------------------------------------------------
    def _open_port(self, port: PtyPort) -> None:
        port.open()
        self._watch_ports()

    def _close_port(self, port: PtyPort) -> None:
        key = next(k for k, p in self.ports.items() if p is port)
        self._unwatch(key)
        port.close()

    def _from_port(self, port: PtyPort) -> None:
        if port is not self.ports["stream"] and self.emulator.lockstep:
            return  # left for the next SYNC to drain (lockstep just began in this same wake-up)
        data = port.read()
        if not data:
            return
        emu = self.emulator
        if port is self.ports["stream"]:
            emu.from_stream(data)
            self._sync_plugs()
        elif port is self.ports["rangefinder"]:
            emu.from_rangefinder(data)
        else:
            emu.from_engine(data)

    def _drain(self) -> None:
        """Before an ACK: take in every byte the flight has already written to the UARTs."""
        self.emulator.from_rangefinder(self.ports["rangefinder"].read())
        self.emulator.from_engine(self.ports["engine"].read())

    def _sync_plugs(self) -> None:
        for key, unplugged in (("rangefinder", self.emulator.rangefinder_unplugged),
                               ("engine", self.emulator.engine_unplugged)):
            port = self.ports[key]
            if unplugged and port.is_open:
                self._close_port(port)
            elif not unplugged and not port.is_open:
                self._open_port(port)

    def _flush(self) -> None:
        emu = self.emulator
        # the device lines first: when the rig reads an ACK, the replies are already queued
        # (in lockstep: already at the flight's side)
        for key, data in (("rangefinder", emu.take_rangefinder()), ("engine", emu.take_engine())):
            port = self.ports[key]
            if not emu.lockstep:
                port.write(data)
            elif not port.write_landed(data):
                self.lockstep_stalls += 1
                note = f"{key}: {len(data)} bytes not at the flight's side within {LANDED_TIMEOUT_S} s"
                self.stall_log.append(note)
                print(f"emulator_host: lockstep stall: {note}", file=sys.stderr, flush=True)
                self.write_stats()
        self.ports["stream"].write(emu.take_stream())

    # --- the I2C bridge --------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        client = BridgeClient(sock)
        self.clients[sock.fileno()] = client
        self.selector.register(sock, selectors.EVENT_READ, ("client", client))

    def _drop_client(self, client: BridgeClient) -> None:
        self.clients.pop(client.sock.fileno(), None)
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    def _from_client(self, client: BridgeClient) -> None:
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client(client)
            return
        client.buffer += data
        while len(client.buffer) >= 4:
            op, addr, reg, n = client.buffer[:4]
            if op == OP_WRITE:
                if len(client.buffer) < 4 + n:
                    return  # the rest of the request is on its way
                payload = bytes(client.buffer[4 : 4 + n])
                del client.buffer[: 4 + n]
                if n > MAX_BLOCK:
                    reply = bytes((errno.EINVAL, 0))
                else:
                    status = self.emulator.i2c_write(addr, reg, payload, now_us())
                    reply = bytes((status, 0))
            elif op == OP_READ:
                del client.buffer[:4]
                got = self.emulator.i2c_read(addr, reg, n) if n <= MAX_BLOCK else None
                if n > MAX_BLOCK:
                    reply = bytes((errno.EINVAL, 0))
                elif got is None:
                    reply = bytes((errno.EREMOTEIO, 0))
                else:
                    reply = bytes((0, len(got))) + got
            else:  # not our protocol: say so once and hang up (its framing is unknown)
                self._send(client, bytes((errno.EINVAL, 0)))
                self._drop_client(client)
                return
            self.i2c_transactions += 1
            self._send(client, reply)
            self._flush()  # e.g. nothing yet; keeps replies ordered with any line output

    def _send(self, client: BridgeClient, reply: bytes) -> None:
        try:
            client.sock.sendall(reply)
        except OSError:
            self._drop_client(client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.emulator_host",
                                     description="Serve the board emulator over ptys and an I2C bridge socket.")
    parser.add_argument("--dir", required=True, type=Path, help="folder for the links, socket and PID file")
    parser.add_argument("--name", default="lander-emulator host", help="name sent in the stream's HELLO")
    parser.add_argument("--stats", type=Path, default=None,
                        help="write counters (lockstep stalls, I2C transactions, dropped bytes) here as JSON")
    args = parser.parse_args(argv)
    pid_path = args.dir / PID_FILE
    if pid_path.exists():
        try:
            other = int(pid_path.read_text())
            os.kill(other, 0)
        except (ValueError, ProcessLookupError):
            pass  # stale: the previous instance was killed
        except PermissionError:
            other = -1
        else:
            if other != os.getpid():
                print(f"emulator_host: already running in {args.dir} (pid {other})", file=sys.stderr)
                return 2
    host = EmulatorHost(args.dir, args.name, args.stats)

    def _stop(signum, frame):
        host.running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    host.start()
    try:
        host.run()
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
