"""Board emulator core (board/emulator): register maps, line protocols, the stream, the Emulator.

Fixed vectors live in tests/board/vectors.json (also checked under MicroPython); the properties
here hold for all inputs.
"""

import binascii
import doctest
import json
import math
import struct
import sys
from pathlib import Path

import pytest
from cobs import cobs as reference_cobs
from hypothesis import given
from hypothesis import strategies as s

import board.emulator
from board.emulator import core, engine, framing, icm42688, lidarlite, rangefinder
from board.emulator import stream as st
from flight.telemetry import cobs as flight_cobs

HERE = Path(__file__).parent / "board"
VECTORS = json.loads((HERE / "vectors.json").read_text())
sys.path.insert(0, str(HERE))
import vector_runner

MODULES = (framing, stream_mod := st, engine, rangefinder, icm42688, lidarlite, core)


# --- EMU-000: every module's doctests, and the shared vectors -------------------------------
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_emu000_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0


def test_emu000_fixed_vectors_from_the_datasheets_and_protocols():
    assert vector_runner.run(VECTORS, board.emulator) == []


# --- EMU-001: framing ------------------------------------------------------------------
@given(s.binary(max_size=600))
def test_emu001_crc_is_ccitt_false(data):
    assert framing.crc16(data) == binascii.crc_hqx(data, 0xFFFF)


@given(s.binary(max_size=800))
def test_emu001_cobs_matches_the_reference_and_the_flight_codec(data):
    ours = framing.cobs_encode(data)
    assert ours == reference_cobs.encode(data)
    assert 0 not in ours
    assert framing.cobs_decode(ours) == data
    assert flight_cobs.decode(ours) == data  # the two sides understand each other
    assert framing.cobs_decode(flight_cobs.encode(data)) == data


@given(s.binary(max_size=300))
def test_emu001_cobs_decode_raises_only_frame_error_and_agrees_with_the_reference(block):
    try:
        want = reference_cobs.decode(block)
    except reference_cobs.DecodeError:
        want = None
    try:
        got = framing.cobs_decode(block)
    except framing.FrameError:
        got = None
    assert got == want  # accepts exactly what the reference accepts, with the same result


@given(s.lists(s.binary(min_size=1, max_size=40), max_size=8), s.data())
def test_emu001_splitter_returns_every_frame_in_order_however_the_bytes_arrive(payloads, data):
    line = b"".join(framing.frame(p) for p in payloads)
    cuts = sorted(data.draw(s.lists(s.integers(0, len(line)), max_size=6)))
    splitter = framing.FrameSplitter(max_frame=64)
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(line)]):
        got += splitter.feed(line[a:b])
    assert got == payloads and splitter.bad_frames == 0


def test_emu001_an_overlong_frame_is_dropped_up_to_its_delimiter_and_counted():
    splitter = framing.FrameSplitter(max_frame=8)
    got = splitter.feed(framing.frame(bytes(range(1, 30))) + framing.frame(b"ok"))
    assert got == [b"ok"] and splitter.bad_frames == 1


# --- EMU-002/003: ICM-42688-P ---------------------------------------------------------------
def _imu_on(fs_accel=0, fs_gyro=0):
    imu = icm42688.Icm42688()
    imu.write(icm42688.GYRO_CONFIG0, bytes(((fs_gyro << 5) | 6, (fs_accel << 5) | 6)))
    imu.write(icm42688.PWR_MGMT0, b"\x0f")
    return imu


def test_emu002_reset_state_identity_and_sensors_off():
    imu = icm42688.Icm42688()
    assert imu.read(icm42688.WHO_AM_I, 1) == b"\x47"
    assert imu.read(icm42688.PWR_MGMT0, 3) == b"\x00\x06\x06"
    imu.set_values((1.0, 2.0, 3.0), (0.1, 0.2, 0.3), 40.0)
    imu.commit()
    assert imu.read(icm42688.TEMP_DATA1, 14) == b"\x80\x00" * 7  # off: 'no data' code


def test_emu002_read_only_registers_ignore_master_writes_and_config_reads_back():
    imu = _imu_on()
    imu.set_values((0.0, 0.0, 9.80665), (0.0, 0.0, 0.0), 25.0)
    imu.commit()
    before = imu.read(icm42688.TEMP_DATA1, 14)
    imu.write(icm42688.TEMP_DATA1, b"\x55" * 14)
    imu.write(icm42688.WHO_AM_I, b"\x00\x03")  # WHO_AM_I (read-only), REG_BANK_SEL (stored)
    assert imu.read(icm42688.TEMP_DATA1, 14) == before
    assert imu.read(icm42688.WHO_AM_I, 2) == b"\x47\x03"


def test_emu002_reads_auto_increment_and_wrap_at_the_end_of_the_map():
    imu = icm42688.Icm42688()
    assert imu.read(0xFF, 2) == b"\x00\x00"  # 0xFF then 0x00
    assert imu.read(icm42688.WHO_AM_I, 1) == imu.read(0x74, 2)[1:]


def test_emu002_a_full_scale_change_re_encodes_the_last_values():
    imu = _imu_on()
    imu.set_values((9.80665, 0.0, 0.0), (0.0, 0.0, 0.0), 25.0)
    imu.commit()
    assert imu.read(icm42688.ACCEL_DATA_X1, 2) == struct.pack(">h", 2048)
    imu.write(icm42688.ACCEL_CONFIG0, b"\x66")  # +-2 g
    assert imu.read(icm42688.ACCEL_DATA_X1, 2) == struct.pack(">h", 16384)


def test_emu002_soft_reset_restores_the_reset_values():
    imu = _imu_on(fs_accel=3)
    imu.write(icm42688.DEVICE_CONFIG, b"\x01")
    assert imu.read(icm42688.PWR_MGMT0, 3) == b"\x00\x06\x06"
    assert imu.read(icm42688.DEVICE_CONFIG, 1) == b"\x00"


finite = s.floats(-1e6, 1e6, allow_nan=False)


@given(s.tuples(finite, finite, finite), s.tuples(finite, finite, finite), s.floats(-300, 300),
       s.integers(0, 3), s.integers(0, 7))
def test_emu002_encoding_is_the_nearest_count_saturating_short_of_the_invalid_code(
        accel, gyro, temp_c, fs_accel, fs_gyro):
    imu = _imu_on(fs_accel, fs_gyro)
    imu.set_values(accel, gyro, temp_c)
    imu.commit()
    raw = struct.unpack(">7h", imu.read(icm42688.TEMP_DATA1, 14))
    assert min(raw) >= -32767  # -32768 is reserved for 'no data'
    a_lsb = icm42688.ACCEL_LSB_PER_G[fs_accel] / 9.80665
    g_lsb = icm42688.GYRO_LSB_PER_DPS[fs_gyro] * 180.0 / math.pi
    for count, si, lsb in zip(raw[1:], accel + gyro, (a_lsb,) * 3 + (g_lsb,) * 3):
        if abs(si * lsb) < 32766:
            assert abs(count / lsb - si) <= 0.5 / lsb + 1e-9 * abs(si)  # within half a count
        else:
            assert count == math.copysign(32767, si)


class AuditedMem(bytearray):
    """A register map that fails the test if the core changes it outside a critical section."""

    locked = False
    in_irq = False

    def __setitem__(self, key, value):
        if not (AuditedMem.locked or AuditedMem.in_irq):
            raise AssertionError("register write outside the critical section")
        super().__setitem__(key, value)


def test_emu003_register_blocks_change_only_inside_the_critical_section():
    calls = []

    def irq_off():
        AuditedMem.locked = True
        calls.append("off")
        return 7

    def irq_on(state):
        assert state == 7
        AuditedMem.locked = False
        calls.append("on")

    emu = core.Emulator(critical=(irq_off, irq_on))
    for dev in (emu.imu, emu.lidar):
        dev.mem = AuditedMem(dev.mem)
    imu_mem, lidar_mem = emu.imu.mem, emu.lidar.mem

    def master_write(dev_mem, reg, data, on_write):  # what I2CTarget does, then the hard IRQ
        AuditedMem.in_irq = True
        for i, b in enumerate(data):
            bytearray.__setitem__(dev_mem, reg + i, b)
        on_write()
        AuditedMem.in_irq = False

    master_write(imu_mem, icm42688.PWR_MGMT0, b"\x0f", emu.imu.on_master_write)
    emu.poll(0)
    master_write(lidar_mem, 0, b"\x04", lambda: emu.lidar.on_master_write(0))
    values = st.Values(1, 0, (0, 0, 9.8), (0, 0, 0), 25.0, 100000, 0, 0, 12340, 0, False, False)
    emu.from_stream(st.encode_values(values))
    emu.poll(5000)
    assert calls and calls.count("off") == calls.count("on")
    assert imu_mem[icm42688.ACCEL_DATA_X1 + 4] != 0x80 and lidar_mem[0x0F:0x11] == b"\x04\xd2"


def test_emu003_a_reader_sees_the_old_block_until_commit():
    imu = _imu_on()
    imu.set_values((9.80665, 0, 0), (0, 0, 0), 25.0)
    imu.commit()
    old = imu.read(icm42688.TEMP_DATA1, 14)
    imu.set_values((-9.80665, 0, 0), (0, 0, 0), 30.0)
    assert imu.read(icm42688.TEMP_DATA1, 14) == old
    imu.commit()
    assert imu.read(icm42688.TEMP_DATA1, 14) != old


# --- EMU-004: LIDAR-Lite v3HP --------------------------------------------------------------
def test_emu004_distance_changes_only_when_a_commanded_measurement_completes():
    lidar = lidarlite.LidarLite(busy_us=1000)
    lidar.set_range(500, lidarlite.VALID)
    assert lidar.read(lidarlite.FULL_DELAY_HIGH, 2) == b"\x00\x00"  # nothing measured yet
    lidar.write(lidarlite.ACQ_COMMAND, b"\x03", now_us=lidarlite.TICKS_MASK - 100)  # ticks wrap
    assert lidar.read(lidarlite.STATUS, 1) == b"\x01"
    assert lidar.read(lidarlite.ACQ_COMMAND, 1) == b"\x00"
    assert not lidar.due(lidarlite.TICKS_MASK)
    assert lidar.due(900)  # 1001 us later, across the wrap
    lidar.complete()
    assert lidar.read(lidarlite.STATUS, 2) == b"\x00\x80"  # STATUS, SIG_COUNT_VAL
    assert lidar.read(lidarlite.FULL_DELAY_HIGH, 2) == b"\x01\xf4"
    lidar.set_range(700, lidarlite.VALID)
    lidar.complete()  # no command: no measurement
    assert lidar.read(lidarlite.FULL_DELAY_HIGH, 2) == b"\x01\xf4"


def test_emu004_zero_command_and_writes_to_read_only_registers_change_nothing():
    lidar = lidarlite.LidarLite()
    lidar.write(lidarlite.ACQ_COMMAND, b"\x00")
    lidar.write(lidarlite.FULL_DELAY_HIGH, b"\x12\x34")
    lidar.write(lidarlite.UNIT_ID_HIGH, b"\x00\x00\x77\x88")  # UNIT_ID (ro), I2C_ID (rw)
    assert lidar.read(lidarlite.STATUS, 1) == b"\x00"
    assert lidar.read(lidarlite.FULL_DELAY_HIGH, 2) == b"\x00\x00"
    assert lidar.read(lidarlite.UNIT_ID_HIGH, 4) == b"\x4c\x4c\x77\x88"


# --- EMU-005: rangefinder ---------------------------------------------------------------
def test_emu005_garbage_then_requests_each_get_one_reply_and_counts_are_kept():
    rf = rangefinder.Rangefinder()
    rf.set_measurement(123456, rangefinder.VALID)
    out = rf.feed(b"\x00\xffMd1\r>Mx1\r>Md1>Md1\r" + b">" + b"A" * 40 + b"\r>Md1\r")
    assert out == b"v0123456DB\r" * 2
    assert rf.requests == 2 and rf.reply_bytes == 22 and rf.bad_requests == 3


@given(s.binary(max_size=200))
def test_emu005_any_bytes_give_only_well_formed_replies(data):
    rf = rangefinder.Rangefinder()
    rf.set_measurement(5950, rangefinder.VALID)
    out = rf.feed(data)
    replies = out.split(b"\r")[:-1]
    assert len(replies) == rf.requests and all(rangefinder.decode_reply(r) == ("v", 5950) for r in replies)


@given(s.sampled_from([rangefinder.VALID, rangefinder.ERROR, rangefinder.NO_TARGET]),
       s.integers(0, 9_999_999), s.integers(0, 999))
def test_emu005_reply_encode_decode_round_trip(status, range_cm, code):
    got = rangefinder.decode_reply(rangefinder.encode_reply(status, range_cm, code))
    want = {rangefinder.VALID: ("v", range_cm), rangefinder.ERROR: ("R", code),
            rangefinder.NO_TARGET: ("R", None)}[status]
    assert got == want


@given(s.binary(max_size=14))
def test_emu005_decode_reply_raises_only_its_own_error(data):
    try:
        rangefinder.decode_reply(data)
    except rangefinder.ReplyError:
        pass


# --- EMU-006: engine controller -------------------------------------------------------------
def _reference_command(seq, flags, throttle, pitch):
    payload = struct.pack(">BHBHh", 1, seq, flags, throttle, pitch)
    return reference_cobs.encode(payload + binascii.crc_hqx(payload, 0xFFFF).to_bytes(2, "big")) + b"\x00"


@given(s.integers(0, 0xFFFF), s.booleans(), s.integers(0, 10000), s.integers(-32768, 32767))
def test_emu006_commands_from_an_independent_encoder_are_accepted(seq, armed, throttle, pitch):
    ctl = engine.EngineController()
    got = ctl.feed(_reference_command(seq, int(armed), throttle, pitch))
    assert got == [engine.Command(seq, armed, throttle, pitch)]
    fields = engine.decode_status(framing.cobs_decode(ctl.status_frame(True, True)[:-1]))
    assert fields == (0, (1 if armed else 0) | 6, throttle if armed else 0, pitch, seq, 0)


@given(s.binary(max_size=60))
def test_emu006_garbage_never_raises_and_is_counted_not_obeyed(noise):
    ctl = engine.EngineController()
    good = _reference_command(9, 1, 5000, 100)
    got = ctl.feed(b"\x00" + noise + b"\x00" + good)
    assert got[-1] == engine.Command(9, True, 5000, 100)
    assert ctl.last_command_seq == 9


def test_emu006_refusals_are_counted_and_bad_frames_saturate_in_status():
    ctl = engine.EngineController()
    ctl.feed(_reference_command(1, 1, 10001, 0))
    assert ctl.frames == 0 and ctl.bad_frames == 1
    ctl.refused = 70000
    assert engine.decode_status(framing.cobs_decode(ctl.status_frame(False, False)[:-1]))[-1] == 0xFFFF


# --- EMU-007: the stream codec -------------------------------------------------------------
f32 = s.floats(width=32, allow_nan=False, allow_infinity=False)
u32 = s.integers(0, 2**32 - 1)
values_st = s.builds(st.Values, u32, s.integers(0, 2**64 - 1), s.tuples(f32, f32, f32), s.tuples(f32, f32, f32),
                     f32, u32, s.sampled_from([0, 1, 2]), s.integers(0, 999), u32, s.sampled_from([0, 1]),
                     s.booleans(), s.booleans(), s.booleans())
messages = s.one_of(
    values_st.map(lambda v: (v, st.encode_values(v))),
    s.builds(st.Fault, s.sampled_from([1, 2, 3, 4, 255]), s.integers(0, 4), f32, s.integers(0, 65535),
             s.integers(0, 65535)).map(lambda f: (f, st.encode_fault(f))),
    u32.map(lambda n: (st.Sync(n), st.encode_sync(n))),
    s.just((st.HelloRequest(), st.encode_hello_request())),
    s.text(s.characters(min_codepoint=32, max_codepoint=126), max_size=48).map(
        lambda t: (st.Hello(t), st.encode_hello(t))),
    s.lists(u32, min_size=8, max_size=8).map(lambda a: (st.Ack(*a), st.encode_ack(st.Ack(*a)))),
    s.builds(st.EngineReport, u32, s.integers(0, 65535), s.booleans(), s.integers(0, 10000),
             s.integers(-32768, 32767)).map(lambda e: (e, st.encode_engine(e))),
)


@given(messages)
def test_emu007_every_message_round_trips(pair):
    message, frame = pair
    assert frame[:1] == frame[-1:] == b"\x00" and 0 not in frame[1:-1]
    assert st.decode_frame(frame) == message


@given(s.binary(max_size=80))
def test_emu007_any_bytes_decode_to_a_message_or_stream_error(data):
    try:
        st.decode_payload(data)
    except st.StreamError:
        pass
    try:
        st.decode_frame(data)
    except st.StreamError:
        pass


def test_emu007_encoders_refuse_what_the_wire_cannot_carry():
    good = {"step": 1, "time_us": 0, "accel_mps2": (0, 0, 0), "gyro_radps": (0, 0, 0), "temperature_c": 20.0,
                "rangefinder_range_mm": 0, "rangefinder_status": 0, "rangefinder_error_code": 0, "lidar_range_mm": 0,
                "lidar_status": 0, "contact": False, "controller_fault": False}
    for bad in ({"accel_mps2": (math.nan, 0, 0)}, {"temperature_c": math.inf}, {"step": -1},
                {"rangefinder_range_mm": 2**32}, {"rangefinder_status": 3}, {"rangefinder_error_code": 1000},
                {"gyro_radps": (1e39, 0, 0)}, {"lidar_status": 2}):
        with pytest.raises(st.StreamError):
            st.encode_values(st.Values(**{**good, **bad}))


def test_emu007_another_protocol_version_is_refused_and_counted():
    frame = st.encode_sync(1)
    payload = bytearray(framing.cobs_decode(frame[1:-1]))
    payload[0] = 2
    dec = st.StreamDecoder()
    assert dec.feed(framing.frame(framing.with_crc(bytes(payload[:-2])))) == []
    assert dec.bad_frames == 1 and "version" in dec.last_error


# --- EMU-008: the Emulator ---------------------------------------------------------------
def _values(step, **kw):
    base = {"time_us": step * 10000, "accel_mps2": (0.0, 0.0, 1.62), "gyro_radps": (0.0, 0.0, 0.0),
                "temperature_c": 25.0, "rangefinder_range_mm": 1_500_000, "rangefinder_status": 0,
                "rangefinder_error_code": 0, "lidar_range_mm": 12_345, "lidar_status": 0, "contact": False,
                "controller_fault": False, "lockstep": True}
    base.update(kw)
    return st.Values(step, **base)


def _stream_out(emu):
    return [st.decode_payload(p) for p in framing.FrameSplitter().feed(emu.take_stream())]


def test_emu008_hello_at_start_and_on_request():
    emu = core.Emulator(name="bench-1")
    assert _stream_out(emu) == [st.Hello("bench-1")]
    emu.from_stream(st.encode_hello_request())
    assert _stream_out(emu) == [st.Hello("bench-1")]


def test_emu008_ack_follows_everything_received_before_the_sync():
    lines = {"rf": b"", "eng": b""}
    emu = core.Emulator()

    def drain():  # the glue's view: bytes the flight already wrote, not yet read
        emu.from_rangefinder(lines["rf"])
        emu.from_engine(lines["eng"])
        lines["rf"] = lines["eng"] = b""

    emu.set_drain(drain)
    emu.take_stream()
    emu.from_stream(st.encode_values(_values(7)))
    lines["rf"] = b">Md1\r"
    lines["eng"] = engine.encode_command(3, True, 4000, -20)
    emu.from_stream(st.encode_sync(11))
    out = _stream_out(emu)
    assert out == [st.EngineReport(1, 3, True, 4000, -20),
                   st.Ack(11, 7, 1, 11, 1, 0, 1, 0)]  # one STATUS: the first lockstep slot
    assert emu.take_rangefinder() == b"v0150000CC\r"


def test_emu008_lockstep_status_every_20_ms_of_rig_time_and_lidar_completes_at_the_next_values():
    emu = core.Emulator()
    statuses = 0
    for step in range(10):
        emu.from_stream(st.encode_values(_values(step, lidar_range_mm=1000 * (step + 1))))
        emu.poll(step * 1_000_000)  # the wall clock means nothing in lockstep
        statuses += emu.take_engine().count(b"\x00")
        if step == 3:
            assert emu.i2c_write(0x62, 0, b"\x04") == 0
            assert emu.i2c_read(0x62, 1, 1) == b"\x01"
        if step == 4:
            assert emu.i2c_read(0x62, 0x0F, 2) == struct.pack(">H", 500)  # step 4's 5 m
    assert statuses == 5


def test_emu008_free_running_status_at_50_hz_of_the_wall_clock():
    emu = core.Emulator()
    sent = 0
    for t in range(0, 1_000_000, 1000):
        emu.poll(t)
        sent += emu.take_engine().count(b"\x00")
    assert sent == 50


def test_emu008_faults_silent_garbage_lie_unplug_and_clear():
    emu = core.Emulator()
    emu.from_stream(st.encode_values(_values(1)))
    emu.take_engine()
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_IMU, st.FAULT_SILENT)))
    assert emu.i2c_read(0x68, 0x75, 1) is None and emu.i2c_write(0x68, 0x4E, b"\x0f") == 121
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_RANGEFINDER, st.FAULT_GARBAGE, count=20, seed=5)))
    assert emu.take_rangefinder() == core.garbage(20, 5) and emu.rangefinder.reply_bytes == 20
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_RANGEFINDER, st.FAULT_LIE, value=42.0)))
    emu.from_rangefinder(b">Md1\r")
    assert emu.take_rangefinder() == rangefinder.encode_reply(0, 4200)
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_ENGINE, st.FAULT_UNPLUG)))
    emu.from_engine(engine.encode_command(1, True, 100, 0))
    emu.from_stream(st.encode_values(_values(2)))
    assert emu.engine_unplugged and emu.engine.frames == 0 and emu.take_engine() == b""
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_ALL, st.FAULT_CLEAR)))
    assert emu.i2c_read(0x68, 0x75, 1) == b"\x47" and not emu.engine_unplugged
    emu.from_rangefinder(b">Md1\r")
    assert emu.take_rangefinder() == rangefinder.encode_reply(0, 150000)
    assert emu.i2c_read(0x50, 0, 1) is None  # nobody at that address


def test_emu008_imu_lie_is_a_stuck_z_axis():
    emu = core.Emulator()
    emu.i2c_write(0x68, 0x4E, b"\x0f")
    emu.from_stream(st.encode_values(_values(1, accel_mps2=(0.0, 0.0, 9.80665))))
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_IMU, st.FAULT_LIE, value=0.0)))
    assert emu.i2c_read(0x68, icm42688.ACCEL_DATA_X1, 6) == b"\x00" * 6
    emu.from_stream(st.encode_fault(st.Fault(st.DEV_IMU, st.FAULT_CLEAR)))
    assert emu.i2c_read(0x68, icm42688.ACCEL_DATA_X1 + 4, 2) == struct.pack(">h", 2048)


@given(s.binary(max_size=16))
def test_emu006_decode_command_raises_only_its_own_error(payload):
    try:
        engine.decode_command(payload)
    except engine.EngineFrameError:
        pass


@given(s.integers(0, 0xFFFF), s.booleans(), s.integers(0, 10000), s.integers(-32768, 32767))
def test_emu006_command_encode_decode_round_trip(seq, armed, throttle, pitch):
    frame = engine.encode_command(seq, armed, throttle, pitch)
    assert engine.decode_command(framing.cobs_decode(frame[:-1])) == engine.Command(seq, armed, throttle, pitch)


@given(s.lists(s.tuples(s.integers(0, 255), s.binary(min_size=1, max_size=32)), max_size=12))
def test_emu002_any_master_writes_keep_the_identity_and_never_raise(writes):
    imu, lidar = icm42688.Icm42688(), lidarlite.LidarLite()
    for reg, data in writes:
        imu.write(reg, data)
        lidar.write(reg, data, now_us=0)
    assert imu.read(icm42688.WHO_AM_I, 1) == b"\x47"
    assert lidar.read(lidarlite.UNIT_ID_HIGH, 2) == b"\x4c\x4c"
    assert lidar.read(lidarlite.ACQ_COMMAND, 1) == b"\x00"
