"""Packet links to the ground: UDP datagrams, or a serial line with COBS frames.

Each send is one packet; receive() returns the whole packets that have arrived and never
blocks. Malformed serial frames are counted and dropped; a partial frame waits for its end.
"""

from __future__ import annotations

import socket

from flight.telemetry import cobs

MAX_FRAME = 4096


class UdpLink:
    def __init__(self, bind: tuple[str, int], remote: tuple[str, int]) -> None:
        self.remote = remote
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.sock.setblocking(False)
        self.send_errors = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def send(self, packet: bytes) -> None:
        try:
            self.sock.sendto(packet, self.remote)
        except OSError:
            self.send_errors += 1  # the ground may be down; telemetry goes on (and to the log)

    def receive(self) -> list[bytes]:
        packets = []
        while True:
            try:
                packets.append(self.sock.recv(MAX_FRAME))
            except (BlockingIOError, InterruptedError):
                return packets
            except OSError:
                return packets  # e.g. ICMP port unreachable from an earlier send

    def close(self) -> None:
        self.sock.close()


class SerialLink:
    """COBS frames delimited by 0x00 on a pyserial port (a real UART or a pty)."""

    def __init__(self, port, max_frame: int = MAX_FRAME) -> None:
        self.port = port  # a serial.Serial opened with timeout=0
        self.max_frame = max_frame
        self._pending = bytearray()
        self.bad_frames = 0
        self.io_errors = 0

    @classmethod
    def open(cls, device: str, baudrate: int = 921600) -> SerialLink:
        import serial

        return cls(serial.Serial(device, baudrate, timeout=0, write_timeout=0.1))

    def send(self, packet: bytes) -> None:
        try:
            self.port.write(cobs.encode(packet) + b"\x00")
        except Exception:  # noqa: BLE001 - SerialException, SerialTimeoutException, OSError: unplugged
            self.io_errors += 1

    def receive(self) -> list[bytes]:
        try:
            waiting = self.port.in_waiting
            if waiting:
                self._pending += self.port.read(waiting)
        except Exception:  # noqa: BLE001
            self.io_errors += 1
            return []
        packets = []
        while (end := self._pending.find(0)) >= 0:
            frame = bytes(self._pending[:end])
            del self._pending[: end + 1]
            if not frame:
                continue
            try:
                packets.append(cobs.decode(frame))
            except cobs.CobsError:
                self.bad_frames += 1
        if len(self._pending) > self.max_frame:  # garbage with no delimiter: drop it
            self._pending.clear()
            self.bad_frames += 1
        return packets

    def close(self) -> None:
        self.port.close()
