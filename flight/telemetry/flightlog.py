"""The on-board flight log: every packet sent, every command accepted, one file per boot.

Record: SYNC (4 bytes) | kind u8 | length u16 | CRC-32 u32 over kind, length and payload |
payload. Kinds: TM (a telemetry packet as sent), TC (a telecommand as accepted), BOOT (the
first record of every file: boot number, part, wall-clock time, version).

Writer (`FlightLog`): the flight's tick only appends to a bounded in-memory buffer (no system
call); a writer thread hands the buffer to the OS every `flush_period_s` (and fsyncs if asked),
rotates to a new part file beyond `max_file_bytes`, and deletes the oldest files when the folder
holds more than `max_total_bytes`. Every boot starts a new file, so a torn tail never poisons
the next flight. A full or failing disk costs records, never the flight: write errors and
dropped records are counted (housekeeping channels) and the writer keeps trying.

Reader (`read_log`): resynchronises past torn or corrupt bytes at the next SYNC and reports
every region it skipped. After `kill -9` every record handed to the OS before it reads back.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

SYNC = b"\xa5LR\x5a"
HEADER = struct.Struct(">4sBHI")  # sync, kind, length, crc
MAX_RECORD = 0xFFFF
TM, TC, BOOT = 1, 2, 3
KIND_NAMES = {TM: "tm", TC: "tc", BOOT: "boot"}
BOOT_BODY = struct.Struct(">IHd16s")  # boot number, part, wall-clock time (s since 1970), version
FILE_NAME = re.compile(r"^flight-(\d{6})-(\d{3,})\.log$")  # part 1000 on gets a fourth digit


def record(kind: int, payload: bytes) -> bytes:
    """One record's bytes.

    >>> r = record(TM, b"abc")
    >>> r[:4] == SYNC and len(r) == HEADER.size + 3
    True
    """
    if len(payload) > MAX_RECORD:
        raise ValueError(f"log record of {len(payload)} bytes exceeds {MAX_RECORD}")
    crc = zlib.crc32(payload, zlib.crc32(struct.pack(">BH", kind, len(payload))))
    return HEADER.pack(SYNC, kind, len(payload), crc) + payload


class FlightLog:
    def __init__(self, directory: str | Path, flush_period_s: float = 1.0, fsync: bool = False,
                 max_file_bytes: int = 64 << 20, max_total_bytes: int = 1 << 30, queue_bytes: int = 4 << 20,
                 version: str = "", wall_clock: Callable[[], float] = time.time, start_thread: bool = True) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)  # an unusable folder fails here, at start-up
        self.flush_period_s = flush_period_s
        self.fsync = fsync
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.queue_bytes = queue_bytes
        self.version = version.encode()[:16]
        self.wall_clock = wall_clock
        self.boot = 1 + max((int(m.group(1)) for p in self.dir.iterdir() if (m := FILE_NAME.match(p.name))), default=0)
        self.part = 0
        self._reopen = False  # the last write failed: the next flush reopens the same part
        self._fd = -1
        self._file_bytes = 0
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # counters (read by housekeeping; written by the writer thread or the tick, each by one)
        self.records = 0  # appended
        self.dropped = 0  # refused: the buffer was full (the disk is slower than the flight)
        self.lost = 0  # handed to a write that failed
        self.write_errors = 0
        self.last_error = ""
        self.written_bytes = 0
        self._open_part()  # the first file is created now: a bad folder is a start-up error
        self._thread = threading.Thread(target=self._run, name="flight-log", daemon=True)
        if start_thread:
            self._thread.start()

    # -- the tick's side: cheap and never raises ------------------------------------------
    def append(self, kind: int, payload: bytes) -> None:
        n = len(payload)
        if n > MAX_RECORD or len(self._buffer) + n + HEADER.size > self.queue_bytes:
            self.dropped += 1
            return
        crc = zlib.crc32(payload, zlib.crc32(struct.pack(">BH", kind, n)))
        with self._lock:
            self._buffer += HEADER.pack(SYNC, kind, n, crc)
            self._buffer += payload
        self.records += 1

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_period_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Hand the buffer to the OS (the writer thread calls this; close() does too)."""
        with self._lock:
            data, self._buffer = self._buffer, bytearray()
        if not data:
            return
        try:
            if self._fd < 0:
                self._open_part()
            self._write(data)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            self.write_errors += 1
            self.lost += data.count(SYNC)  # an upper bound: a payload may hold the sync bytes too
            self.last_error = f"{exc.strerror or exc}"
            self._close_fd()  # reopen the same part on the next flush: the disk may come back
            self._reopen = True
            return
        if self._file_bytes >= self.max_file_bytes:
            self._close_fd()
        self._prune()

    def _write(self, data: bytes | bytearray) -> None:
        with memoryview(data) as view:
            done = 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        self._file_bytes += len(data)
        self.written_bytes += len(data)

    def _open_part(self) -> None:
        """A new part, or (after a failed write) the same part again: a disk that stays full
        does not leave a trail of empty parts behind."""
        if not self._reopen or self.part == 0:
            self.part += 1
        self._reopen = False
        path = self.dir / f"flight-{self.boot:06d}-{self.part:03d}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._file_bytes = os.fstat(self._fd).st_size
        self.current = path
        if self._file_bytes == 0:
            self._write(record(BOOT, BOOT_BODY.pack(self.boot, self.part, self.wall_clock(), self.version)))

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def _prune(self) -> None:
        """Delete the oldest files while the folder holds more than max_total_bytes (never the
        current one)."""
        try:
            files = sorted((p for p in self.dir.iterdir() if FILE_NAME.match(p.name)), key=_order)
            sizes = [p.stat().st_size for p in files]
        except OSError:
            return
        total = sum(sizes)
        for p, size in zip(files, sizes):
            if total <= self.max_total_bytes or p == getattr(self, "current", None):
                break
            try:
                p.unlink()
                total -= size
            except OSError:
                break

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            return  # a writer stuck in the OS (a hung disk): never two writers on one descriptor
        self.flush()
        self._close_fd()


def _order(path: Path) -> tuple[int, int]:
    m = FILE_NAME.match(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def log_files(directory: str | Path) -> list[Path]:
    """The folder's log files, oldest first (boot, then part)."""
    return sorted((p for p in Path(directory).iterdir() if FILE_NAME.match(p.name)), key=_order)


@dataclass
class Skipped:
    offset: int
    length: int
    reason: str


@dataclass
class LogContents:
    records: list[tuple[int, bytes]] = field(default_factory=list)  # (kind, payload)
    skipped: list[Skipped] = field(default_factory=list)  # torn or corrupt regions passed over
    torn_tail_bytes: int = 0  # bytes at the end that are not a whole record

    @property
    def problem(self) -> str:
        return "; ".join(f"{s.reason} at byte {s.offset} ({s.length} bytes skipped)" for s in self.skipped)


def parse_log(data: bytes) -> LogContents:
    """Every whole, intact record in order; anything else is skipped up to the next SYNC and
    reported. Never raises on any input."""
    out = LogContents()
    i, n = 0, len(data)
    while i < n:
        if data[i:i + 4] != SYNC:
            j = data.find(SYNC, i + 1)
            end = n if j < 0 else j
            _skip(out, i, end - i, "no sync", tail=j < 0)
            i = end
            continue
        if n - i < HEADER.size:
            _skip(out, i, n - i, "torn header", tail=True)
            break
        _, kind, length, crc = HEADER.unpack_from(data, i)
        start = i + HEADER.size
        payload = data[start:start + length]
        if len(payload) < length or zlib.crc32(payload, zlib.crc32(struct.pack(">BH", kind, length))) != crc:
            j = data.find(SYNC, i + 1)
            end = n if j < 0 else j
            reason = "torn record" if len(payload) < length and j < 0 else "corrupt record"
            _skip(out, i, end - i, reason, tail=j < 0)
            i = end
            continue
        out.records.append((kind, bytes(payload)))
        i = start + length
    return out


def _skip(out: LogContents, offset: int, length: int, reason: str, tail: bool) -> None:
    out.skipped.append(Skipped(offset, length, reason))
    if tail:
        out.torn_tail_bytes = length


def read_log(path: str | Path) -> LogContents:
    with open(path, "rb") as fh:
        return parse_log(fh.read())


def read_logs(paths: Iterable[str | Path]) -> list[tuple[Path, LogContents]]:
    return [(Path(p), read_log(p)) for p in paths]
