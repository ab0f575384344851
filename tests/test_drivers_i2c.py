"""DRV-020..036: the I2C bridge client, the LIDAR-Lite v3HP and the ICM-42688-P, over a real
unix socket to a small register-array server."""

from __future__ import annotations

import errno
import math
import time

import pytest

from flight.devices.i2c_bridge import BridgeBus
from flight.devices.icm42688 import Icm42688, ImuFrameError, decode_burst, parse_mounting, to_body
from flight.devices.interfaces import SHORT_RANGE_ALTIMETER, DeviceError, ImuSample, RangeSample
from flight.devices.lidarlite import LidarFrameError, LidarLite, decode_distance
from tests.driver_helpers import CallTimer, FlightClock, drain
from tests.i2c_server import I2cTestServer, ImuModel, LidarModel, RegisterDevice

# generous for a loaded 2-core machine; the 5 ms default is exercised by the timeout tests
BUS_TIMEOUT_S = 0.2


@pytest.fixture
def server(tmp_path):
    srv = I2cTestServer(tmp_path / "i2c.sock", {0x62: LidarModel(), 0x68: ImuModel(), 0x10: RegisterDevice()})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def bus(server):
    b = BridgeBus(server.path, timeout_s=BUS_TIMEOUT_S)
    yield b
    b.close()


# -- DRV-020: the bridge client ------------------------------------------------------------------
def test_drv020_smbus_shaped_reads_and_writes(bus, server):
    bus.write_byte_data(0x10, 0x20, 0xAB)
    assert bus.read_byte_data(0x10, 0x20) == 0xAB
    bus.write_i2c_block_data(0x10, 0x30, [1, 2, 3])
    assert bus.read_i2c_block_data(0x10, 0x2F, 5) == [0, 1, 2, 3, 0]  # auto-increment
    assert server.devices[0x10].writes == [(0x20, b"\xab"), (0x30, b"\x01\x02\x03")]
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(0x10, 0, 33)  # as smbus2: 32 at most


def test_drv020_absent_device_is_errno_121(bus):
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x33, 0)
    assert info.value.errno == errno.EREMOTEIO == 121


def test_drv020_no_answer_is_etimedout_after_the_timeout(server):
    bus = BridgeBus(server.path)  # the default, 5 ms
    assert bus.timeout_s == 0.005
    server.silent = True
    t0 = time.monotonic()
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x10, 0)
    assert info.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - t0 < 0.1
    bus.close()


def test_drv020_a_late_answer_is_never_taken_for_the_next_one(server):
    bus = BridgeBus(server.path, timeout_s=0.02)
    server.devices[0x10].regs[1:3] = b"\x11\x22"
    server.delay_next_s = 0.1
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x10, 1)
    assert info.value.errno == errno.ETIMEDOUT
    time.sleep(0.15)  # the late answer has arrived by now, on the old connection
    bus.timeout_s = BUS_TIMEOUT_S
    assert bus.read_byte_data(0x10, 2) == 0x22
    assert bus.connects == 2
    bus.close()


def test_drv020_emulator_killed_and_restarted(bus, server):
    assert bus.read_byte_data(0x10, 0) == 0
    server.stop()
    with pytest.raises(OSError):
        bus.read_byte_data(0x10, 0)
    server.start()
    assert bus.read_byte_data(0x10, 0) == 0  # the first call after the return connects again
    assert bus.connects == 2


# -- LIDAR-Lite ----------------------------------------------------------------------------------
class Ticker:
    def __init__(self, driver_factory, bus):
        self.clock = FlightClock()
        self.timer = CallTimer()
        self.driver = driver_factory(bus, self.clock)
        self.per_call: list[int] = []

    def _read(self):
        before = self.driver.device.transactions
        try:
            return self.timer(self.driver.read)
        finally:
            self.per_call.append(self.driver.device.transactions - before)

    def tick(self, dt=0.01):
        self.clock.advance(dt)
        return drain(self._read)

    def run(self, seconds, dt=0.01):
        out = []
        for _ in range(round(seconds / dt)):
            out += self.tick(dt)
        return out


@pytest.fixture
def lidar(bus):
    return Ticker(LidarLite, bus)


def test_drv021_distance_vectors():
    assert decode_distance(b"\x04\xd2") == 1234  # big-endian: FULL_DELAY_HIGH first
    assert decode_distance(b"\x00\x01") == 1
    with pytest.raises(LidarFrameError):
        decode_distance(b"\x04")


def test_drv022_busy_bit_is_polled_across_calls(lidar, server):
    model = server.devices[0x62]
    model.busy_reads = 3
    assert lidar.tick() == []  # trigger
    assert model.acquisitions == 1 and model.writes[-1] == (0x00, b"\x04")
    for _ in range(3):
        assert lidar.tick() == []  # busy
    (s,) = lidar.tick()
    assert s == RangeSample(lidar.clock.t, 12.34, 0.05, True)
    assert lidar.driver.sensor_id == SHORT_RANGE_ALTIMETER
    assert max(lidar.per_call) <= 3  # the budget: STATUS + FULL_DELAY + one retry


def test_drv022_one_acquisition_in_flight_at_50_hz(lidar, server):
    out = lidar.run(1.0)
    # triggered at 0.01 s, busy at 0.02, read at 0.03 and triggered again in the same tick, ...
    assert all(isinstance(s, RangeSample) for s in out)
    assert [round(s.time_s, 2) for s in out] == [round(0.03 + 0.02 * k, 2) for k in range(49)]
    assert server.devices[0x62].acquisitions == 50


def test_drv023_nack_is_retried_within_the_call_and_counted(lidar, server):
    lidar.run(0.1)
    server.nack_next = 1
    out = lidar.run(0.04)
    assert [type(s) for s in out] == [RangeSample, RangeSample]
    h = lidar.driver.health
    assert (h.io_errors, h.retries, h.ok) == (1, 1, True)


def test_drv023_a_device_that_stops_answering_backs_off_then_recovers(lidar, server):
    lidar.run(0.1)
    server.nack_next = 10**9
    out = lidar.run(1.0)
    assert out and all(isinstance(e, DeviceError) and "Errno 121" in e.reason for e in out)
    assert len(out) <= 6  # back-off 20, 40, 80, 160, 320, 500 ms: not one per call
    assert not lidar.driver.health.ok and lidar.driver.health.io_errors == 2 * len(out)
    server.nack_next = 0
    out = lidar.run(0.6)
    assert isinstance(out[-1], RangeSample) and lidar.driver.health.ok


def test_drv023_emulator_killed_and_restarted(lidar, server):
    lidar.run(0.1)
    server.stop()
    out = lidar.run(0.3)
    assert out and all(isinstance(e, DeviceError) for e in out)
    server.start()
    out = lidar.run(0.8)
    assert isinstance(out[-1], RangeSample) and lidar.driver.health.ok


def test_drv024_busy_forever_is_a_timeout(lidar, server):
    server.devices[0x62].busy_reads = 10**9
    out = lidar.run(0.2)
    assert [e.reason for e in out if isinstance(e, DeviceError)][:1] == ["LIDAR-Lite: busy for more than 0.05 s"]
    assert lidar.driver.health.timeouts >= 1 and not lidar.driver.health.ok


def test_drv024_bus_timeout_counts_a_timeout(server):
    lidar = Ticker(LidarLite, BridgeBus(server.path, timeout_s=0.01))
    lidar.run(0.05)
    server.silent = True
    out = lidar.run(0.05)
    assert isinstance(out[0], DeviceError) and "Errno 110" in out[0].reason
    h = lidar.driver.health
    assert h.timeouts == len(out) and h.retries == 0  # a timeout has spent its time: no retry
    assert lidar.timer.worst_s < 0.01 + 0.05


@pytest.mark.parametrize("cm", [1, 0, 4001])
def test_drv025_no_target_passes_nothing_on(lidar, server, cm):
    server.devices[0x62].distance_cm = cm
    assert lidar.run(0.5) == []
    assert lidar.driver.no_target == 24 and lidar.driver.health.ok  # read at 0.03, 0.05 .. 0.49 s


# -- ICM-42688-P ---------------------------------------------------------------------------------
@pytest.fixture
def imu(bus):
    return Ticker(Icm42688, bus)


G = 9.80665


def test_drv030_burst_vectors():
    # temperature -3312 -> 0 C; accel x 1024 = 0.5 g, y -2048 = -1 g, z 2048 = 1 g;
    # gyro x 164 = 10 dps, y -328 = -20 dps, z 0
    raw = bytes.fromhex("f310" "0400" "f800" "0800" "00a4" "feb8" "0000")
    burst = decode_burst(raw)
    assert tuple(burst) == (-3312, 1024, -2048, 2048, 164, -328, 0)
    s = to_body(burst, 1.5, parse_mounting("+x+y+z"))
    assert s == pytest.approx(ImuSample(1.5, 0.5 * G, -G, G, math.radians(10.0), math.radians(-20.0), 0.0),
                              rel=1e-12)
    # chip mounted turned 90 deg about z: body x = chip -y, body y = chip +x
    s = to_body(burst, 1.5, parse_mounting("-y+x+z"))
    assert s[1:4] == pytest.approx((G, 0.5 * G, G)) and s[4:6] == pytest.approx(
        (math.radians(20.0), math.radians(10.0)))
    with pytest.raises(ImuFrameError):
        decode_burst(raw[:13])


@pytest.mark.parametrize("bad", ["+x+y", "+x+x+z", "+x+y-z", "x+y+z+"])
def test_drv030_mounting_must_be_a_rotation(bad):
    with pytest.raises(ValueError):
        parse_mounting(bad)


def test_drv031_start_up_configures_the_part_then_samples_every_tick(imu, server):
    out = imu.run(0.2)
    regs = server.devices[0x68].regs
    assert (regs[0x76], regs[0x4E], regs[0x4F], regs[0x50], regs[0x52]) == (0, 0x0F, 0x06, 0x06, 0x77)
    assert imu.driver.inits == 1 and imu.driver.who_am_i == 0x47
    samples = [s for s in out if isinstance(s, ImuSample)]
    assert len(samples) == 14 and len(out) == 14  # 6 start-up ticks, then one sample per tick
    assert samples[-1] == ImuSample(imu.clock.t, 0.0, 0.0, G, 0.0, 0.0, 0.0)
    assert max(imu.per_call) <= 2  # one transaction, one retry at most


def test_drv031_values_scale_to_si(imu, server):
    imu.run(0.1)
    server.devices[0x68].raw = (-3312, 1024, -2048, 2048, 164, -328, 0)
    (s,) = imu.tick()
    assert s == pytest.approx(ImuSample(imu.clock.t, 0.5 * G, -G, G, math.radians(10), math.radians(-20), 0.0))
    assert imu.driver.temperature_c == pytest.approx(0.0)


def test_drv032_wrong_part_is_a_clear_error_and_no_data(bus, server):
    server.devices[0x68] = ImuModel(who_am_i=0x68)  # an MPU-6050 where the ICM-42688 should be
    imu = Ticker(Icm42688, bus)
    out = imu.run(2.0)
    assert out and all(isinstance(e, DeviceError) for e in out)
    assert out[0].reason.startswith("ICM-42688: WHO_AM_I reads 0x68, expected 0x47")
    assert imu.driver.identity_failures == len(out) == 2  # checked again once a second
    assert server.devices[0x68].regs[0x4E] == 0  # never configured, never powered
    assert not imu.driver.health.ok


def test_drv033_sensor_off_is_an_error_and_a_reset_part_is_started_again(imu, server):
    imu.run(0.2)
    server.devices[0x68].regs[0x4E] = 0  # the part reset behind our back: data reads -32768
    out = imu.run(0.1)
    assert [type(e) for e in out] == [DeviceError] * 10
    assert "no data on accel_x, accel_y, accel_z, gyro_x, gyro_y, gyro_z" in out[0].reason
    out = imu.run(0.2)
    assert isinstance(out[-1], ImuSample) and imu.driver.inits == 2
    assert imu.driver.no_data == 10


def test_drv033_saturation_is_delivered_at_full_scale_and_counted(imu, server):
    imu.run(0.1)
    server.devices[0x68].raw = (0, 0, 0, 32767, 0, -32767, 0)
    (s,) = imu.tick()
    assert s.accel_z_mps2 == pytest.approx(32767 / 2048 * G)
    assert s.gyro_y_radps == pytest.approx(math.radians(-32767 / 16.4))
    assert imu.driver.saturated == 1


def test_drv034_nack_retried_emulator_restart_recovered(imu, server):
    imu.run(0.2)
    server.nack_next = 1
    (s,) = imu.tick()
    assert isinstance(s, ImuSample) and imu.driver.health.retries == 1
    server.stop()
    server.devices[0x68] = ImuModel()  # the emulator comes back with its power-on registers
    out = imu.run(0.2)
    assert out and all(isinstance(e, DeviceError) for e in out)
    server.start()
    out = imu.run(1.0)
    assert isinstance(out[-1], ImuSample) and imu.driver.inits == 2 and imu.driver.health.ok
    assert server.devices[0x68].regs[0x4E] == 0x0F  # configured again


def test_drv035_calls_stay_within_budget(imu, lidar, server):
    imu.run(0.5)
    lidar.run(0.5)
    # over a local socket one transaction is ~0.1 ms; 20 ms bounds a loaded machine
    assert imu.timer.worst_s < 0.02 and lidar.timer.worst_s < 0.02


# -- preflight -----------------------------------------------------------------------------------
def test_drv036_imu_probe_at_rest(bus, server):
    result = Icm42688(bus, FlightClock()).probe()
    assert result.ok and "|a| 1.000 g" in result.reason


@pytest.mark.parametrize("raw, words", [
    ((0, 0, 0, 3 * 2048, 0, 0, 0), "|a| 3.000 g"),  # a liar: 3 g at rest
    ((0, 0, 0, 0, 0, 0, 0), "|a| 0.000 g"),  # reads nothing
    ((0, 0, 0, 2048, 82, 0, 0), "|w| 5.00 dps"),  # a drifting gyro
    ((13248, 0, 0, 2048, 0, 0, 0), "temperature"),  # 125 C
    ((0, -32768, 0, 2048, 0, 0, 0), "no data on accel_x"),
])
def test_drv036_imu_probe_fails_a_lying_device(bus, server, raw, words):
    server.devices[0x68].raw = raw
    result = Icm42688(bus, FlightClock()).probe()
    assert not result.ok and words in result.reason


def test_drv036_imu_probe_fails_a_wrong_or_dead_part(bus, server):
    server.devices[0x68].regs[0x75] = 0x68
    result = Icm42688(bus, FlightClock()).probe()
    assert not result.ok and "WHO_AM_I reads 0x68" in result.reason
    del server.devices[0x68]
    result = Icm42688(bus, FlightClock()).probe()
    assert not result.ok and "Errno 121" in result.reason


def test_drv036_probe_then_flight_reads_go_on(bus, server):
    imu = Ticker(Icm42688, bus)
    assert imu.driver.probe().ok
    out = imu.run(0.05)
    # the probe started the part; flight reads resume with the configuration check, no second start
    assert isinstance(out[-1], ImuSample) and imu.driver.inits == 1


def test_drv036_lidar_probe(bus, server):
    result = LidarLite(bus, FlightClock()).probe()
    assert result.ok and "UNIT_ID 0x1a2b; range 12.34 m" == result.reason
    server.devices[0x62].distance_cm = 0  # a liar: 0 m
    result = LidarLite(bus, FlightClock()).probe()
    assert not result.ok and "range 0.00 m outside" in result.reason
    server.devices[0x62].busy_reads = 10**9
    result = LidarLite(bus, FlightClock()).probe(timeout_s=0.05)
    assert not result.ok and "still busy" in result.reason
    del server.devices[0x62]
    result = LidarLite(bus, FlightClock()).probe()
    assert not result.ok and "Errno 121" in result.reason
