"""The primary altimeter: a km-class laser rangefinder on a UART, Vectronix LRF 3013-style ASCII.

Request `>Md1` + CR; reply `v0005950D9`: a status character (`v` valid, `R` error), seven
characters (for `v` the range in centimetres, 0..9,999,999 = 99,999.99 m; for `R` an error
code, digits and A-F), and two hex characters of checksum = the low byte of the sum of the
first eight characters. A CR and/or LF after a reply is accepted and not required.

The codec (`checksum`, `decode_reply`, `ReplyParser`) is pure and never raises anything but
`RangefinderFrameError`; `Rangefinder` is the driver (the `Altimeter` protocol) and never
raises at all.

>>> decode_reply(b"v0005950D9")
RangeReply(valid=True, range_cm=5950, code='')
>>> parser = ReplyParser()
>>> parser.feed(b"\\xff\\x00noise v00059")
[]
>>> parser.feed(b"50D9\\rR000E301BB\\r")
[RangeReply(valid=True, range_cm=5950, code=''), RangeReply(valid=False, range_cm=0, code='000E301')]
>>> parser.bad_frames, parser.discarded_bytes
(1, 8)
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from flight.devices.interfaces import PRIMARY_ALTIMETER, DeviceError, LinkHealth, RangeSample
from flight.devices.probe import ProbeResult
from flight.devices.serial_port import ReopeningSerial

REQUEST = b">Md1\r"
REPLY_LEN = 10
NO_TARGET_CODE = "0000000"  # `R0000000`: no return (an error reply carries `000E` + a code)
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_CODE = frozenset(b"0123456789ABCDEF")  # an R reply's error code
_SKIP = frozenset(b"\r\n")  # line ends between replies: not garbage
_STARTS = frozenset(b"vR")
_START = re.compile(rb"[vR\r\n]")


class RangefinderFrameError(ValueError):
    pass


class RangeReply(NamedTuple):
    valid: bool  # True for a `v` reply
    range_cm: int  # 0 for an error reply
    code: str  # the error code of an `R` reply, "" for `v`


def checksum(text: bytes) -> int:
    """Low byte of the sum of the characters.

    >>> f"{checksum(b'v0005950'):02X}"
    'D9'
    """
    return sum(text) & 0xFF


def _fits(position: int, byte: int, status: int) -> bool:
    """Whether `byte` may stand at `position` of a reply that starts with `status`."""
    if position == 0:
        return byte in (0x76, 0x52)  # v, R
    if position < 8:
        return byte in (_DIGITS if status == 0x76 else _CODE)
    return byte in _HEX


def decode_reply(frame: bytes) -> RangeReply:
    """One whole reply, exactly REPLY_LEN bytes (no line end)."""
    if len(frame) != REPLY_LEN:
        raise RangefinderFrameError(f"a reply is {REPLY_LEN} characters, got {len(frame)}")
    status = frame[0]
    for i, byte in enumerate(frame):
        if not _fits(i, byte, status):
            raise RangefinderFrameError(f"character {i} ({byte:#04x}) does not belong in a reply")
    stated = int(frame[8:10], 16)
    if stated != checksum(frame[:8]):
        raise RangefinderFrameError(f"checksum {stated:02X}, computed {checksum(frame[:8]):02X}")
    if status == 0x76:
        return RangeReply(True, int(frame[1:8]), "")
    return RangeReply(False, 0, frame[1:8].decode("ascii"))


class ReplyParser:
    """Replies out of a byte stream: resynchronises after garbage, torn and corrupted replies.

    A reply is recognised by its shape (status letter, seven digits or code characters, two
    hex) and its checksum. Bytes that cannot start a reply are dropped up to the next `v`/`R`;
    a false start is dropped up to the byte that broke it (a bad checksum: its first byte).
    `v` and `R` cannot stand inside a reply, so a false start never overlaps a real one and a
    real reply after garbage is never swallowed. Each unbroken run of dropped bytes counts
    one bad frame.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_frames = 0
        self.discarded_bytes = 0
        self._discarding = False

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def _discard(self, n: int) -> None:
        del self._buf[:n]
        self.discarded_bytes += n
        if not self._discarding:
            self.bad_frames += 1
            self._discarding = True

    def feed(self, data: bytes) -> list[RangeReply]:
        buf = self._buf
        buf += data
        out: list[RangeReply] = []
        while buf:
            if buf[0] in _SKIP:
                del buf[0]
                continue
            status = buf[0]
            if status not in _STARTS:
                # garbage: everything up to the next byte that could start a reply, in one go
                found = _START.search(buf)
                self._discard(found.start() if found else len(buf))
                continue
            bad = next((i for i in range(1, min(len(buf), REPLY_LEN)) if not _fits(i, buf[i], status)), None)
            if bad is not None:
                # drop up to the offending byte: nothing before it can start a reply that survives it
                # (v and R cannot stand inside a reply)
                self._discard(bad)
                continue
            if len(buf) < REPLY_LEN:
                break  # a reply's first part: wait for the rest
            try:
                reply = decode_reply(bytes(buf[:REPLY_LEN]))
            except RangefinderFrameError:
                self._discard(1)
                continue
            del buf[:REPLY_LEN]
            self._discarding = False
            out.append(reply)
        return out


class Rangefinder:
    """The `Altimeter` driver: one request in flight, replies decoded as they arrive.

    read() (called at 100 Hz by the estimation task until it returns None) drains what the port
    holds (at most `max_read_bytes`), decodes replies, times out a request that got no reply,
    and sends the next request when it is due. It returns one queued result per call:
    a `RangeSample` (stamped with the flight clock at decode), a `DeviceError` (no reply, port
    lost), or None. Budget: one non-blocking read and at most one 5-byte write per call.
    """

    def __init__(self, path: str, clock_s: Callable[[], float], *, sensor_id: int = PRIMARY_ALTIMETER,
                 rate_hz: float = 5.0, baudrate: int = 115200, reply_timeout_s: float | None = None,
                 sigma_m: float = 0.3, sigma_per_m: float = 5.0e-4, min_range_m: float = 1.0,
                 max_read_bytes: int = 256, max_queue: int = 8) -> None:
        if not 0.5 <= rate_hz <= 20.0:
            raise ValueError(f"rangefinder rate {rate_hz} Hz: 0.5..20 Hz (eye safety limits these units to a few Hz)")
        self.sensor_id = sensor_id
        self.clock_s = clock_s
        self.period_s = 1.0 / rate_hz
        self.reply_timeout_s = self.period_s if reply_timeout_s is None else reply_timeout_s
        self.sigma_m = sigma_m
        self.sigma_per_m = sigma_per_m
        self.min_range_m = min_range_m
        self.max_read_bytes = max_read_bytes
        self.health = LinkHealth()
        self.port = ReopeningSerial(path, baudrate, clock_s, self.health)
        self.parser = ReplyParser()
        self._queue: deque[RangeSample | DeviceError] = deque(maxlen=max_queue)
        self._generation = 0
        self._outstanding_since: float | None = None
        self._next_request_s = -math.inf
        self._reported_loss = False
        self.error_replies = 0
        self.no_target = 0
        self.unsolicited = 0
        self.last_error_code = ""
        self.internal_errors = 0

    def read(self) -> RangeSample | DeviceError | None:
        try:
            return self._read()
        except Exception as exc:  # noqa: BLE001 - the contract: never raise into the executive
            self.internal_errors += 1
            return DeviceError(self._now(), f"rangefinder driver: {exc.__class__.__name__}: {exc}")

    def _now(self) -> float:
        try:
            return float(self.clock_s())
        except Exception:  # noqa: BLE001
            return math.nan

    def _read(self) -> RangeSample | DeviceError | None:
        now = self.clock_s()
        port = self.port
        if port.ensure_open():
            if port.generation != self._generation:  # (re)opened: nothing from before counts
                self._generation = port.generation
                self.parser.reset()
                self._outstanding_since = None
                self._reported_loss = False
            self._receive(now, port.read(self.max_read_bytes))
        if not port.is_open:
            self.health.ok = False
            self._outstanding_since = None
            if not self._reported_loss:  # once per outage: the executive is not flooded
                self._reported_loss = True
                self._queue.append(DeviceError(now, f"port unavailable: {port.last_error}"))
        else:
            self._request(now)
        return self._queue.popleft() if self._queue else None

    def _receive(self, now: float, data: bytes) -> None:
        bad_before = self.parser.bad_frames
        replies = self.parser.feed(data) if data else []
        self.health.bad_frames += self.parser.bad_frames - bad_before
        for reply in replies:
            self.health.frames += 1
            if self._outstanding_since is None:
                # one reply per request: this one answers nothing we asked (left from preflight,
                # a duplicate): its time is unknown, so it is not a sample
                self.unsolicited += 1
                continue
            self._outstanding_since = None
            self.health.ok = True
            sample = self._sample(now, reply)
            if sample is not None:
                self._queue.append(sample)

    def _sample(self, now: float, reply: RangeReply) -> RangeSample | None:
        if not reply.valid and reply.code == NO_TARGET_CODE:
            # no return (beyond range, looking at the sky): nothing to pass on, as the LIDAR-Lite
            # driver and the simulator's sensor model do; FDIR sees the silence of a sensor that
            # should be talking, not a bad reading
            self.no_target += 1
            return None
        if not reply.valid:
            # the unit answered and says it has no range (no target, error code): the link is fine,
            # the reading is not; FDIR sees it as a sample flagged invalid
            self.error_replies += 1
            self.last_error_code = reply.code
            return RangeSample(now, math.nan, math.nan, False)
        range_m = reply.range_cm * 0.01
        sigma = self.sigma_m + self.sigma_per_m * range_m
        return RangeSample(now, range_m, sigma, range_m >= self.min_range_m)

    def _request(self, now: float) -> None:
        if self._outstanding_since is not None:
            if now - self._outstanding_since < self.reply_timeout_s - 1e-9:
                return
            self._outstanding_since = None
            self.health.timeouts += 1
            self.health.ok = False
            self._queue.append(DeviceError(now, f"no reply within {self.reply_timeout_s:.3f} s"))
        if now + 1e-9 < self._next_request_s:
            return
        if self.port.write(REQUEST) == len(REQUEST):
            self._outstanding_since = now
        following = self._next_request_s + self.period_s  # keep the cadence; restart it if far behind
        self._next_request_s = following if following > now else now + self.period_s

    def probe(self, timeout_s: float = 1.0, min_range_m: float | None = None,
              max_range_m: float = 30_000.0) -> ProbeResult:
        """Preflight: a `v` reply with a range in (min_range_m, max_range_m] within timeout_s.

        Blocks for at most timeout_s (preflight, not a flight task); real time, not the flight
        clock (a lockstep clock does not move while preflight waits). Never raises.
        """
        try:
            return self._probe(timeout_s, self.min_range_m if min_range_m is None else min_range_m, max_range_m)
        except Exception as exc:  # noqa: BLE001
            return ProbeResult(False, f"probe failed: {exc.__class__.__name__}: {exc}")

    def _probe(self, timeout_s: float, min_range_m: float, max_range_m: float) -> ProbeResult:
        port, parser = self.port, ReplyParser()
        deadline = time.monotonic() + timeout_s
        if not port.open_now():
            return ProbeResult(False, f"cannot open the port: {port.last_error}")
        sent_at = -math.inf
        while time.monotonic() < deadline:
            if time.monotonic() - sent_at >= min(self.reply_timeout_s, 0.3):
                port.write(REQUEST)
                sent_at = time.monotonic()
            for reply in parser.feed(port.read(self.max_read_bytes)):
                if not reply.valid:
                    what = "no target" if reply.code == NO_TARGET_CODE else "error reply"
                    return ProbeResult(False, f"{what} R{reply.code}")
                range_m = reply.range_cm * 0.01
                if not min_range_m < range_m <= max_range_m:
                    return ProbeResult(False, f"range {range_m:.2f} m outside ({min_range_m:g}, {max_range_m:g}] m")
                return ProbeResult(True, f"range {range_m:.2f} m")
            if not port.is_open:
                return ProbeResult(False, f"port lost: {port.last_error}")
            time.sleep(0.002)
        garbage = f" ({parser.bad_frames} bad frames)" if parser.bad_frames else ""
        return ProbeResult(False, f"no valid reply within {timeout_s:g} s{garbage}")

    def close(self) -> None:
        self.port.close()
