"""A small I2C bridge server for the driver tests: the wire format over a real unix socket,
devices as register arrays (the emulator's full register maps join in the rig).

Wire format (written here from the protocol text, independently of the client):
request `op u8 | addr u8 | reg u8 | n u8 | data[n]` (op 1 write, op 2 read n bytes), response
`status u8 | n u8 | data[n]`, status 0 = OK or an errno (121: no acknowledge).
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import threading
import time
from pathlib import Path

EREMOTEIO = 121


class RegisterDevice:
    """256 registers, auto-increment reads and writes."""

    def __init__(self) -> None:
        self.regs = bytearray(256)
        self.writes: list[tuple[int, bytes]] = []

    def write(self, reg: int, data: bytes) -> None:
        self.writes.append((reg, bytes(data)))
        for i, b in enumerate(data):
            self.regs[(reg + i) & 0xFF] = b

    def read(self, reg: int, n: int) -> bytes:
        return bytes(self.regs[(reg + i) & 0xFF] for i in range(n))


class LidarModel(RegisterDevice):
    """ACQ_COMMAND starts an acquisition that stays busy for `busy_reads` STATUS reads."""

    def __init__(self, distance_cm: int = 1234, busy_reads: int = 1, unit_id: int = 0x1A2B) -> None:
        super().__init__()
        self.distance_cm = distance_cm
        self.busy_reads = busy_reads
        self._busy_left = 0
        self.acquisitions = 0
        self.regs[0x16:0x18] = unit_id.to_bytes(2, "big")

    def write(self, reg: int, data: bytes) -> None:
        super().write(reg, data)
        if reg == 0x00 and data and data[0]:
            self.acquisitions += 1
            self._busy_left = self.busy_reads

    def read(self, reg: int, n: int) -> bytes:
        if reg == 0x01:
            busy = self._busy_left > 0
            if busy and self._busy_left < 1_000_000:
                self._busy_left -= 1
            if not busy:
                self.regs[0x0F:0x11] = self.distance_cm.to_bytes(2, "big")
            self.regs[0x01] = 0x01 if busy else 0x00
        return super().read(reg, n)


class ImuModel(RegisterDevice):
    """WHO_AM_I, PWR_MGMT0 and the data registers: -32768 everywhere until powered on."""

    def __init__(self, who_am_i: int = 0x47) -> None:
        super().__init__()
        self.regs[0x75] = who_am_i
        self.raw = (0, 0, 0, 2048, 0, 0, 0)  # temperature, accel xyz, gyro xyz: upright at rest

    def read(self, reg: int, n: int) -> bytes:
        on = self.regs[0x4E] & 0x0F == 0x0F
        values = self.raw if on else (-32768,) * 7
        self.regs[0x1D:0x2B] = struct.pack(">7h", *values)
        return super().read(reg, n)


class I2cTestServer:
    """Serves the devices on a unix socket from a thread; faults on request.

    nack_next: answer the next N requests with EREMOTEIO; delay_next_s: answer the next request
    this late; silent: never answer. stop() closes everything (an emulator killed), start()
    serves again at the same path (restarted, registers as they were unless replaced).
    """

    def __init__(self, path: Path, devices: dict[int, RegisterDevice]) -> None:
        self.path = str(path)
        self.devices = devices
        self.nack_next = 0
        self.delay_next_s = 0.0
        self.silent = False
        self.requests = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> I2cTestServer:
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(4)
        listener.setblocking(False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _serve(self, listener: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, None)
        buffers: dict[socket.socket, bytearray] = {}
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.005):
                    if key.fileobj is listener:
                        conn, _ = listener.accept()
                        conn.setblocking(True)
                        buffers[conn] = bytearray()
                        sel.register(conn, selectors.EVENT_READ, None)
                        continue
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    try:
                        chunk = conn.recv(4096)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        sel.unregister(conn)
                        conn.close()
                        del buffers[conn]
                        continue
                    buf = buffers[conn]
                    buf += chunk
                    while len(buf) >= 4:
                        op, addr, reg, n = buf[0], buf[1], buf[2], buf[3]
                        size = 4 + (n if op == 1 else 0)
                        if len(buf) < size:
                            break
                        data = bytes(buf[4:size])
                        del buf[:size]
                        answer = self._answer(op, addr, reg, n, data)
                        if answer is not None:
                            try:
                                conn.sendall(answer)
                            except OSError:
                                pass
        finally:
            for conn in list(buffers):
                conn.close()
            listener.close()
            sel.close()

    def _answer(self, op: int, addr: int, reg: int, n: int, data: bytes) -> bytes | None:
        with self._lock:
            self.requests += 1
            if self.silent:
                return None
            if self.delay_next_s:
                time.sleep(self.delay_next_s)
                self.delay_next_s = 0.0
            if self.nack_next:
                self.nack_next -= 1
                return bytes((EREMOTEIO, 0))
            device = self.devices.get(addr)
            if device is None:
                return bytes((EREMOTEIO, 0))
            if op == 1:
                device.write(reg, data)
                return bytes((0, 0))
            out = device.read(reg, n)
            return bytes((0, len(out))) + out
