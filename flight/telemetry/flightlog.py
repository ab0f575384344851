"""The on-board flight log: every telemetry packet appended as a record with its own CRC.

Record: magic b"LR" | length (u16) | CRC-32 of the payload (u32) | payload.
The writer buffers and hands the buffer to the OS every `flush_period_s` (and on close), so
after `kill -9` every record up to the last flush reads back. A torn or corrupt tail is
detected (short header, short payload, bad magic or CRC) and reported, never misread.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

MAGIC = b"LR"
HEADER = struct.Struct(">2sHI")
MAX_RECORD = 0xFFFF


class FlightLogWriter:
    def __init__(self, path: str, flush_period_s: float = 1.0, fsync: bool = False,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.path = path
        self.flush_period_s = flush_period_s
        self.fsync = fsync
        self._clock = clock or time.monotonic
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._buffer = bytearray()
        self._last_flush = self._clock()
        self.records = 0
        self.flushed_records = 0

    def append(self, payload: bytes) -> None:
        if len(payload) > MAX_RECORD:
            raise ValueError(f"log record of {len(payload)} bytes exceeds {MAX_RECORD}")
        self._buffer += HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        self.records += 1
        if self._clock() - self._last_flush >= self.flush_period_s:
            self.flush()

    def flush(self) -> None:
        with memoryview(self._buffer) as view:
            done = 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        self._buffer.clear()
        if self.fsync:
            os.fsync(self._fd)
        self._last_flush = self._clock()
        self.flushed_records = self.records

    def close(self) -> None:
        if self._fd >= 0:
            self.flush()
            os.close(self._fd)
            self._fd = -1


@dataclass
class LogContents:
    records: list[bytes] = field(default_factory=list)
    torn_tail_bytes: int = 0  # bytes after the last good record
    problem: str = ""  # why reading stopped early, if it did


def read_log(path: str) -> LogContents:
    with open(path, "rb") as fh:
        data = fh.read()
    out = LogContents()
    i = 0
    while i < len(data):
        if len(data) - i < HEADER.size:
            out.problem = f"torn header at byte {i}"
            break
        magic, length, crc = HEADER.unpack_from(data, i)
        if magic != MAGIC:
            out.problem = f"bad record magic at byte {i}"
            break
        start = i + HEADER.size
        payload = data[start : start + length]
        if len(payload) < length:
            out.problem = f"torn record at byte {i} ({len(payload)} of {length} bytes)"
            break
        if zlib.crc32(payload) != crc:
            out.problem = f"CRC mismatch in record at byte {i}"
            break
        out.records.append(payload)
        i = start + length
    out.torn_tail_bytes = len(data) - i
    return out
