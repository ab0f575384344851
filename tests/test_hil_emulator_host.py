"""EMU-011: the host emulator process (hil/emulator_host.py) over real ptys and a unix socket.

The process is started by the test and stopped by its PID; the ports are opened by path with
pyserial, as the flight's drivers and the rig will.
"""

import errno
import fcntl
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import serial

from board.emulator import core, engine, framing, rangefinder
from board.emulator import stream as st

ROOT = Path(__file__).resolve().parents[1]


def _start(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "hil.emulator_host", "--dir", str(directory)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    pid_file = directory / "emulator.pid"
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip() == str(proc.pid):
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("emulator host did not become ready")


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    return proc.wait(timeout=10)


@pytest.fixture
def host(tmp_path):
    proc = _start(tmp_path)
    yield tmp_path, proc
    _stop(proc)


def _open(path: Path) -> serial.Serial:
    return serial.Serial(str(path), 115200, timeout=0.5)


class Bridge:
    """A minimal client of the I2C bridge wire format (the flight has its own BridgeBus)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2.0)
        self.sock.connect(str(path))

    def _reply(self) -> tuple[int, bytes]:
        head = self._recv(2)
        return head[0], self._recv(head[1])

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "bridge closed"
            data += chunk
        return data

    def read(self, addr: int, reg: int, n: int) -> tuple[int, bytes]:
        self.sock.sendall(bytes((2, addr, reg, n)))
        return self._reply()

    def write(self, addr: int, reg: int, data: bytes) -> tuple[int, bytes]:
        self.sock.sendall(bytes((1, addr, reg, len(data))) + data)
        return self._reply()


def _frames(port: serial.Serial, want: int, timeout: float = 2.0) -> list:
    splitter = st.StreamDecoder()
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += splitter.feed(port.read(max(1, port.in_waiting)))
    return got


def _values(step: int, lockstep: bool = True, **kw) -> bytes:
    base = {"time_us": step * 10000, "accel_mps2": (0.0, 0.0, 9.80665), "gyro_radps": (0.0, 0.0, 0.0),
                "temperature_c": 25.0, "rangefinder_range_mm": 595_000, "rangefinder_status": 0,
                "rangefinder_error_code": 0, "lidar_range_mm": 12_340, "lidar_status": 0, "contact": False,
                "controller_fault": False, "lockstep": lockstep}
    base.update(kw)
    return st.encode_values(st.Values(step, **base))


def _reply(port: serial.Serial) -> bytes:
    return port.read_until(b"\r")


def test_emu011_links_socket_and_pid_file_and_a_hello_on_the_stream(host):
    directory, proc = host
    for name in ("rangefinder", "engine", "stream"):
        link = directory / name
        assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    assert (directory / "i2c.sock").exists()
    assert (directory / "emulator.pid").read_text().strip() == str(proc.pid)
    with _open(directory / "stream") as stream_port:  # pyserial flushes the start-up HELLO on open
        stream_port.write(st.encode_hello_request())
        assert _frames(stream_port, 1) == [st.Hello("lander-emulator host")]


def test_emu011_i2c_bridge_serves_both_devices_and_refuses_like_a_bus(host):
    directory, _ = host
    bus = Bridge(directory / "i2c.sock")
    assert bus.read(0x68, 0x75, 1) == (0, b"\x47")
    assert bus.write(0x68, 0x4E, b"\x0f") == (0, b"")
    with _open(directory / "stream") as stream_port:
        stream_port.write(_values(1, lockstep=False) + st.encode_sync(1))  # the bench: wall clock
        assert isinstance(_frames(stream_port, 2)[-1], st.Ack)
    status, data = bus.read(0x68, 0x1D, 14)
    assert status == 0 and struct.unpack(">7h", data)[3] == 2048  # +1 g on z
    assert bus.write(0x62, 0x00, b"\x04") == (0, b"")
    assert bus.read(0x62, 0x01, 1)[1] in (b"\x00", b"\x01")  # busy for about a millisecond
    time.sleep(0.02)
    assert bus.read(0x62, 0x01, 1) == (0, b"\x00")
    assert bus.read(0x62, 0x0F, 2) == (0, b"\x04\xd2")  # 1234 cm, big-endian
    assert bus.read(0x23, 0x00, 1) == (errno.EREMOTEIO, b"")  # nobody there
    assert bus.read(0x68, 0x00, 33) == (errno.EINVAL, b"")  # beyond an SMBus block


def test_emu011_lockstep_exchange_ack_after_the_flights_bytes(host):
    directory, _ = host
    with _open(directory / "stream") as stream_port, _open(directory / "rangefinder") as rf, \
            _open(directory / "engine") as eng:
        stream_port.write(_values(5))
        rf.write(b">Md1\r")
        eng.write(engine.encode_command(42, True, 5000, 123))
        rf.flush()
        eng.flush()
        stream_port.write(st.encode_sync(9))
        frames = _frames(stream_port, 2)
        assert frames[0] == st.EngineReport(1, 42, True, 5000, 123)
        ack = frames[1]
        assert (ack.seq, ack.last_step, ack.rangefinder_requests, ack.rangefinder_bytes,
                ack.engine_frames) == (9, 5, 1, 11, 1)
        assert _reply(rf) == rangefinder.encode_reply(rangefinder.VALID, 59500)
        eng.reset_input_buffer()
        stream_port.write(_values(7, contact=True) + st.encode_sync(10))  # 70 ms: a new 20 ms slot
        ack = _frames(stream_port, 1)[0]
        assert (ack.seq, ack.last_step) == (10, 7)
        status = eng.read_until(b"\x00")  # already written when the ACK left
        _, flags, throttle, pitch, last_seq, bad = engine.decode_status(framing.cobs_decode(status[:-1]))
        assert (flags, throttle, pitch, last_seq, bad) == (0b011, 5000, 123, 42, 0)


def test_emu011_free_running_engine_status_at_50_hz(host):
    directory, _ = host
    with _open(directory / "engine") as eng:
        eng.reset_input_buffer()
        time.sleep(0.5)
        frames = [f for f in eng.read(eng.in_waiting).split(b"\x00") if f]
        seqs = [engine.decode_status(framing.cobs_decode(f))[0] for f in frames[1:]]
    assert 18 <= len(frames) <= 32  # 25 expected in 0.5 s; a busy machine stretches it
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_emu011_unplug_removes_the_link_and_replug_gives_a_new_pty_at_the_same_path(host):
    directory, _ = host
    link = directory / "rangefinder"
    with _open(directory / "stream") as stream_port:
        stream_port.write(_values(1, lockstep=False))  # the bench: requests answered as they come
        rf = _open(link)
        stream_port.write(st.encode_fault(st.Fault(st.DEV_RANGEFINDER, st.FAULT_UNPLUG)))
        deadline = time.monotonic() + 2
        while link.is_symlink() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not link.is_symlink()
        with pytest.raises(serial.SerialException):  # the driver sees the port go away
            rf.write(b">Md1\r")
            rf.read(1)
        rf.close()
        stream_port.write(st.encode_fault(st.Fault(st.DEV_RANGEFINDER, st.FAULT_CLEAR)))
        while not link.is_symlink() and time.monotonic() < deadline + 2:
            time.sleep(0.01)
        with _open(link) as rf:
            rf.write(b">Md1\r")
            assert _reply(rf) == rangefinder.encode_reply(rangefinder.VALID, 59500)


def test_emu011_garbage_on_a_line_and_a_silent_i2c_device(host):
    directory, _ = host
    bus = Bridge(directory / "i2c.sock")
    with _open(directory / "stream") as stream_port, _open(directory / "rangefinder") as rf:
        stream_port.write(st.encode_fault(st.Fault(st.DEV_RANGEFINDER, st.FAULT_GARBAGE, count=32, seed=7)))
        stream_port.write(st.encode_fault(st.Fault(st.DEV_LIDAR, st.FAULT_SILENT)) + st.encode_sync(1))
        assert isinstance(_frames(stream_port, 2)[-1], st.Ack)
        assert rf.read(32) == core.garbage(32, 7)
        assert bus.read(0x62, 0x01, 1) == (errno.EREMOTEIO, b"")
        assert bus.read(0x68, 0x75, 1) == (0, b"\x47")  # the other device still answers
        stream_port.write(st.encode_fault(st.Fault(st.DEV_LIDAR, st.FAULT_CLEAR)) + st.encode_sync(2))
        _frames(stream_port, 2)
        assert bus.read(0x62, 0x02, 1) == (0, b"\x80")


def test_emu011_killed_and_restarted_on_the_same_dir(tmp_path):
    proc = _start(tmp_path)
    bus = Bridge(tmp_path / "i2c.sock")
    assert bus.read(0x68, 0x75, 1) == (0, b"\x47")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert (tmp_path / "emulator.pid").exists()  # stale, as a crash leaves it
    again = _start(tmp_path)
    try:
        with pytest.raises(OSError):  # the old connection is gone; a client reconnects
            bus.read(0x68, 0x75, 1)
        assert Bridge(tmp_path / "i2c.sock").read(0x68, 0x75, 1) == (0, b"\x47")
        with _open(tmp_path / "rangefinder") as rf, _open(tmp_path / "stream") as stream_port:
            stream_port.write(_values(1, lockstep=False))
            _frames(stream_port, 1)
            time.sleep(0.05)
            rf.write(b">Md1\r")
            assert _reply(rf) == rangefinder.encode_reply(rangefinder.VALID, 59500)
        second = subprocess.run([sys.executable, "-m", "hil.emulator_host", "--dir", str(tmp_path)],
                                cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert second.returncode == 2 and "already running" in second.stderr
    finally:
        assert _stop(again) == 0


def test_emu011_sigterm_exits_cleanly_and_removes_what_it_made(tmp_path):
    proc = _start(tmp_path)
    assert _stop(proc) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _inq(port: serial.Serial) -> int:
    return struct.unpack("i", fcntl.ioctl(port.fileno(), termios.TIOCINQ, b"\0\0\0\0"))[0]


def test_emu011_lockstep_answers_at_the_sync_and_the_reply_is_at_the_flight_before_the_ack(host):
    """In lockstep a request is answered when a SYNC drains the line (with that step's value,
    whenever the bytes happened to arrive), and every byte written on a device line is at the
    reader's side when the rig reads the ACK: no wait, no race with the kernel's work queue."""
    directory, _ = host
    with _open(directory / "stream") as stream_port, _open(directory / "rangefinder") as rf:
        stream_port.write(_values(1) + st.encode_sync(1))
        assert isinstance(_frames(stream_port, 2)[-1], st.Ack)
        for step in range(2, 40):
            rf.write(b">Md1\r")
            rf.flush()
            time.sleep(0.002)  # long enough for the host to see it: it must still not answer
            assert _inq(rf) == 0
            stream_port.write(_values(step, rangefinder_range_mm=10 * step) + st.encode_sync(step))
            frames = _frames(stream_port, 1)
            assert frames[-1] == st.Ack(step, step, step - 1, 11 * (step - 1), 0, 0, frames[-1].engine_status_sent, 0)
            assert _inq(rf) == 11  # already there: read without waiting
            assert rf.read(11) == rangefinder.encode_reply(rangefinder.VALID, step)
