"""The engine-controller link: COMMAND frames out, STATUS frames in, over a UART (115200 8N1).

Frames are COBS-encoded and delimited by 0x00. Decoded payload, big-endian:
`type u8 | seq u16 | body | crc u16`, crc = CRC-16/CCITT-FALSE over type..body.
- 0x01 COMMAND (Pi -> controller): `flags u8` (bit0 armed) | `throttle u16` (0..10000) |
  `pitch i16` (1e-4 rad). The sender clamps; a receiver refuses throttle > 10000.
- 0x81 STATUS (controller -> Pi, 50 Hz): `flags u8` (bit0 armed, bit1 touchdown contact,
  bit2 controller fault) | `throttle u16` | `pitch i16` | `last_command_seq u16` |
  `bad_frames u16`.

Every frame we send starts with a 0x00 as well as ending with one: whatever garbage the line
picked up before it is cut off there and cannot swallow the frame (a receiver ignores the empty
frame between two delimiters). The codec is pure and raises only `EngineFrameError`;
`EngineLink` (the `EngineCommand` and `ContactSwitch` protocols) never raises.

>>> payload = encode_command(seq=7, armed=True, throttle=0.5, pitch_rad=-0.1)
>>> payload.hex()
'010007011388fc18c3e8'
>>> decode_payload(payload)
CommandFrame(seq=7, armed=True, throttle_e4=5000, pitch_e4=-1000)
>>> stream = FrameStream()
>>> status = EngineStatus(seq=1, armed=True, contact=False, fault=False, throttle_e4=5000,
...                       pitch_e4=-1000, last_command_seq=7, controller_bad_frames=0)
>>> stream.feed(b"\\x13\\x37" + frame(encode_status(status)))
[EngineStatus(seq=1, armed=True, contact=False, fault=False, throttle_e4=5000, pitch_e4=-1000, last_command_seq=7, controller_bad_frames=0)]
>>> stream.bad_frames
1
"""

from __future__ import annotations

import binascii
import math
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from flight.devices.interfaces import LinkHealth
from flight.devices.probe import ProbeResult
from flight.devices.serial_port import ReopeningSerial
from flight.telemetry import cobs

COMMAND = 0x01
STATUS = 0x81
THROTTLE_FULL = 10_000  # throttle units: 1e-4 of full
PITCH_LSB_RAD = 1.0e-4
PITCH_MAX = 32_767  # ±3.2767 rad, symmetric (the i16's -32768 is never sent)
_HEADER = struct.Struct(">BH")
_COMMAND_BODY = struct.Struct(">BHh")
_STATUS_BODY = struct.Struct(">BHhHH")
_CRC = struct.Struct(">H")
COMMAND_LEN = _HEADER.size + _COMMAND_BODY.size + _CRC.size  # 10
STATUS_LEN = _HEADER.size + _STATUS_BODY.size + _CRC.size  # 14
MAX_ENCODED = 64  # longest run of bytes without a delimiter worth keeping (a frame is <= 16)


class EngineFrameError(ValueError):
    pass


class CommandFrame(NamedTuple):
    seq: int
    armed: bool
    throttle_e4: int  # 0..10000
    pitch_e4: int  # 1e-4 rad


class EngineStatus(NamedTuple):
    seq: int
    armed: bool
    contact: bool  # touchdown contact switch closed
    fault: bool  # the controller reports a fault
    throttle_e4: int  # actual throttle, 0..10000
    pitch_e4: int  # actual pitch, 1e-4 rad
    last_command_seq: int
    controller_bad_frames: int  # frames the controller refused (saturating)

    @property
    def throttle(self) -> float:
        return self.throttle_e4 / THROTTLE_FULL

    @property
    def pitch_rad(self) -> float:
        return self.pitch_e4 * PITCH_LSB_RAD


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout).

    >>> hex(crc16(b"123456789"))
    '0x29b1'
    """
    return binascii.crc_hqx(data, 0xFFFF)


def _seal(head_and_body: bytes) -> bytes:
    return head_and_body + _CRC.pack(crc16(head_and_body))


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else min(value, high)


def encode_command(seq: int, armed: bool, throttle: float, pitch_rad: float) -> bytes:
    """A COMMAND payload (with its CRC, before COBS). Out-of-range values are clamped; a
    non-finite throttle or pitch is refused (EngineFrameError): there is no honest number
    to send in its place."""
    if not (math.isfinite(throttle) and math.isfinite(pitch_rad)):
        raise EngineFrameError(f"non-finite command: throttle {throttle}, pitch {pitch_rad}")
    throttle_e4 = _clamp(round(throttle * THROTTLE_FULL), 0, THROTTLE_FULL)
    pitch_e4 = _clamp(round(pitch_rad / PITCH_LSB_RAD), -PITCH_MAX, PITCH_MAX)
    return encode_command_frame(CommandFrame(seq & 0xFFFF, bool(armed), throttle_e4, pitch_e4))


def encode_command_frame(c: CommandFrame) -> bytes:
    return _seal(_HEADER.pack(COMMAND, c.seq) + _COMMAND_BODY.pack(int(c.armed), c.throttle_e4, c.pitch_e4))


def encode_status(s: EngineStatus) -> bytes:
    """A STATUS payload (the controller's side; here for tests and symmetry)."""
    flags = int(s.armed) | int(s.contact) << 1 | int(s.fault) << 2
    return _seal(_HEADER.pack(STATUS, s.seq)
                 + _STATUS_BODY.pack(flags, s.throttle_e4, s.pitch_e4, s.last_command_seq, s.controller_bad_frames))


def frame(payload: bytes) -> bytes:
    """Payload -> bytes on the line: 0x00, COBS, 0x00."""
    return b"\x00" + cobs.encode(payload) + b"\x00"


def decode_payload(payload: bytes) -> CommandFrame | EngineStatus:
    """A COBS-decoded payload -> its frame; EngineFrameError for anything else."""
    if len(payload) < _HEADER.size + _CRC.size:
        raise EngineFrameError(f"{len(payload)} bytes is shorter than any frame")
    (stated,) = _CRC.unpack_from(payload, len(payload) - _CRC.size)
    computed = crc16(payload[:-_CRC.size])
    if stated != computed:
        raise EngineFrameError(f"CRC {stated:04x}, computed {computed:04x}")
    kind, seq = _HEADER.unpack_from(payload)
    if kind == STATUS:
        if len(payload) != STATUS_LEN:
            raise EngineFrameError(f"STATUS is {STATUS_LEN} bytes, got {len(payload)}")
        flags, throttle_e4, pitch_e4, last_seq, bad = _STATUS_BODY.unpack_from(payload, _HEADER.size)
        if throttle_e4 > THROTTLE_FULL:
            raise EngineFrameError(f"STATUS throttle {throttle_e4} > {THROTTLE_FULL}")
        return EngineStatus(seq, bool(flags & 1), bool(flags & 2), bool(flags & 4), throttle_e4, pitch_e4,
                            last_seq, bad)
    if kind == COMMAND:
        if len(payload) != COMMAND_LEN:
            raise EngineFrameError(f"COMMAND is {COMMAND_LEN} bytes, got {len(payload)}")
        flags, throttle_e4, pitch_e4 = _COMMAND_BODY.unpack_from(payload, _HEADER.size)
        if throttle_e4 > THROTTLE_FULL:
            raise EngineFrameError(f"COMMAND throttle {throttle_e4} > {THROTTLE_FULL}")
        return CommandFrame(seq, bool(flags & 1), throttle_e4, pitch_e4)
    raise EngineFrameError(f"unknown frame type {kind:#04x}")


class FrameStream:
    """Frames of the wanted type out of a byte stream: split at 0x00, COBS-decode, check.

    Empty frames (two delimiters in a row) are skipped; anything else that does not decode,
    or is of another type, counts one bad frame. Bytes piling up with no delimiter beyond
    MAX_ENCODED are dropped (one bad frame) so garbage cannot grow the buffer.
    """

    def __init__(self, accept: int = STATUS) -> None:
        self.accept = accept
        self._pending = bytearray()
        self._overflowed = False
        self.bad_frames = 0

    def reset(self) -> None:
        self._pending.clear()
        self._overflowed = False

    def feed(self, data: bytes) -> list:
        out = []
        pending = self._pending
        start = 0
        while (end := data.find(0, start)) >= 0:
            pending += data[start:end]
            start = end + 1
            if self._overflowed:  # the tail of an over-long run: already counted
                self._overflowed = False
                pending.clear()
                continue
            if not pending:
                continue
            raw = bytes(pending)
            pending.clear()
            try:
                decoded = decode_payload(cobs.decode(raw))
            except (cobs.CobsError, EngineFrameError):
                self.bad_frames += 1
                continue
            if (STATUS if isinstance(decoded, EngineStatus) else COMMAND) != self.accept:
                self.bad_frames += 1
                continue
            out.append(decoded)
        pending += data[start:]
        if len(pending) > MAX_ENCODED:
            pending.clear()
            if not self._overflowed:
                self.bad_frames += 1
                self._overflowed = True
        return out


class EngineLink:
    """The Pi's side of the link: `EngineCommand` + `ContactSwitch`, never blocking, never raising.

    command()/arm() encode one COMMAND frame and write it without waiting (a frame the kernel
    could not take whole is finished on the next call; more than MAX_ENCODED bytes behind, the
    backlog is dropped: a newer command supersedes it). Every call also drains the STATUS
    frames that arrived (at most max_read_bytes). The link is healthy while a valid STATUS
    came within status_timeout_s; contact is reported from the last STATUS only then.
    Budget: one non-blocking read and one write of <= 2 frames per call.
    """

    def __init__(self, path: str, clock_s: Callable[[], float], *, baudrate: int = 115_200,
                 status_timeout_s: float = 0.3, max_read_bytes: int = 1024) -> None:
        self.clock_s = clock_s
        self.status_timeout_s = status_timeout_s
        self.max_read_bytes = max_read_bytes
        self.health = LinkHealth()
        self.port = ReopeningSerial(path, baudrate, clock_s, self.health)
        self.stream = FrameStream(STATUS)
        self.status: EngineStatus | None = None
        self.status_time_s: float | None = None
        self.seq = 0  # the next COMMAND's sequence number
        self.armed = False
        self.throttle = 0.0
        self.pitch_rad = 0.0
        self.refused_commands = 0  # non-finite commands, not sent
        self.dropped_bytes = 0  # backlog dropped because the line would not take it
        self.missed_status = 0  # gaps in the STATUS sequence
        self.internal_errors = 0
        self._out = bytearray()
        self._generation = 0
        self._watch_from_s: float | None = None
        self._last_poll_s: float | None = None
        self._healthy = True

    # -- EngineCommand ----------------------------------------------------------------------
    def arm(self, armed: bool) -> None:
        """Arming takes effect at once: a frame goes out now with the last throttle and pitch."""
        try:
            self.armed = bool(armed)
            self._poll()  # first: a port that came back is reopened before the frame goes out
            self._send(self.throttle, self.pitch_rad)
        except Exception:  # noqa: BLE001 - the contract: never raise into the executive
            self.internal_errors += 1

    def command(self, throttle: float, pitch_rad: float) -> None:
        try:
            self._poll()
            self._send(throttle, pitch_rad)
        except Exception:  # noqa: BLE001
            self.internal_errors += 1

    # -- ContactSwitch ----------------------------------------------------------------------
    def closed(self) -> bool:
        try:
            self._poll()
            return self._healthy and self.status is not None and self.status.contact
        except Exception:  # noqa: BLE001
            self.internal_errors += 1
            return False

    def poll(self) -> None:
        """Drain STATUS frames and update health (for a housekeeping task; the calls above do it)."""
        try:
            self._poll()
        except Exception:  # noqa: BLE001
            self.internal_errors += 1

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def unacknowledged(self) -> int:
        """COMMAND frames sent since the one the controller last acknowledged."""
        if self.status is None:
            return self.seq
        return (self.seq - 1 - self.status.last_command_seq) & 0xFFFF

    # -- inside -----------------------------------------------------------------------------
    def _send(self, throttle: float, pitch_rad: float) -> None:
        try:
            payload = encode_command(self.seq, self.armed, throttle, pitch_rad)
        except EngineFrameError:
            self.refused_commands += 1  # the controller holds the last good command
            return
        self.throttle, self.pitch_rad = throttle, pitch_rad
        self.seq = (self.seq + 1) & 0xFFFF
        if len(self._out) > MAX_ENCODED:
            self.dropped_bytes += len(self._out)
            self._out.clear()
        self._out += frame(payload)
        self._flush()

    def _flush(self) -> None:
        if self._out:
            taken = self.port.write(bytes(self._out))
            del self._out[:taken]

    def _poll(self) -> None:
        now = self.clock_s()
        if self._watch_from_s is None:
            self._watch_from_s = now
        port = self.port
        if port.ensure_open():
            if port.generation != self._generation:
                self._generation = port.generation
                self.stream.reset()
                self._out.clear()  # the backlog was for the controller that went away
            elif self._last_poll_s is not None and now - self._last_poll_s > self.status_timeout_s:
                # not polled for longer than a status may age: what is buffered is stale (a full
                # tty keeps the oldest bytes), so wait for a fresh STATUS instead of believing it
                port.discard_input()
                self.stream.reset()
            self._flush()
            data = port.read(self.max_read_bytes)
            if data:
                bad_before = self.stream.bad_frames
                for status in self.stream.feed(data):
                    self._take(now, status)
                self.health.bad_frames += self.stream.bad_frames - bad_before
        self._last_poll_s = now
        last = self.status_time_s if self.status_time_s is not None else self._watch_from_s
        healthy = now - last <= self.status_timeout_s
        if self._healthy and not healthy:
            self.health.timeouts += 1  # once per silence, not once per call
        self._healthy = healthy
        self.health.ok = healthy

    def _take(self, now: float, status: EngineStatus) -> None:
        if self.status is not None:
            gap = (status.seq - self.status.seq - 1) & 0xFFFF
            if gap < 1000:  # larger: the controller restarted its count
                self.missed_status += gap
        self.status = status
        self.status_time_s = now
        self.health.frames += 1

    def probe(self, timeout_s: float = 0.5, statuses: int = 2) -> ProbeResult:
        """Preflight: `statuses` valid STATUS frames within timeout_s (50 Hz gives ~10), the
        controller reporting no fault and not armed (nothing has armed it yet). Blocks for at
        most timeout_s, in real time; never raises."""
        try:
            return self._probe(timeout_s, statuses)
        except Exception as exc:  # noqa: BLE001
            return ProbeResult(False, f"probe failed: {exc.__class__.__name__}: {exc}")

    def _probe(self, timeout_s: float, statuses: int) -> ProbeResult:
        port, stream = self.port, FrameStream(STATUS)
        if not port.open_now():
            return ProbeResult(False, f"cannot open the port: {port.last_error}")
        deadline = time.monotonic() + timeout_s
        seen: list[EngineStatus] = []
        while time.monotonic() < deadline and len(seen) < statuses:
            seen += stream.feed(port.read(self.max_read_bytes))
            if not port.is_open:
                return ProbeResult(False, f"port lost: {port.last_error}")
            time.sleep(0.002)
        if len(seen) < statuses:
            bad = f", {stream.bad_frames} bad frames" if stream.bad_frames else ""
            return ProbeResult(False, f"{len(seen)} STATUS frames in {timeout_s:g} s (want {statuses}){bad}")
        last = seen[-1]
        if last.fault:
            return ProbeResult(False, "controller reports a fault")
        if last.armed:
            return ProbeResult(False, "controller reports armed before the flight armed it")
        return ProbeResult(True, f"STATUS seq {last.seq}: disarmed, throttle {last.throttle:.4f}, "
                                 f"contact {'closed' if last.contact else 'open'}")

    def close(self) -> None:
        self.port.close()
