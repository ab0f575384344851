"""DRV-010..016: the engine-controller link (COBS + CRC-16/CCITT-FALSE) over a real pty."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.devices.engine_link import (
    COMMAND,
    CommandFrame,
    EngineFrameError,
    EngineLink,
    EngineStatus,
    FrameStream,
    crc16,
    decode_payload,
    encode_command,
    encode_command_frame,
    encode_status,
    frame,
)
from tests.driver_helpers import CallTimer, FlightClock, PtyDevice


def crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE the long way round, as the protocol text defines it (poly 0x1021,
    init 0xFFFF, MSB first, no reflection, no final xor): the reference for crc_hqx."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# -- DRV-010: fixed vectors ----------------------------------------------------------------------
def test_drv010_crc_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1  # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc_bitwise(b"123456789") == 0x29B1


# STATUS seq 0x0102, armed + contact, throttle 2500, pitch -50e-4 rad, last command 0x0101, 2 refused
STATUS_PAYLOAD = bytes.fromhex("81" "0102" "03" "09c4" "ffce" "0101" "0002" "2119")
STATUS_LINE = bytes.fromhex("00" "0b8101020309c4ffce010104022119" "00")
# COMMAND seq 7, armed, throttle 0.5 (5000), pitch -0.1 rad (-1000)
COMMAND_PAYLOAD = bytes.fromhex("01" "0007" "01" "1388" "fc18" "c3e8")
COMMAND_LINE = bytes.fromhex("00" "02010907011388fc18c3e8" "00")


def test_drv010_status_vector():
    assert crc_bitwise(STATUS_PAYLOAD[:-2]) == 0x2119
    status = decode_payload(STATUS_PAYLOAD)
    assert isinstance(status, EngineStatus)
    assert status == EngineStatus(seq=0x0102, armed=True, contact=True, fault=False, throttle_e4=2500,
                                  pitch_e4=-50, last_command_seq=0x0101, controller_bad_frames=2)
    assert status.throttle == 0.25 and status.pitch_rad == pytest.approx(-0.005)
    assert encode_status(status) == STATUS_PAYLOAD
    assert FrameStream().feed(STATUS_LINE) == [status]


def test_drv010_command_vector():
    assert crc_bitwise(COMMAND_PAYLOAD[:-2]) == 0xC3E8
    assert encode_command(7, True, 0.5, -0.1) == COMMAND_PAYLOAD
    assert frame(COMMAND_PAYLOAD) == COMMAND_LINE
    assert decode_payload(COMMAND_PAYLOAD) == CommandFrame(7, True, 5000, -1000)


@pytest.mark.parametrize("throttle, pitch, expected", [
    (1.5, 0.0, (10000, 0)), (-0.2, 0.0, (0, 0)),
    (0.5, 4.0, (5000, 32767)), (0.5, -4.0, (5000, -32767)),
    (0.12345, 0.00005, (1234, 0)),  # rounding to the nearest unit (banker's on the half)
])
def test_drv010_sender_clamps(throttle, pitch, expected):
    c = decode_payload(encode_command(1, False, throttle, pitch))
    assert (c.throttle_e4, c.pitch_e4) == expected


def test_drv010_non_finite_commands_are_refused():
    with pytest.raises(EngineFrameError):
        encode_command(1, True, float("nan"), 0.0)
    with pytest.raises(EngineFrameError):
        encode_command(1, True, 0.5, float("inf"))


def test_drv011_receiver_refuses_bad_frames():
    seal = lambda body: body + crc16(body).to_bytes(2, "big")
    with pytest.raises(EngineFrameError, match="throttle 10001"):
        decode_payload(seal(bytes.fromhex("810001" "00" "2711" "0000" "0000" "0000")))
    with pytest.raises(EngineFrameError, match="CRC"):
        decode_payload(STATUS_PAYLOAD[:-1] + b"\x00")
    with pytest.raises(EngineFrameError, match="unknown frame type"):
        decode_payload(seal(bytes.fromhex("420001")))
    with pytest.raises(EngineFrameError, match="STATUS is 14 bytes"):
        decode_payload(seal(STATUS_PAYLOAD[:-3]))
    s = FrameStream()
    # garbage, a torn frame, a corrupted frame, a COMMAND where STATUS is expected, then a good one
    line = b"\x13\x37" + STATUS_LINE[:7] + b"\x00" + STATUS_LINE.replace(b"\x21\x19", b"\x21\x18") \
        + frame(COMMAND_PAYLOAD) + STATUS_LINE
    assert s.feed(line) == [decode_payload(STATUS_PAYLOAD)]
    assert s.bad_frames == 4


def test_drv011_bytes_without_a_delimiter_do_not_pile_up():
    s = FrameStream()
    assert s.feed(b"\x01" * 1000) == [] and s.bad_frames == 1
    assert s.feed(b"\x01" * 1000 + STATUS_LINE) == [decode_payload(STATUS_PAYLOAD)]
    assert s.bad_frames == 1 and len(s._pending) == 0


statuses = st.builds(EngineStatus, st.integers(0, 0xFFFF), st.booleans(), st.booleans(), st.booleans(),
                     st.integers(0, 10000), st.integers(-32768, 32767), st.integers(0, 0xFFFF),
                     st.integers(0, 0xFFFF))
commands = st.builds(CommandFrame, st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 10000),
                     st.integers(-32767, 32767))


@given(statuses)
def test_drv010_status_round_trips(status):
    assert decode_payload(encode_status(status)) == status


@given(commands)
def test_drv010_command_round_trips(command):
    assert decode_payload(encode_command_frame(command)) == command


@given(st.lists(st.tuples(statuses, st.binary(max_size=20))))
def test_drv011_statuses_among_delimited_garbage_all_come_out_in_order(items):
    line = b"".join(garbage + frame(encode_status(s)) for s, garbage in items)
    s = FrameStream()
    out = [x for i in range(0, len(line), 7) for x in s.feed(line[i:i + 7])]
    assert out == [status for status, _ in items]


# -- the driver over a real pty ------------------------------------------------------------------
def status_line(seq, contact=False, armed=False, fault=False, last_command_seq=0):
    return frame(encode_status(EngineStatus(seq & 0xFFFF, armed, contact, fault, 0, 0, last_command_seq, 0)))


class ControllerBench:
    """The engine controller played on the pty master: STATUS at 50 Hz, COMMAND frames collected."""

    def __init__(self, tmp_path, **kwargs):
        self.device = PtyDevice(tmp_path / "engine")
        self.clock = FlightClock()
        self.timer = CallTimer()
        self.link = EngineLink(str(self.device.path), self.clock, **kwargs)
        self.commands = FrameStream(accept=COMMAND)
        self.received: list[CommandFrame] = []
        self.sending = True
        self.contact = False
        self.seq = 0
        self.garbage = b""

    def tick(self, dt=0.01):
        self.clock.advance(dt)
        if self.device.master >= 0:
            self.received += self.commands.feed(self.device.read())
            if self.sending and round(self.clock.t / dt) % 2 == 0:  # 50 Hz
                self.seq += 1
                last = self.received[-1].seq if self.received else 0
                self.device.write(self.garbage + status_line(self.seq, self.contact, last_command_seq=last))

    def run(self, seconds, dt=0.01, command=None):
        closed = []
        for i in range(round(seconds / dt)):
            self.tick(dt)
            if command is not None and i % 10 == 0:  # guidance at 10 Hz
                self.timer(self.link.command, *command)
            closed.append(self.timer(self.link.closed))
        return closed


@pytest.fixture
def bench(tmp_path):
    b = ControllerBench(tmp_path)
    yield b
    b.link.close()
    b.device.close()


def test_drv012_commands_go_out_with_increasing_sequence_numbers(bench):
    bench.link.arm(True)
    bench.run(1.0, command=(0.6, 0.05))
    bench.received += bench.commands.feed(bench.device.read())
    assert [c.seq for c in bench.received] == list(range(11))  # the arm frame, then 10 commands
    assert bench.received[0] == CommandFrame(0, True, 0, 0)  # arming goes out at once
    assert all(c == CommandFrame(c.seq, True, 6000, 500) for c in bench.received[1:])
    bench.link.arm(False)
    bench.received += bench.commands.feed(bench.device.read())
    assert bench.received[-1] == CommandFrame(11, False, 6000, 500)
    assert bench.link.unacknowledged <= 1


def test_drv012_non_finite_command_is_not_sent(bench):
    bench.link.command(float("nan"), 0.0)
    assert bench.device.read() == b"" and bench.link.refused_commands == 1


def test_drv013_contact_reported_from_status_while_healthy(bench):
    assert not any(bench.run(0.2))
    bench.contact = True
    closed = bench.run(0.2)
    assert closed[-1] and bench.link.health.ok
    assert bench.link.status.contact and bench.link.health.frames == 20
    # the controller goes silent with contact last reported: contact is not believed after 0.3 s
    bench.sending = False
    closed = bench.run(0.5)
    assert closed[:25] == [True] * 25 and not any(closed[35:])
    assert not bench.link.health.ok and bench.link.health.timeouts == 1  # once per silence
    bench.sending = True
    assert bench.run(0.1)[-1] and bench.link.health.ok


def test_drv013_statuses_buffered_while_nobody_polled_are_not_believed(bench):
    bench.run(0.1)
    # one second without a poll: the controller's statuses (contact closed, then) pile up
    for seq in range(50):
        bench.device.write(status_line(1000 + seq, contact=True))
    bench.clock.advance(1.0)
    assert not bench.link.closed() and not bench.link.health.ok  # stale: dropped, not believed
    bench.sending, bench.contact = True, False
    bench.tick()
    bench.tick()
    assert not bench.link.closed() and bench.link.health.ok  # the fresh status says open
    assert bench.link.status.seq not in range(1000, 1050)


def test_drv013_no_status_at_all_is_a_timeout(bench):
    bench.sending = False
    bench.run(0.5)
    assert not bench.link.healthy and bench.link.health.timeouts == 1


def test_drv014_garbage_and_corruption_between_statuses(bench):
    # before every STATUS: noise ended by a delimiter, noise ended by the torn frame's leading
    # delimiter, and the torn frame itself: three bad frames each time, no good one lost
    bench.garbage = b"\x55\xaa\x00\x01\x02" + status_line(999)[:-3] + b"\x00"
    bench.run(0.4)
    assert bench.link.health.frames == 20 and bench.link.health.bad_frames == 60
    assert bench.link.missed_status == 0 and bench.link.health.ok


def test_drv015_unplug_and_replug(bench):
    t0 = time.monotonic()
    bench.run(0.3, command=(0.5, 0.0))
    bench.device.unplug()
    closed = bench.run(0.5, command=(0.5, 0.0))  # guidance goes on commanding into the void
    assert not any(closed[-10:]) and not bench.link.health.ok
    assert bench.link.health.io_errors >= 1
    bench.device.plug()
    bench.commands.reset()
    back_at = bench.clock.t
    while not bench.link.health.ok:
        bench.run(0.01, command=(0.5, 0.0))
        assert bench.clock.t - back_at < 1.0, "not back within 1 s"
    assert bench.link.health.reopens == 1
    before = len(bench.received)
    bench.run(0.3, command=(0.5, 0.0))
    assert len(bench.received) > before  # commands reach the new controller
    assert time.monotonic() - t0 < 10.0


def test_drv016_a_line_that_never_drains_does_not_block(bench):
    """Nobody reads the controller's end: the kernel buffer fills, writes must not wait (pyserial's
    own write with write_timeout=0 would spin here forever)."""
    timer = CallTimer()
    for _ in range(20_000):
        timer(bench.link.command, 0.5, 0.0)
    assert bench.link.dropped_bytes > 0
    assert timer.worst_s < 0.02, timer.worst_s


def test_drv016_calls_do_not_block(bench):
    bench.garbage = bytes(range(1, 100))
    bench.run(1.0, command=(0.5, 0.1))
    bench.device.unplug()
    bench.run(0.5, command=(0.5, 0.1))
    bench.device.plug()
    bench.run(0.5, command=(0.5, 0.1))
    assert bench.timer.worst_s < 0.02, bench.timer.worst_s


# -- preflight -----------------------------------------------------------------------------------
def _probe_with(tmp_path, lines):
    device = PtyDevice(tmp_path / "probe")
    link = EngineLink(str(device.path), FlightClock())
    stop = threading.Event()

    def controller():
        seq = 0
        while not stop.is_set():
            seq += 1
            device.write(lines(seq))
            time.sleep(0.02)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    try:
        return link.probe(timeout_s=0.3)
    finally:
        stop.set()
        thread.join()
        link.close()
        device.close()


def test_drv017_probe_passes_a_talking_controller(tmp_path):
    result = _probe_with(tmp_path, lambda seq: status_line(seq))
    assert result.ok and "disarmed" in result.reason


@pytest.mark.parametrize("lines, words", [
    (lambda seq: b"", "0 STATUS frames in 0.3 s"),
    (lambda seq: b"\x01\x02\x03\x00", "bad frames"),
    (lambda seq: status_line(seq, fault=True), "fault"),
    (lambda seq: status_line(seq, armed=True), "armed before"),
])
def test_drv017_probe_fails_a_silent_garbled_faulty_or_armed_controller(tmp_path, lines, words):
    result = _probe_with(tmp_path, lines)
    assert not result.ok and words in result.reason
