"""The sensor-value stream between the laptop (rig) and the emulator, over USB serial or a pty.

Frames: COBS-encoded, with a 0x00 delimiter before and after. Decoded payload, big-endian:
`version u8 | type u8 | body | crc u16`, crc = CRC-16/CCITT-FALSE over version..body.
The version byte is in every frame, so a rig and an emulator of different protocol versions
refuse each other's frames (counted) instead of misreading them. VERSION = 1.

Laptop -> emulator
- 0x01 VALUES: step u32 | time_us u64 | accel_x, accel_y, accel_z (m/s^2, body-frame specific
  force) f32 | gyro_x, gyro_y, gyro_z (rad/s) f32 | temperature_c f32 | rangefinder_range_mm u32 |
  rangefinder_status u8 (0 valid, 1 error reply, 2 no target) | rangefinder_error_code u16 (0..999) |
  lidar_range_mm u32 | lidar_status u8 (0 valid, 1 no target) | flags u8 (bit0 touchdown contact,
  bit1 engine-controller fault, bit2 lockstep: time_us clocks the emulator)
- 0x02 FAULT: device u8 (1 IMU, 2 LIDAR-Lite, 3 rangefinder, 4 engine, 255 all) | kind u8
  (0 clear, 1 silent, 2 garbage, 3 lie, 4 unplug) | value f32 (lie: SI value) | count u16
  (garbage: bytes) | seed u16 (garbage: pattern)
- 0x03 SYNC: seq u32
- 0x04 HELLO request: empty body
Emulator -> laptop
- 0x80 HELLO: name (ASCII, <= 48 bytes): sent at start and on request
- 0x81 ACK: seq u32 | last_step u32 | rangefinder_requests u32 | rangefinder_bytes u32 |
  engine_frames u32 | engine_bad_frames u32 | engine_status_sent u32 | stream_bad_frames u32
- 0x82 ENGINE: engine_frames u32 | seq u16 | flags u8 (bit0 armed) | throttle u16 (1e-4) |
  pitch i16 (1e-4 rad): one per COMMAND frame the flight sent that the controller accepted

Ranges travel as integer millimetres so that the host (double floats) and the Pico (single
floats) put the same centimetres on the wire.

>>> sync = encode_sync(7)
>>> sync.hex()
'0003010301010407d58500'
>>> decode_payload(FrameSplitter().feed(b"noise" + sync)[0]).seq
7
"""

import math
import struct

from .framing import FrameError, FrameSplitter, check_crc, cobs_decode, frame, with_crc

VERSION = 1

VALUES = 0x01
FAULT = 0x02
SYNC = 0x03
HELLO_REQUEST = 0x04
HELLO = 0x80
ACK = 0x81
ENGINE = 0x82

# rangefinder_status
RF_VALID = 0
RF_ERROR = 1
RF_NO_TARGET = 2
# lidar_status
LIDAR_VALID = 0
LIDAR_NO_TARGET = 1
# VALUES flags
FLAG_CONTACT = 0x01
FLAG_CONTROLLER_FAULT = 0x02
FLAG_LOCKSTEP = 0x04
# FAULT devices and kinds
DEV_IMU = 1
DEV_LIDAR = 2
DEV_RANGEFINDER = 3
DEV_ENGINE = 4
DEV_ALL = 255
FAULT_CLEAR = 0
FAULT_SILENT = 1
FAULT_GARBAGE = 2
FAULT_LIE = 3
FAULT_UNPLUG = 4

_VALUES_FMT = ">IQ7fIBHIBB"
_FAULT_FMT = ">BBfHH"
_ACK_FMT = ">8I"
_ENGINE_FMT = ">IHBHh"
MAX_NAME = 48
MAX_PAYLOAD = 2 + struct.calcsize(_VALUES_FMT) + 2
_U32 = 0xFFFFFFFF


class StreamError(FrameError):
    """A stream frame that is not one of ours (bad CRC, version, type, length or field)."""


def _finite(x) -> bool:
    return math.isfinite(x)


class Values:
    """One rig step's sensor values (what the four emulated devices should report)."""

    def __init__(self, step: int, time_us: int, accel_mps2, gyro_radps, temperature_c: float,
                 rangefinder_range_mm: int, rangefinder_status: int, rangefinder_error_code: int,
                 lidar_range_mm: int, lidar_status: int, contact: bool, controller_fault: bool,
                 lockstep: bool = False) -> None:
        self.step = step
        self.time_us = time_us
        self.accel_mps2 = tuple(accel_mps2)  # (x, y, z) body frame
        self.gyro_radps = tuple(gyro_radps)
        self.temperature_c = temperature_c
        self.rangefinder_range_mm = rangefinder_range_mm
        self.rangefinder_status = rangefinder_status
        self.rangefinder_error_code = rangefinder_error_code
        self.lidar_range_mm = lidar_range_mm
        self.lidar_status = lidar_status
        self.contact = bool(contact)
        self.controller_fault = bool(controller_fault)
        self.lockstep = bool(lockstep)

    def _key(self):
        return (self.step, self.time_us, self.accel_mps2, self.gyro_radps, self.temperature_c,
                self.rangefinder_range_mm, self.rangefinder_status, self.rangefinder_error_code,
                self.lidar_range_mm, self.lidar_status, self.contact, self.controller_fault,
                self.lockstep)

    def __eq__(self, other):
        return isinstance(other, Values) and self._key() == other._key()

    def __repr__(self):
        return "Values%r" % (self._key(),)


class Fault:
    def __init__(self, device: int, kind: int, value: float = 0.0, count: int = 0,
                 seed: int = 0) -> None:
        self.device = device
        self.kind = kind
        self.value = value
        self.count = count
        self.seed = seed

    def _key(self):
        return (self.device, self.kind, self.value, self.count, self.seed)

    def __eq__(self, other):
        return isinstance(other, Fault) and self._key() == other._key()

    def __repr__(self):
        return "Fault%r" % (self._key(),)


class Sync:
    def __init__(self, seq: int) -> None:
        self.seq = seq

    def __eq__(self, other):
        return isinstance(other, Sync) and self.seq == other.seq

    def __repr__(self):
        return "Sync(%d)" % self.seq


class HelloRequest:
    def __eq__(self, other):
        return isinstance(other, HelloRequest)

    def __repr__(self):
        return "HelloRequest()"


class Hello:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Hello) and self.name == other.name

    def __repr__(self):
        return "Hello(%r)" % self.name


class Ack:
    """Counters at the moment everything received before the SYNC had been applied."""

    FIELDS = ("seq", "last_step", "rangefinder_requests", "rangefinder_bytes", "engine_frames",
              "engine_bad_frames", "engine_status_sent", "stream_bad_frames")

    def __init__(self, seq: int, last_step: int, rangefinder_requests: int, rangefinder_bytes: int,
                 engine_frames: int, engine_bad_frames: int, engine_status_sent: int,
                 stream_bad_frames: int) -> None:
        self.seq = seq
        self.last_step = last_step
        self.rangefinder_requests = rangefinder_requests
        self.rangefinder_bytes = rangefinder_bytes
        self.engine_frames = engine_frames
        self.engine_bad_frames = engine_bad_frames
        self.engine_status_sent = engine_status_sent
        self.stream_bad_frames = stream_bad_frames

    def _key(self):
        return tuple(getattr(self, name) for name in Ack.FIELDS)

    def __eq__(self, other):
        return isinstance(other, Ack) and self._key() == other._key()

    def __repr__(self):
        return "Ack%r" % (self._key(),)


class EngineReport:
    """An engine COMMAND the controller accepted, as the rig's dynamics need it."""

    def __init__(self, engine_frames: int, seq: int, armed: bool, throttle_e4: int,
                 pitch_e4: int) -> None:
        self.engine_frames = engine_frames  # the controller's count of accepted frames, this one included
        self.seq = seq
        self.armed = bool(armed)
        self.throttle_e4 = throttle_e4  # 0..10000 = 0..1
        self.pitch_e4 = pitch_e4  # 1e-4 rad

    @property
    def throttle(self) -> float:
        return self.throttle_e4 / 10000.0

    @property
    def pitch_rad(self) -> float:
        return self.pitch_e4 / 10000.0

    def _key(self):
        return (self.engine_frames, self.seq, self.armed, self.throttle_e4, self.pitch_e4)

    def __eq__(self, other):
        return isinstance(other, EngineReport) and self._key() == other._key()

    def __repr__(self):
        return "EngineReport%r" % (self._key(),)


def _wrap(kind: int, body) -> bytes:
    # A leading delimiter too: whatever line noise came before ends there, so the frame that
    # follows noise is never lost with it (an empty frame costs the reader nothing).
    return b"\x00" + frame(with_crc(bytes((VERSION, kind)) + bytes(body)))


def _check_u(name: str, value, bits: int) -> int:
    if not isinstance(value, int) or value < 0 or value >> bits:
        raise StreamError("%s out of range for u%d: %r" % (name, bits, value))
    return value


def encode_values(v: Values) -> bytes:
    for x in v.accel_mps2 + v.gyro_radps + (v.temperature_c,):
        if not _finite(x):
            raise StreamError("non-finite sensor value: %r" % (x,))
    if len(v.accel_mps2) != 3 or len(v.gyro_radps) != 3:
        raise StreamError("accel and gyro take three axes each")
    if v.rangefinder_status not in (RF_VALID, RF_ERROR, RF_NO_TARGET):
        raise StreamError("unknown rangefinder status %r" % (v.rangefinder_status,))
    if v.lidar_status not in (LIDAR_VALID, LIDAR_NO_TARGET):
        raise StreamError("unknown LIDAR-Lite status %r" % (v.lidar_status,))
    if _check_u("rangefinder_error_code", v.rangefinder_error_code, 16) > 999:
        raise StreamError("rangefinder error code takes three digits: %r" % (v.rangefinder_error_code,))
    flags = ((FLAG_CONTACT if v.contact else 0) | (FLAG_CONTROLLER_FAULT if v.controller_fault else 0)
             | (FLAG_LOCKSTEP if v.lockstep else 0))
    try:
        body = struct.pack(_VALUES_FMT, _check_u("step", v.step, 32), _check_u("time_us", v.time_us, 64),
                           v.accel_mps2[0], v.accel_mps2[1], v.accel_mps2[2],
                           v.gyro_radps[0], v.gyro_radps[1], v.gyro_radps[2], v.temperature_c,
                           _check_u("rangefinder_range_mm", v.rangefinder_range_mm, 32),
                           v.rangefinder_status, v.rangefinder_error_code,
                           _check_u("lidar_range_mm", v.lidar_range_mm, 32), v.lidar_status, flags)
    except (OverflowError, struct.error) as exc:  # a float beyond f32 (CPython raises here)
        raise StreamError("value does not fit its field: %s" % exc)
    return _wrap(VALUES, body)


def encode_fault(f: Fault) -> bytes:
    if f.device not in (DEV_IMU, DEV_LIDAR, DEV_RANGEFINDER, DEV_ENGINE, DEV_ALL):
        raise StreamError("unknown device %r" % (f.device,))
    if f.kind not in (FAULT_CLEAR, FAULT_SILENT, FAULT_GARBAGE, FAULT_LIE, FAULT_UNPLUG):
        raise StreamError("unknown fault kind %r" % (f.kind,))
    if not _finite(f.value):
        raise StreamError("non-finite fault value")
    try:
        body = struct.pack(_FAULT_FMT, f.device, f.kind, f.value, _check_u("count", f.count, 16),
                           _check_u("seed", f.seed, 16))
    except (OverflowError, struct.error) as exc:
        raise StreamError("value does not fit its field: %s" % exc)
    return _wrap(FAULT, body)


def encode_sync(seq: int) -> bytes:
    return _wrap(SYNC, struct.pack(">I", _check_u("seq", seq, 32)))


def encode_hello_request() -> bytes:
    return _wrap(HELLO_REQUEST, b"")


def encode_hello(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > MAX_NAME or any(b < 0x20 or b > 0x7E for b in raw):
        raise StreamError("HELLO name must be printable ASCII of at most %d bytes" % MAX_NAME)
    return _wrap(HELLO, raw)


def encode_ack(a: Ack) -> bytes:
    return _wrap(ACK, struct.pack(_ACK_FMT, *[_check_u(n, getattr(a, n), 32) for n in Ack.FIELDS]))


def encode_engine(e: EngineReport) -> bytes:
    if e.throttle_e4 > 10000 or not -32768 <= e.pitch_e4 <= 32767:
        raise StreamError("engine command out of range")
    return _wrap(ENGINE, struct.pack(_ENGINE_FMT, _check_u("engine_frames", e.engine_frames, 32),
                                     _check_u("seq", e.seq, 16), 1 if e.armed else 0,
                                     _check_u("throttle_e4", e.throttle_e4, 16), e.pitch_e4))


def _need(body, size: int, what: str) -> None:
    if len(body) != size:
        raise StreamError("%s body is %d bytes, want %d" % (what, len(body), size))


def decode_payload(payload):
    """One COBS-decoded payload -> a message object, or StreamError."""
    if len(payload) < 4:
        raise StreamError("frame too short (%d bytes)" % len(payload))
    try:
        body = check_crc(payload)
    except FrameError as exc:
        raise StreamError(str(exc))
    if body[0] != VERSION:
        raise StreamError("stream version %d, this side speaks %d" % (body[0], VERSION))
    kind = body[1]
    body = body[2:]
    if kind == VALUES:
        _need(body, struct.calcsize(_VALUES_FMT), "VALUES")
        f = struct.unpack(_VALUES_FMT, body)
        for x in f[2:9]:
            if not _finite(x):
                raise StreamError("non-finite sensor value")
        if f[10] not in (RF_VALID, RF_ERROR, RF_NO_TARGET) or f[11] > 999:
            raise StreamError("bad rangefinder status %d / error code %d" % (f[10], f[11]))
        if f[13] not in (LIDAR_VALID, LIDAR_NO_TARGET) or f[14] & 0xF8:
            raise StreamError("bad LIDAR-Lite status %d / flags %02X" % (f[13], f[14]))
        flags = f[14]
        return Values(f[0], f[1], f[2:5], f[5:8], f[8], f[9], f[10], f[11], f[12], f[13],
                      flags & FLAG_CONTACT, flags & FLAG_CONTROLLER_FAULT, flags & FLAG_LOCKSTEP)
    if kind == FAULT:
        _need(body, struct.calcsize(_FAULT_FMT), "FAULT")
        f = struct.unpack(_FAULT_FMT, body)
        if f[0] not in (DEV_IMU, DEV_LIDAR, DEV_RANGEFINDER, DEV_ENGINE, DEV_ALL) or f[1] > FAULT_UNPLUG:
            raise StreamError("unknown fault device %d / kind %d" % (f[0], f[1]))
        if not _finite(f[2]):
            raise StreamError("non-finite fault value")
        return Fault(f[0], f[1], f[2], f[3], f[4])
    if kind == SYNC:
        _need(body, 4, "SYNC")
        return Sync(struct.unpack(">I", body)[0])
    if kind == HELLO_REQUEST:
        _need(body, 0, "HELLO request")
        return HelloRequest()
    if kind == HELLO:
        if len(body) > MAX_NAME or any(b < 0x20 or b > 0x7E for b in body):
            raise StreamError("HELLO name is not printable ASCII of at most %d bytes" % MAX_NAME)
        return Hello(body.decode())
    if kind == ACK:
        _need(body, struct.calcsize(_ACK_FMT), "ACK")
        return Ack(*struct.unpack(_ACK_FMT, body))
    if kind == ENGINE:
        _need(body, struct.calcsize(_ENGINE_FMT), "ENGINE")
        f = struct.unpack(_ENGINE_FMT, body)
        if f[2] & 0xFE or f[3] > 10000:
            raise StreamError("bad ENGINE flags %02X / throttle %d" % (f[2], f[3]))
        return EngineReport(f[0], f[1], f[2] & 1, f[3], f[4])
    raise StreamError("unknown stream frame type 0x%02X" % kind)


def decode_frame(data):
    """One whole frame (COBS bytes, with or without the trailing 0x00) -> a message."""
    data = bytes(data)
    if data.startswith(b"\x00"):
        data = data[1:]
    if data.endswith(b"\x00"):
        data = data[:-1]
    if not data or 0 in data:
        raise StreamError("not exactly one frame")
    try:
        payload = cobs_decode(data)
    except FrameError as exc:
        raise StreamError(str(exc))
    return decode_payload(payload)


class StreamDecoder:
    """Bytes in (any split), messages out, in order. Never raises: bad frames are counted."""

    def __init__(self) -> None:
        self._splitter = FrameSplitter(max_frame=MAX_PAYLOAD + MAX_PAYLOAD // 254 + 2)
        self._refused = 0
        self.messages = 0
        self.last_error = ""

    @property
    def bad_frames(self) -> int:
        return self._splitter.bad_frames + self._refused

    def feed(self, data) -> list:
        out = []
        for payload in self._splitter.feed(data):
            try:
                out.append(decode_payload(payload))
                self.messages += 1
            except FrameError as exc:
                self._refused += 1
                self.last_error = str(exc)
        return out
