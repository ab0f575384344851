"""The short-range altimeter: Garmin LIDAR-Lite v3HP on I2C at 0x62 (40 m, dissimilar to the LRF).

Registers: 0x00 ACQ_COMMAND (write 0x04: measure with receiver bias correction), 0x01 STATUS
(bit 0 busy), 0x0F/0x10 FULL_DELAY_HIGH/LOW = distance in cm, big-endian, read as one
auto-increment block; 0x16/0x17 UNIT_ID (the unit's serial, identity for preflight).

One acquisition is in flight at a time and it is spread over calls so none waits: a call
triggers (one write) and returns None; a later call reads STATUS and, once not busy, the
distance (two reads). The codec is pure and raises only `LidarFrameError`.

>>> decode_distance(bytes([0x0F, 0xA0]))
4000
>>> is_busy(0x01), is_busy(0x20)
(True, False)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flight.devices.i2c_device import Backoff, I2cDevice, I2cFailure
from flight.devices.interfaces import SHORT_RANGE_ALTIMETER, DeviceError, LinkHealth, RangeSample
from flight.devices.probe import ProbeResult

ADDRESS = 0x62
ACQ_COMMAND = 0x00
STATUS = 0x01
FULL_DELAY_HIGH = 0x0F
UNIT_ID_HIGH = 0x16
MEASURE_WITH_BIAS_CORRECTION = 0x04
BUSY = 0x01


class LidarFrameError(ValueError):
    pass


def decode_distance(data: bytes) -> int:
    """FULL_DELAY_HIGH, FULL_DELAY_LOW -> centimetres."""
    if len(data) != 2:
        raise LidarFrameError(f"FULL_DELAY is 2 bytes, got {len(data)}")
    return data[0] << 8 | data[1]


def is_busy(status: int) -> bool:
    if not 0 <= status <= 0xFF:
        raise LidarFrameError(f"STATUS {status} is not a byte")
    return bool(status & BUSY)


class LidarLite:
    """The `Altimeter` driver (sensor_id 1 by default).

    read(), called at 100 Hz until it returns None: at most `max_transactions` bus
    transactions per call (3: STATUS + FULL_DELAY + one retry; or the trigger and its retry).
    A reading outside [min_range_m, max_range_m] is "no target" (the v3HP answers about 1 cm
    when it has no return): nothing is passed on, as the simulator's model does, and it is
    counted in `no_target`. An acquisition still busy after acquisition_timeout_s is a
    timeout (DeviceError, health.timeouts).
    """

    def __init__(self, bus, clock_s: Callable[[], float], *, address: int = ADDRESS,
                 sensor_id: int = SHORT_RANGE_ALTIMETER, period_s: float = 0.02,
                 acquisition_timeout_s: float = 0.05, sigma_m: float = 0.05, sigma_per_m: float = 0.0,
                 min_range_m: float = 0.05, max_range_m: float = 40.0, max_transactions: int = 3,
                 max_attempts: int = 2, backoff_max_s: float = 0.5) -> None:
        self.sensor_id = sensor_id
        self.clock_s = clock_s
        self.period_s = period_s
        self.acquisition_timeout_s = acquisition_timeout_s
        self.sigma_m = sigma_m
        self.sigma_per_m = sigma_per_m
        self.min_range_m = min_range_m
        self.max_range_m = max_range_m
        self.max_transactions = max_transactions
        self.health = LinkHealth()
        self.device = I2cDevice(bus, address, self.health, max_attempts)
        self.backoff = Backoff(period_s, backoff_max_s)
        self._busy_since: float | None = None  # None: no acquisition in flight
        self._next_trigger_s = -math.inf
        self.no_target = 0
        self.internal_errors = 0
        self.last_range_cm: int | None = None

    def read(self) -> RangeSample | DeviceError | None:
        try:
            now = self.clock_s()
        except Exception as exc:  # noqa: BLE001
            self.internal_errors += 1
            return DeviceError(math.nan, f"clock: {exc}")
        try:
            return self._read(now)
        except I2cFailure as failure:
            self._busy_since = None  # start afresh: the device may have reset
            self.health.ok = False
            self.backoff.failed(now)
            return DeviceError(now, f"LIDAR-Lite: {failure}")
        except Exception as exc:  # noqa: BLE001 - the contract: never raise into the executive
            self.internal_errors += 1
            self._busy_since = None
            self.backoff.failed(now)
            return DeviceError(now, f"LIDAR-Lite driver: {exc.__class__.__name__}: {exc}")

    def _read(self, now: float) -> RangeSample | DeviceError | None:
        if not self.backoff.ready(now):
            return None
        dev = self.device
        dev.allow(self.max_transactions)
        if self._busy_since is None:
            self._trigger_if_due(now)
            return None  # the acquisition takes ~1 ms: read it on a later call
        if is_busy(dev.read_byte(STATUS)):
            if now - self._busy_since <= self.acquisition_timeout_s:
                return None
            self._busy_since = None
            self.health.timeouts += 1
            self.health.ok = False
            return DeviceError(now, f"LIDAR-Lite: busy for more than {self.acquisition_timeout_s:g} s")
        cm = decode_distance(dev.read_block(FULL_DELAY_HIGH, 2))
        self._busy_since = None
        self.health.frames += 1
        self.health.ok = True
        self.backoff.succeeded()
        self.last_range_cm = cm
        range_m = cm * 0.01
        if not self.min_range_m <= range_m <= self.max_range_m:
            self.no_target += 1
            if dev.left > 0:
                self._trigger_if_due(now)  # the caller's loop stops at this None: go on now
            return None
        return RangeSample(now, range_m, self.sigma_m + self.sigma_per_m * range_m, True)

    def _trigger_if_due(self, now: float) -> None:
        if now + 1e-9 < self._next_trigger_s:
            return
        self.device.write_byte(ACQ_COMMAND, MEASURE_WITH_BIAS_CORRECTION)
        self._busy_since = now
        following = self._next_trigger_s + self.period_s  # keep the cadence; restart it if far behind
        self._next_trigger_s = following if following > now else now + self.period_s

    def probe(self, timeout_s: float = 0.3, min_range_m: float | None = None,
              max_range_m: float | None = None) -> ProbeResult:
        """Preflight: UNIT_ID answers (and is not 0xFFFF, a floating bus), then one acquisition
        gives a range in [min_range_m, max_range_m]. Blocks at most timeout_s of real time."""
        try:
            return self._probe(timeout_s, self.min_range_m if min_range_m is None else min_range_m,
                               self.max_range_m if max_range_m is None else max_range_m)
        except I2cFailure as failure:
            return ProbeResult(False, str(failure))
        except Exception as exc:  # noqa: BLE001
            return ProbeResult(False, f"probe failed: {exc.__class__.__name__}: {exc}")

    def _probe(self, timeout_s: float, min_range_m: float, max_range_m: float) -> ProbeResult:
        dev = self.device
        deadline = time.monotonic() + timeout_s
        dev.allow(3)
        unit = dev.read_block(UNIT_ID_HIGH, 2)
        unit_id = unit[0] << 8 | unit[1]
        if unit_id == 0xFFFF:
            return ProbeResult(False, "UNIT_ID reads 0xFFFF (nothing driving the bus)")
        dev.allow(3)
        dev.write_byte(ACQ_COMMAND, MEASURE_WITH_BIAS_CORRECTION)
        while True:
            dev.allow(3)
            if not is_busy(dev.read_byte(STATUS)):
                break
            if time.monotonic() > deadline:
                return ProbeResult(False, f"UNIT_ID {unit_id:#06x}; still busy after {timeout_s:g} s")
            time.sleep(0.001)
        cm = decode_distance(dev.read_block(FULL_DELAY_HIGH, 2))
        self._busy_since = None
        range_m = cm * 0.01
        if not min_range_m <= range_m <= max_range_m:
            return ProbeResult(False, f"UNIT_ID {unit_id:#06x}; range {range_m:.2f} m outside "
                                      f"[{min_range_m:g}, {max_range_m:g}] m")
        return ProbeResult(True, f"UNIT_ID {unit_id:#06x}; range {range_m:.2f} m")
