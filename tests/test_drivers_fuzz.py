"""DRV-040: every driver-side parser fuzzed: rangefinder replies, LIDAR-Lite reads, IMU bursts,
engine STATUS frames, and the telecommand gate.

Each example is one byte string read as a script (valid frames, garbage, tearing, bus faults),
so a test costs one cheap draw per example and 100,000 examples stay within a CI run. Two
properties per parser, in the same example: nothing escapes but our own error type (the
drivers: nothing at all, only their documented results), and the valid frames put in among
the garbage all come out, in order. The `slow` test runs 100,000 examples and gives each to
every parser (hypothesis's own cost per example is paid once); the fast ones run the same
properties on a few hundred per parser, so `pytest -m "not slow"` still exercises them.
"""

from __future__ import annotations

import errno
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flight.devices.engine_link import (
    EngineFrameError,
    EngineStatus,
    FrameStream,
    decode_payload,
    encode_status,
    frame,
)
from flight.devices.icm42688 import (
    BURST_LEN,
    Icm42688,
    ImuFrameError,
    decode_burst,
    no_data_axes,
    parse_mounting,
    to_body,
)
from flight.devices.interfaces import DeviceError, ImuSample, RangeSample
from flight.devices.lidarlite import LidarFrameError, LidarLite, decode_distance, is_busy
from flight.devices.rangefinder import RangefinderFrameError, RangeReply, ReplyParser, decode_reply
from flight.telemetry import cobs
from flight.telemetry.commands import CommandGate, Rejection, Telecommand, build_command
from flight.telemetry.dictionary import load
from tests.driver_helpers import FlightClock, drain

QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
SLOW = settings(max_examples=100_000, suppress_health_check=QUIET, deadline=None)
FAST = settings(max_examples=300, suppress_health_check=QUIET, deadline=None)
# One fixed-size draw per example (hypothesis's cheapest), its first byte choosing the script's
# length: half the examples 0..31 bytes, half 32..159.
SCRIPT = st.binary(min_size=160, max_size=160).map(
    lambda raw: raw[1:1 + (raw[0] & 0x1F if raw[0] < 0x80 else 32 + raw[0] - 0x80)])


class Script:
    """Reads a fuzz byte string as a sequence of small decisions; zeros once it runs out."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.i = 0

    @property
    def more(self) -> bool:
        return self.i < len(self.raw)

    def byte(self) -> int:
        b = self.raw[self.i] if self.i < len(self.raw) else 0
        self.i += 1
        return b

    def take(self, n: int) -> bytes:
        out = self.raw[self.i:self.i + n]
        self.i += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n).ljust(n, b"\0"), "big")


def torn(stream: bytes, raw: bytes):
    """The stream in pieces of 1..24 bytes, sizes taken from the script."""
    i, k = 0, 0
    while i < len(stream):
        n = 1 + (raw[k % len(raw)] % 24 if raw else 7)
        yield stream[i:i + n]
        i += n
        k += 1


# -- rangefinder replies ------------------------------------------------------------------------
def lrf_reply(body: str) -> bytes:
    return (body + f"{sum(body.encode()) % 256:02X}").encode()


def check_rangefinder(raw: bytes) -> None:
    try:
        decode_reply(raw[:10])
    except RangefinderFrameError:
        pass
    ReplyParser().feed(raw)
    s, stream, expected = Script(raw), b"", []
    while s.more:
        op = s.byte()
        if op % 4 == 0:
            stream += s.take(op >> 3)  # garbage, up to 31 bytes
            continue
        if op % 4 == 3:
            code = f"{s.number(4) % 16**7:07X}"
            stream += lrf_reply("R" + code)
            expected.append(RangeReply(False, 0, code))
        else:
            cm = s.number(3) % 10_000_000
            stream += lrf_reply(f"v{cm:07d}")
            expected.append(RangeReply(True, cm, ""))
        stream += (b"", b"\r", b"\r\n", b"\n")[op >> 6]
    parser = ReplyParser()
    out = [r for piece in torn(stream, raw) for r in parser.feed(piece)]
    assert out == expected


# -- engine STATUS frames -----------------------------------------------------------------------
def check_engine(raw: bytes) -> None:
    for attempt in (lambda: decode_payload(raw), lambda: decode_payload(cobs.decode(raw))):
        try:
            attempt()
        except (EngineFrameError, cobs.CobsError):
            pass
    FrameStream().feed(raw)
    s, stream, expected = Script(raw), b"", []
    while s.more:
        op = s.byte()
        if op % 3 == 0:
            stream += s.take(op >> 3)  # garbage, zeros included
            continue
        fields = s.take(12).ljust(12, b"\0")
        seq, flags, throttle, pitch, last, bad = struct.unpack(">HBHhHH", fields[:11])
        status = EngineStatus(seq, bool(flags & 1), bool(flags & 2), bool(flags & 4), throttle % 10_001, pitch,
                              last, bad)
        stream += frame(encode_status(status))
        expected.append(status)
    decoder = FrameStream()
    out = [x for piece in torn(stream, raw) for x in decoder.feed(piece)]
    assert out == expected


# -- I2C drivers on a scripted bus --------------------------------------------------------------
class ScriptBus:
    """A bus whose every transaction is served by a register model, or, where the script says
    so, fails: NACK, timeout, EIO, or an answer of the wrong shape."""

    def __init__(self, script: Script, model) -> None:
        self.script = script
        self.model = model

    def _fault(self, kind: str):
        if not self.script.more:
            return None
        op = self.script.byte()
        if op >= 0x28:
            return None
        choice = op % 8
        if choice < 3:
            raise OSError((errno.EREMOTEIO, errno.ETIMEDOUT, errno.EIO)[choice], "scripted")
        if kind == "byte":
            return (256, -1, None, "x", 1.5)[choice - 3]
        return ([], [1] * 40, None, [256, 0], 14)[choice - 3]  # 14: bytes(14) would pass for a burst

    def read_byte_data(self, addr, reg, force=None):
        bad = self._fault("byte")
        return bad if bad is not None else self.model.read(reg, 1)[0]

    def read_i2c_block_data(self, addr, reg, length, force=None):
        bad = self._fault("block")
        return bad if bad is not None else list(self.model.read(reg, length))

    def write_byte_data(self, addr, reg, value, force=None):
        if self._fault("write") is None:
            self.model.write(reg, bytes([value]))

    def write_i2c_block_data(self, addr, reg, data, force=None):
        if self._fault("write") is None:
            self.model.write(reg, bytes(data))


class LidarScriptModel:
    def __init__(self, script: Script, distances: list[int]) -> None:
        self.regs = bytearray(256)
        self.script = script
        self.queue = list(distances)
        self.served: list[int] = []
        self.busy_left = 0

    def write(self, reg, data):
        self.regs[reg] = data[0]
        if reg == 0 and data[0]:
            self.busy_left = self.script.byte() % 3

    def read(self, reg, n):
        if reg == 0x01:
            busy = self.busy_left > 0
            self.busy_left -= busy
            return bytes([(self.script.byte() & 0xFE) | int(busy)])  # other STATUS bits: anything
        if reg == 0x0F and n == 2 and self.queue:
            cm = self.queue.pop(0)
            self.served.append(cm)
            return cm.to_bytes(2, "big")
        return bytes(n)


def check_lidar(raw: bytes) -> None:
    try:
        decode_distance(raw[:2])
        is_busy(raw[0] if raw else 0)
    except LidarFrameError:
        pass
    s = Script(raw)
    distances = [5 + s.number(2) % 3996 for _ in range(s.byte() % 8)]  # in range: 0.05..40 m
    model = LidarScriptModel(s, distances)
    clock = FlightClock()
    lidar = LidarLite(ScriptBus(s, model), clock, period_s=0.01, backoff_max_s=0.04)
    samples = []
    for _ in range(400):
        clock.advance(0.01)
        for item in drain(lidar.read):
            assert isinstance(item, (RangeSample, DeviceError)) and item.time_s == clock.t
            if isinstance(item, RangeSample):
                samples.append(round(item.range_m * 100))
        if not model.queue:
            break
    assert samples == model.served
    assert not model.queue, "the driver stopped reading"


class ImuScriptModel:
    def __init__(self, script: Script, bursts: list[tuple[int, ...]]) -> None:
        self.regs = bytearray(256)
        self.regs[0x75] = 0x47
        self.script = script
        self.queue = list(bursts)
        self.served: list[tuple[int, ...]] = []

    def write(self, reg, data):
        self.regs[reg:reg + len(data)] = data

    def read(self, reg, n):
        if reg == 0x1D and n == BURST_LEN:
            if self.regs[0x4E] != 0x0F:
                return struct.pack(">7h", *([-32768] * 7))
            if self.queue:
                burst = self.queue.pop(0)
                self.served.append(burst)
                return struct.pack(">7h", *burst)
            return struct.pack(">7h", 0, 0, 0, 2048, 0, 0, 0)
        return bytes(self.regs[reg:reg + n])


def check_imu(raw: bytes) -> None:
    try:
        burst = decode_burst(raw[:BURST_LEN])
        no_data_axes(burst)
        to_body(burst, 0.0, parse_mounting("+x+y+z"))
    except ImuFrameError:
        pass
    s = Script(raw)
    bursts = [tuple(max(-32767, v) for v in struct.unpack(">7h", s.take(14).ljust(14, b"\0")))
              for _ in range(s.byte() % 8)]
    model = ImuScriptModel(s, bursts)
    clock = FlightClock()
    imu = Icm42688(ScriptBus(s, model), clock, period_s=0.02, backoff_max_s=0.08, identity_retry_s=0.04)
    mounting = parse_mounting("+x+y+z")
    samples = []
    for _ in range(600):
        clock.advance(0.02)
        for item in drain(imu.read):
            assert isinstance(item, (ImuSample, DeviceError)) and item.time_s == clock.t
            if isinstance(item, ImuSample):
                samples.append(item[1:])
        if not model.queue:
            break
    served = [to_body(decode_burst(struct.pack(">7h", *b)), 0.0, mounting)[1:] for b in model.served]
    assert samples[:len(served)] == served  # then the model's idle "at rest" bursts
    assert not model.queue, "the driver stopped reading"
    assert all(math.isfinite(v) for sample in samples for v in sample)


# -- the telecommand gate -----------------------------------------------------------------------
D = load()
KEY = b"k" * 32
NAMES = sorted(D.commands)
ARG_MAKERS = {"d": lambda s: struct.unpack(">d", s.take(8).ljust(8, b"\0"))[0], "B": lambda s: s.number(1),
              "H": lambda s: s.number(2), "I": lambda s: s.number(4)}


def check_gate(raw: bytes) -> None:
    gate = CommandGate(KEY, D)
    assert isinstance(gate.check(raw), (Telecommand, Rejection))
    s, sequence, expected, got = Script(raw), 0, [], []
    while s.more:
        op = s.byte()
        if op % 3 == 0:  # garbage: script bytes, or a valid packet with one byte changed
            packet = s.take(op >> 2)
            if op & 0x80 and sequence:
                good = bytearray(build_command(KEY, "PING", sequence + 1, epoch=gate.epoch, dictionary=D))
                good[s.number(1) % len(good)] ^= 1 + s.number(1) % 255
                packet = bytes(good)
            result = gate.check(packet)
            assert isinstance(result, Rejection), result
            continue
        cmd = D.commands[NAMES[op % len(NAMES)]]
        args = tuple(ARG_MAKERS[c](s) for c in cmd.args)
        sequence += 1 + s.number(1) % 3
        result = gate.check(build_command(KEY, cmd.name, sequence, *args, epoch=gate.epoch, dictionary=D))
        finite = all(not (isinstance(a, float) and not math.isfinite(a)) for a in args)
        if finite:
            expected.append((cmd.name, sequence))
        if isinstance(result, Telecommand):
            got.append((result.name, result.sequence))
        else:
            assert not finite and result.reason.endswith("non-finite argument")
    assert got == expected


CHECKS = {"rangefinder": check_rangefinder, "engine": check_engine, "lidarlite": check_lidar,
          "icm42688": check_imu, "telecommand": check_gate}


@pytest.mark.parametrize("parser", sorted(CHECKS))
@FAST
@given(raw=SCRIPT)
def test_drv040_fuzz_fast(parser, raw):
    CHECKS[parser](raw)


@pytest.mark.slow
@SLOW
@given(raw=SCRIPT)
def test_drv040_fuzz_every_parser_100k(raw):
    """100,000 examples, each one given to every parser: each parser sees 100,000 examples,
    and hypothesis's own cost per example (~0.25 ms, more than most parsers') is paid once."""
    for check in CHECKS.values():
        check(raw)
