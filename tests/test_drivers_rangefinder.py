"""DRV-001..006: the km-class laser rangefinder (Vectronix-style ASCII) over a real pty."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.devices.interfaces import PRIMARY_ALTIMETER, DeviceError, RangeSample
from flight.devices.rangefinder import (
    REQUEST,
    Rangefinder,
    RangefinderFrameError,
    RangeReply,
    ReplyParser,
    checksum,
    decode_reply,
)
from tests.driver_helpers import CallTimer, FlightClock, PtyDevice, drain


# -- the device's side, written here from the protocol text (not from the driver) ---------------
def reply(range_cm: int | None, code: str = "0000001", line_end: bytes = b"\r") -> bytes:
    body = f"v{range_cm:07d}" if range_cm is not None else f"R{code}"
    return (body + f"{sum(body.encode()) % 256:02X}").encode() + line_end


# -- DRV-001: the codec against fixed vectors --------------------------------------------------
@pytest.mark.parametrize("frame, expected", [
    (b"v0005950D9", RangeReply(True, 5950, "")),  # the protocol description's own example: 59.50 m
    (b"v0000000C6", RangeReply(True, 0, "")),  # 118 + 7*48 = 454 = 0x1C6
    (b"v999999905", RangeReply(True, 9_999_999, "")),  # 99,999.99 m: 118 + 7*57 = 517 = 0x205
    (b"v0000150CC", RangeReply(True, 150, "")),
    (b"v0000150cc", RangeReply(True, 150, "")),  # hex either case
    (b"R0000001A3", RangeReply(False, 0, "0000001")),
])
def test_drv001_fixed_reply_vectors(frame, expected):
    assert decode_reply(frame) == expected


def test_drv001_checksum_is_the_low_byte_of_the_sum_of_eight_characters():
    assert checksum(b"v0005950") == 0xD9
    assert checksum(b"v9999999") == 0x05  # wraps


@pytest.mark.parametrize("frame", [
    b"v0005950D8",  # checksum off by one
    b"v0005950",  # short
    b"v0005950D9\r",  # the line end is not part of the reply
    b"x0005950D9",  # not a status letter
    b"v00059a0D9",  # not a digit
    b"v0005950G9",  # not hex
    b"RZZZZZZZ00",  # not an error code
])
def test_drv001_malformed_replies_raise_our_error(frame):
    with pytest.raises(RangefinderFrameError):
        decode_reply(frame)


def test_drv002_parser_resynchronises_after_garbage_and_torn_replies():
    p = ReplyParser()
    stream = (b"\x00\xffgarbage" + reply(5950) + b"v00059" + reply(1234) + b"v0005950D8\r"
              + reply(None) + b"\r\n\r\n" + reply(150, line_end=b""))
    # one byte at a time: every reply torn at every position
    out = [r for i in range(len(stream)) for r in p.feed(stream[i:i + 1])]
    assert out == [RangeReply(True, 5950, ""), RangeReply(True, 1234, ""), RangeReply(False, 0, "0000001"),
                   RangeReply(True, 150, "")]
    assert p.bad_frames == 3  # the garbage, the torn "v00059", the bad checksum


replies = st.one_of(st.integers(0, 9_999_999).map(lambda cm: (cm, None)),
                    st.text("0123456789ABCDEF", min_size=7, max_size=7).map(lambda code: (None, code)))


def _stream_property(data, frames, garbages):
    expected, stream = [], b""
    for (cm, code), garbage in zip(frames, garbages):
        stream += garbage + reply(cm, code or "0000001", line_end=data.draw(st.sampled_from([b"", b"\r", b"\r\n"])))
        expected.append(RangeReply(True, cm, "") if cm is not None else RangeReply(False, 0, code))
    p, out, i = ReplyParser(), [], 0
    while i < len(stream):  # arbitrary tearing
        n = data.draw(st.integers(1, 24))
        out += p.feed(stream[i:i + n])
        i += n
    assert out == expected


@given(st.data(), st.lists(replies, max_size=6))
def test_drv002_valid_replies_among_garbage_all_come_out_in_order(data, frames):
    garbages = [data.draw(st.binary(max_size=30)) for _ in frames]
    _stream_property(data, frames, garbages)


# -- the driver over a real pty ----------------------------------------------------------------
class LrfBench:
    """The rangefinder played on the pty master: answers each request with `range_cm`."""

    def __init__(self, tmp_path, **driver_kwargs):
        self.device = PtyDevice(tmp_path / "lrf")
        self.clock = FlightClock()
        self.timer = CallTimer()
        self.driver = Rangefinder(str(self.device.path), self.clock, **driver_kwargs)
        self.range_cm: int | None = 5950
        self.answer = True
        self.before_reply = b""
        self.requests = 0

    def serve(self):
        if self.device.master < 0:
            return
        got = self.device.read()
        n = got.count(REQUEST)
        self.requests += n
        if self.answer:
            for _ in range(n):
                self.device.write(self.before_reply + reply(self.range_cm))

    def tick(self, dt=0.01):
        """One executive tick: the clock moves, the device answers what was asked, the task reads."""
        self.clock.advance(dt)
        self.serve()
        return drain(lambda: self.timer(self.driver.read))

    def run(self, seconds, dt=0.01):
        out = []
        for _ in range(round(seconds / dt)):
            out += self.tick(dt)
        return out


@pytest.fixture
def lrf(tmp_path):
    bench = LrfBench(tmp_path)
    yield bench
    bench.driver.close()
    bench.device.close()


def test_drv003_requests_at_the_configured_rate_and_stamps_at_decode(lrf):
    out = lrf.run(1.0)
    assert lrf.requests == 5  # 5 Hz default
    assert len(out) == 5 and all(isinstance(s, RangeSample) for s in out)
    s = out[0]
    assert s.range_m == pytest.approx(59.50) and s.valid
    assert s.sigma_m == pytest.approx(0.3 + 5e-4 * 59.50)  # the configured noise model
    # each reply is decoded on the tick after its request (the device answers between ticks)
    assert [round(x.time_s, 2) for x in out] == [0.02, 0.22, 0.42, 0.62, 0.82]
    assert lrf.driver.sensor_id == PRIMARY_ALTIMETER
    assert lrf.driver.health.frames == 5 and lrf.driver.health.ok


def test_drv003_rate_is_configurable_and_bounded(tmp_path):
    bench = LrfBench(tmp_path, rate_hz=10.0)
    bench.run(1.0)
    assert bench.requests == 10
    with pytest.raises(ValueError):
        Rangefinder(str(tmp_path / "x"), bench.clock, rate_hz=100.0)
    bench.driver.close()
    bench.device.close()


def test_drv002_garbage_torn_and_corrupted_replies_on_the_line(lrf):
    lrf.before_reply = b"\x00\x13noise>"
    out = lrf.run(0.5)
    assert [s.range_m for s in out] == pytest.approx([59.5] * 3)
    assert lrf.driver.health.bad_frames == 3
    # a reply torn over two ticks, then a corrupted one, then a good one
    lrf.answer = False
    lrf.tick()
    lrf.run(0.2)
    lrf.device.write(reply(1234)[:4])
    assert lrf.tick() == []
    lrf.device.write(reply(1234)[4:] + b"v0005950D8\r")
    got = lrf.tick()
    assert [s.range_m for s in got] == pytest.approx([12.34])
    bad = lrf.driver.health.bad_frames
    lrf.answer, lrf.before_reply = True, b""
    assert [s.range_m for s in lrf.run(0.2)] == pytest.approx([59.5])
    assert lrf.driver.health.bad_frames == bad


def test_drv003_a_reply_nobody_asked_for_is_not_a_sample(lrf):
    assert len(lrf.run(0.05)) == 1  # the request is answered: none outstanding now
    lrf.device.write(reply(150))  # left over from preflight, or a duplicate: its time is unknown
    assert lrf.tick() == []
    assert lrf.driver.unsolicited == 1


def test_drv003_error_reply_is_a_sample_flagged_invalid(lrf):
    lrf.range_cm = None
    out = [s for s in lrf.run(0.5) if isinstance(s, RangeSample)]
    assert out and all(not s.valid and math.isnan(s.range_m) for s in out)
    assert lrf.driver.error_replies == len(out) and lrf.driver.last_error_code == "0000001"
    assert lrf.driver.health.ok  # the unit answered: the link is fine


def test_drv003_below_the_minimum_range_is_flagged_invalid(lrf):
    lrf.range_cm = 50  # 0.5 m: below the unit's 1 m minimum
    out = lrf.run(0.3)
    assert out and all(isinstance(s, RangeSample) and not s.valid for s in out)


def test_drv004_silent_device_times_out_then_recovers(lrf):
    lrf.run(0.5)
    lrf.answer = False
    out = lrf.run(1.0)
    errors = [e for e in out if isinstance(e, DeviceError)]
    # requests at 0.61, 0.81 .. 1.41 s go unanswered; each is timed out when the next is due
    assert [round(e.time_s, 2) for e in errors] == [0.81, 1.01, 1.21, 1.41]
    assert all("no reply within 0.200 s" in e.reason for e in errors)
    assert not lrf.driver.health.ok and lrf.driver.health.timeouts == 4
    lrf.answer = True
    out = lrf.run(0.5)
    assert any(isinstance(s, RangeSample) for s in out) and lrf.driver.health.ok


def test_drv005_unplug_and_replug_is_survived_and_counted(lrf):
    t0 = time.monotonic()
    assert len(lrf.run(0.5)) == 3
    lrf.device.unplug()
    out = lrf.run(0.5)
    assert [type(e) for e in out] == [DeviceError] and "port unavailable" in out[0].reason
    assert not lrf.driver.health.ok and lrf.driver.health.io_errors == 1
    lrf.device.plug()  # a new pty behind the same path
    replugged_at = lrf.clock.t
    out = []
    while not any(isinstance(s, RangeSample) for s in out):
        out += lrf.tick()
        assert lrf.clock.t - replugged_at < 1.0, "not back within 1 s of the port's return"
    assert lrf.driver.health.reopens == 1 and lrf.driver.health.ok
    assert out[-1].range_m == pytest.approx(59.5)
    assert time.monotonic() - t0 < 10.0


def test_drv005_port_missing_at_start_is_reported_once_and_opened_later(tmp_path):
    clock = FlightClock()
    path = tmp_path / "later"
    driver = Rangefinder(str(path), clock)
    out = []
    for _ in range(50):
        clock.advance(0.01)
        out += drain(driver.read)
    assert [type(e) for e in out] == [DeviceError] and not driver.health.ok
    device = PtyDevice(path)
    for _ in range(60):
        clock.advance(0.01)
        got = device.read()
        device.write(reply(5950) * got.count(REQUEST))
        out += drain(driver.read)
    assert isinstance(out[-1], RangeSample) and driver.health.reopens == 0
    driver.close()
    device.close()


def test_drv006_calls_do_not_block(lrf):
    lrf.before_reply = bytes(range(1, 200))  # a noisy line
    lrf.run(1.0)
    lrf.device.unplug()
    lrf.run(0.5)
    lrf.device.plug()
    lrf.run(0.5)
    # a read is one non-blocking read and at most one 5-byte write: well under a millisecond
    # on this machine; 20 ms bounds it even with other jobs sharing the cores
    assert lrf.timer.worst_s < 0.02, lrf.timer.worst_s


# -- preflight ---------------------------------------------------------------------------------
def _probe_with(tmp_path, range_cm, answer=True, **kwargs):
    device = PtyDevice(tmp_path / "probe")
    driver = Rangefinder(str(device.path), FlightClock())
    import threading

    stop = threading.Event()

    def serve():
        while not stop.is_set():
            got = device.read()
            if answer and REQUEST in got:
                device.write(reply(range_cm))
            time.sleep(0.001)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        return driver.probe(**kwargs)
    finally:
        stop.set()
        thread.join()
        driver.close()
        device.close()


def test_drv007_probe_passes_a_valid_range(tmp_path):
    result = _probe_with(tmp_path, 5950)
    assert result.ok and "59.50 m" in result.reason


@pytest.mark.parametrize("range_cm, answer, words", [
    (0, True, "range 0.00 m outside"),  # a rangefinder that says 0 m is lying
    (None, True, "error reply R0000001"),
    (5950, False, "no valid reply within 0.3 s"),
])
def test_drv007_probe_fails_a_lying_erroring_or_silent_unit(tmp_path, range_cm, answer, words):
    result = _probe_with(tmp_path, range_cm, answer, timeout_s=0.3)
    assert not result.ok and words in result.reason


def test_drv007_probe_fails_a_missing_port(tmp_path):
    result = Rangefinder(str(tmp_path / "none"), FlightClock()).probe(timeout_s=0.1)
    assert not result.ok and "cannot open" in result.reason


def test_drv044_no_target_passes_nothing_on_and_is_counted(lrf):
    """`R0000000`: no return. Nothing is passed on (FDIR sees a silent sensor, as from the
    simulator's model and the LIDAR-Lite driver); an error code stays an invalid sample."""
    lrf.range_cm = None
    lrf.before_reply = b""
    real_reply = reply
    sent = []

    def serve_no_target():
        got = lrf.device.read()
        for _ in range(got.count(REQUEST)):
            sent.append(1)
            lrf.device.write(real_reply(None, code="0000000"))

    lrf.serve = serve_no_target
    out = lrf.run(0.5)
    assert sent and out == [] and lrf.driver.no_target == len(sent)
    assert lrf.driver.health.ok and lrf.driver.health.timeouts == 0  # it answered: the link is fine
