"""The IMU: TDK ICM-42688-P on I2C at 0x68, read as body-frame specific force and angular rate.

Start-up (one bus transaction per call, so no call waits): REG_BANK_SEL 0x76 <- 0; WHO_AM_I
0x75 must read 0x47 (anything else: a DeviceError naming what was read, and no data is ever
taken from that part); GYRO_CONFIG0 0x4F / ACCEL_CONFIG0 0x50 <- 0x06 (±2000 dps, ±16 g,
1 kHz ODR); GYRO_ACCEL_CONFIG0 0x52 <- 0x77 (UI filters at max(400 Hz, ODR)/40 = 25 Hz);
PWR_MGMT0 0x4E <- 0x0F (gyro and accel low-noise mode; written last, the part wants no writes
for 200 us after it); then 0x4E..0x52 read back and checked. Samples are held back for the
gyro's start-up time after power-on.

Why 1 kHz and 25 Hz: the flight reads the newest sample at 100 Hz, so anything above 50 Hz
(engine vibration) would alias into the rates the attitude is integrated from. The 1 kHz ODR
keeps the newest sample at most 1 ms old; the 25 Hz filter removes what a 100 Hz read
cannot represent, at the price of a few ms of group delay.

Data: a 14-byte burst from 0x1D: temperature, accel x y z, gyro x y z, big-endian int16.
Accel 2048 LSB/g (g = 9.80665 m/s^2), gyro 16.4 LSB/(deg/s), temperature raw/132.48 + 25 C.
-32768 is the part's "no data" value (sensor off or not ready): no sample (a DeviceError).
±32767 on an axis is saturation: the sample is delivered with the full-scale value (the
truth is at least that: a touchdown shock must not vanish) and counted in `saturated`.

The chip's axes map to the body axes by `mounting` ("+x+y+z": chip x, y, z along body x, y,
z, i.e. the chip's z along the thrust axis). The codec is pure and raises only `ImuFrameError`.

>>> burst = decode_burst(bytes.fromhex("0000" "0000" "0000" "0800" "0000" "0000" "0000"))
>>> burst.accel_z
2048
>>> scale_accel_mps2(2048)
9.80665
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from flight.devices.i2c_device import Backoff, I2cDevice, I2cFailure
from flight.devices.interfaces import DeviceError, ImuSample, LinkHealth
from flight.devices.probe import ProbeResult

ADDRESS = 0x68
WHO_AM_I = 0x75
WHO_AM_I_VALUE = 0x47
REG_BANK_SEL = 0x76
TEMP_DATA1 = 0x1D
BURST_LEN = 14
PWR_MGMT0 = 0x4E
GYRO_CONFIG0 = 0x4F
ACCEL_CONFIG0 = 0x50
GYRO_ACCEL_CONFIG0 = 0x52
PWR_GYRO_ACCEL_LOW_NOISE = 0x0F
GYRO_2000DPS_1KHZ = 0x06  # FS_SEL 000 (bits 7:5) | ODR 0110 (bits 3:0)
ACCEL_16G_1KHZ = 0x06
UI_FILTERS_ODR_OVER_40 = 0x77  # ACCEL_UI_FILT_BW 7 (bits 7:4) | GYRO_UI_FILT_BW 7 (bits 3:0)

STANDARD_GRAVITY_MPS2 = 9.80665
ACCEL_LSB_PER_G = 2048.0
GYRO_LSB_PER_DPS = 16.4
TEMP_LSB_PER_C = 132.48
TEMP_OFFSET_C = 25.0
NO_DATA = -32768
FULL_SCALE = 32767
STARTUP_S = 0.06  # gyro start-up after PWR_MGMT0 (datasheet: up to ~45 ms; margin)

_BURST = struct.Struct(">7h")


class ImuFrameError(ValueError):
    pass


class RawBurst(NamedTuple):
    temperature: int
    accel_x: int
    accel_y: int
    accel_z: int
    gyro_x: int
    gyro_y: int
    gyro_z: int


def decode_burst(data: bytes) -> RawBurst:
    """The 14 bytes from TEMP_DATA1 -> raw counts (chip axes)."""
    if len(data) != BURST_LEN:
        raise ImuFrameError(f"a burst is {BURST_LEN} bytes, got {len(data)}")
    return RawBurst(*_BURST.unpack(data))


def scale_accel_mps2(raw: int) -> float:
    return raw * (STANDARD_GRAVITY_MPS2 / ACCEL_LSB_PER_G)


def scale_gyro_radps(raw: int) -> float:
    """
    >>> round(math.degrees(scale_gyro_radps(164)), 9)
    10.0
    """
    return math.radians(raw / GYRO_LSB_PER_DPS)


def scale_temperature_c(raw: int) -> float:
    """
    >>> scale_temperature_c(0)
    25.0
    """
    return raw / TEMP_LSB_PER_C + TEMP_OFFSET_C


def parse_mounting(text: str) -> tuple[tuple[int, float], ...]:
    """"+x+y+z"-style mounting -> per body axis (chip axis index, sign); a proper rotation only.

    >>> parse_mounting("-y+x+z")
    ((1, -1.0), (0, 1.0), (2, 1.0))
    """
    if len(text) != 6 or any(text[i] not in "+-" or text[i + 1] not in "xyz" for i in range(0, 6, 2)):
        raise ValueError(f"mounting {text!r}: three signed chip axes, e.g. '+x+y+z'")
    axes = tuple(("xyz".index(text[i + 1]), 1.0 if text[i] == "+" else -1.0) for i in range(0, 6, 2))
    if sorted(a for a, _ in axes) != [0, 1, 2]:
        raise ValueError(f"mounting {text!r}: each chip axis once")
    rows = [[0.0] * 3 for _ in range(3)]
    for body, (chip, sign) in enumerate(axes):
        rows[body][chip] = sign
    det = (rows[0][0] * (rows[1][1] * rows[2][2] - rows[1][2] * rows[2][1])
           - rows[0][1] * (rows[1][0] * rows[2][2] - rows[1][2] * rows[2][0])
           + rows[0][2] * (rows[1][0] * rows[2][1] - rows[1][1] * rows[2][0]))
    if det < 0:
        raise ValueError(f"mounting {text!r} is a mirror image, not a rotation")
    return axes


def no_data_axes(burst: RawBurst) -> list[str]:
    return [name for name, v in zip(RawBurst._fields[1:], burst[1:]) if v == NO_DATA]


def to_body(burst: RawBurst, time_s: float, mounting: tuple[tuple[int, float], ...]) -> ImuSample:
    accel = (burst.accel_x, burst.accel_y, burst.accel_z)
    gyro = (burst.gyro_x, burst.gyro_y, burst.gyro_z)
    (ax, sx), (ay, sy), (az, sz) = mounting
    return ImuSample(time_s,
                     sx * scale_accel_mps2(accel[ax]), sy * scale_accel_mps2(accel[ay]), sz * scale_accel_mps2(accel[az]),
                     sx * scale_gyro_radps(gyro[ax]), sy * scale_gyro_radps(gyro[ay]), sz * scale_gyro_radps(gyro[az]))


# start-up, one transaction each; VERIFY is also where a run resumes after a bus failure
BANK, IDENTITY, CONFIG, FILTERS, POWER, VERIFY, RUN = range(7)
_EXPECTED = {0: PWR_GYRO_ACCEL_LOW_NOISE, 1: GYRO_2000DPS_1KHZ, 2: ACCEL_16G_1KHZ, 4: UI_FILTERS_ODR_OVER_40}


class Icm42688:
    """The `Imu` driver: body-frame `ImuSample`s, one burst per `period_s` at most.

    read() is called at 100 Hz until it returns None: one burst (one transaction, a retry if
    it fails: at most 2) then None until the next period; during start-up one configuration
    transaction per call. Budget on the board: a 14-byte read at 400 kHz ~ 0.4 ms, 0.8 ms
    with its retry.
    """

    def __init__(self, bus, clock_s: Callable[[], float], *, address: int = ADDRESS, period_s: float = 0.01,
                 mounting: str = "+x+y+z", max_attempts: int = 2, backoff_max_s: float = 0.5,
                 reinit_after_no_data: int = 10, identity_retry_s: float = 1.0) -> None:
        self.clock_s = clock_s
        self.period_s = period_s
        self.mounting = parse_mounting(mounting)
        self.health = LinkHealth()
        self.device = I2cDevice(bus, address, self.health, max_attempts)
        self.backoff = Backoff(period_s, backoff_max_s)
        self.reinit_after_no_data = reinit_after_no_data
        self.identity_retry_s = identity_retry_s
        self.step = BANK
        self._warm_until_s = -math.inf
        self._last_burst_s = -math.inf
        self._no_data_run = 0
        self.who_am_i: int | None = None
        self.identity_failures = 0
        self.no_data = 0
        self.saturated = 0
        self.inits = 0  # start-ups (power-on writes): more than one, the part was reset or re-powered
        self.internal_errors = 0
        self.temperature_c = math.nan

    def read(self) -> ImuSample | DeviceError | None:
        try:
            now = self.clock_s()
        except Exception as exc:  # noqa: BLE001
            self.internal_errors += 1
            return DeviceError(math.nan, f"clock: {exc}")
        try:
            if not self.backoff.ready(now):
                return None
            self.device.allow(self.device.max_attempts)
            if self.step != RUN:
                return self._start_up(now)
            return self._burst(now)
        except I2cFailure as failure:
            self.health.ok = False
            self.backoff.failed(now)
            if self.step == RUN:
                self.step = VERIFY  # when the bus is back: is the part still configured?
            return DeviceError(now, f"ICM-42688: {failure}")
        except Exception as exc:  # noqa: BLE001 - the contract: never raise into the executive
            self.internal_errors += 1
            self.backoff.failed(now)
            self.step = BANK
            return DeviceError(now, f"ICM-42688 driver: {exc.__class__.__name__}: {exc}")

    def _start_up(self, now: float) -> DeviceError | None:
        dev, step = self.device, self.step
        if step == BANK:
            dev.write_byte(REG_BANK_SEL, 0)
        elif step == IDENTITY:
            self.who_am_i = dev.read_byte(WHO_AM_I)
            if self.who_am_i != WHO_AM_I_VALUE:
                self.identity_failures += 1
                self.health.ok = False
                self.backoff.until_s = now + self.identity_retry_s
                self.step = BANK
                return DeviceError(now, f"ICM-42688: WHO_AM_I reads {self.who_am_i:#04x}, expected "
                                        f"{WHO_AM_I_VALUE:#04x}: not an ICM-42688-P, no data taken")
        elif step == CONFIG:
            dev.write_block(GYRO_CONFIG0, [GYRO_2000DPS_1KHZ, ACCEL_16G_1KHZ])
        elif step == FILTERS:
            dev.write_byte(GYRO_ACCEL_CONFIG0, UI_FILTERS_ODR_OVER_40)
        elif step == POWER:
            dev.write_byte(PWR_MGMT0, PWR_GYRO_ACCEL_LOW_NOISE)
            self._warm_until_s = now + STARTUP_S
            self.inits += 1
        elif step == VERIFY:
            regs = dev.read_block(PWR_MGMT0, 5)
            wrong = {f"{PWR_MGMT0 + i:#04x}": f"{regs[i]:#04x}" for i, v in _EXPECTED.items() if regs[i] != v}
            if wrong:
                self.step = BANK
                self.health.ok = False
                self.backoff.failed(now)
                return DeviceError(now, f"ICM-42688: configuration lost ({wrong}): starting it again")
            self._no_data_run = 0
        self.step += 1
        self.backoff.succeeded()
        return None

    def _burst(self, now: float) -> ImuSample | DeviceError | None:
        if now - self._last_burst_s < 0.5 * self.period_s:
            return None  # this period's sample is out: the caller's read loop ends here
        burst = decode_burst(self.device.read_block(TEMP_DATA1, BURST_LEN))
        self._last_burst_s = now
        self.backoff.succeeded()
        self.temperature_c = math.nan if burst.temperature == NO_DATA else scale_temperature_c(burst.temperature)
        missing = no_data_axes(burst)
        if missing:
            if now < self._warm_until_s:
                return None  # still starting up: expected
            self.no_data += 1
            self._no_data_run += 1
            self.health.ok = False
            if self._no_data_run >= self.reinit_after_no_data:
                self.step = BANK  # powered off behind our back (reset, brown-out): start it again
            return DeviceError(now, f"ICM-42688: no data on {', '.join(missing)} (sensor off or not ready)")
        self._no_data_run = 0
        if any(abs(v) >= FULL_SCALE for v in burst[1:]):
            self.saturated += 1
        self.health.frames += 1
        self.health.ok = True
        return to_body(burst, now, self.mounting)

    # -- start-up before the executive -----------------------------------------------------------
    def start(self, timeout_s: float = 0.5) -> ProbeResult:
        """Identify, configure and power the part now, in real time, before the executive runs
        (a flight computer's IMU is up long before the descent starts). Without it the first
        slots of a run would each do one start-up transaction and give no sample for ~70 ms.
        Leaves the driver at its configuration check (one transaction in the first slot, data
        from the second), or at the start of its start-up if the part did not answer as it
        should (the slots then do it, as after any failure). Blocks at most timeout_s plus the
        gyro's start-up time; never raises."""
        try:
            result = self._start(timeout_s)
        except I2cFailure as failure:
            result = ProbeResult(False, str(failure))
        except Exception as exc:  # noqa: BLE001
            result = ProbeResult(False, f"start failed: {exc.__class__.__name__}: {exc}")
        self.backoff.succeeded()
        self._warm_until_s = -math.inf
        self.step = VERIFY if result.ok else BANK
        return result

    def _start(self, timeout_s: float) -> ProbeResult:
        deadline = time.monotonic() + timeout_s
        self.step = BANK
        while self.step < VERIFY:
            if time.monotonic() > deadline:
                return ProbeResult(False, f"start-up not done within {timeout_s:g} s")
            self.device.allow(self.device.max_attempts)
            error = self._start_up(time.monotonic())
            if error is not None:
                return ProbeResult(False, error.reason)
        time.sleep(STARTUP_S)
        return ProbeResult(True, f"WHO_AM_I {self.who_am_i:#04x}, configured, powered")

    # -- preflight ------------------------------------------------------------------------------
    def probe(self, samples: int = 8, expected_g_mps2: float = STANDARD_GRAVITY_MPS2,
              accel_tolerance_mps2: float = 0.1 * STANDARD_GRAVITY_MPS2,
              gyro_tolerance_radps: float = math.radians(2.0), timeout_s: float = 0.5) -> ProbeResult:
        """Preflight, the vehicle at rest: WHO_AM_I, start-up, then the mean of `samples` bursts
        must have |accel| within accel_tolerance of expected_g and |gyro| within
        gyro_tolerance, and the temperature within the part's -40..85 C.

        Tolerances: the datasheet allows a zero-g offset of ±20 mg per axis and a sensitivity
        error of ±0.5 %: |accel| is off by at most ~40 mg in spec; 0.1 g passes any good part
        and fails a wrong full scale (2x..8x), a stuck or dead axis, a 3 g or 0 g liar. Gyro
        zero-rate offset ±0.5 dps per axis (0.9 dps on the norm), Earth's rate 0.004 dps:
        2 dps passes any good part at rest and fails a bumped bench or a drifting gyro.
        Blocks at most timeout_s (+ the start-up) of real time; never raises.
        """
        try:
            result = self._probe(samples, expected_g_mps2, accel_tolerance_mps2, gyro_tolerance_radps, timeout_s)
        except I2cFailure as failure:
            result = ProbeResult(False, str(failure))
        except Exception as exc:  # noqa: BLE001
            result = ProbeResult(False, f"probe failed: {exc.__class__.__name__}: {exc}")
        # the probe ran on real time: leave nothing of it in the flight clock's state; a part
        # that passed resumes with the configuration check, any other starts from scratch
        self.backoff.succeeded()
        self._warm_until_s = -math.inf
        self.step = VERIFY if result.ok else BANK
        return result

    def _probe(self, samples: int, expected_g: float, accel_tol: float, gyro_tol: float,
               timeout_s: float) -> ProbeResult:
        dev = self.device
        deadline = time.monotonic() + timeout_s + STARTUP_S
        dev.allow(3)
        who = dev.read_byte(WHO_AM_I)
        if who != WHO_AM_I_VALUE:
            return ProbeResult(False, f"WHO_AM_I reads {who:#04x}, expected {WHO_AM_I_VALUE:#04x}")
        for step in (BANK, CONFIG, FILTERS, POWER, VERIFY):
            self.step = step
            dev.allow(3)
            error = self._start_up(time.monotonic())
            if error is not None:
                return ProbeResult(False, error.reason)
        time.sleep(STARTUP_S)
        sums = [0.0] * 6
        temperature = 0.0
        taken = 0
        while taken < samples:
            if time.monotonic() > deadline:
                return ProbeResult(False, f"{taken} of {samples} samples within {timeout_s:g} s")
            dev.allow(3)
            burst = decode_burst(dev.read_block(TEMP_DATA1, BURST_LEN))
            missing = no_data_axes(burst)
            if missing:
                return ProbeResult(False, f"no data on {', '.join(missing)} after start-up (sensor off)")
            s = to_body(burst, 0.0, self.mounting)
            for i, v in enumerate(s[1:]):
                sums[i] += v
            temperature += scale_temperature_c(burst.temperature)
            taken += 1
            time.sleep(0.002)  # > one 1 kHz sample apart
        mean = [v / samples for v in sums]
        accel = math.sqrt(sum(v * v for v in mean[:3]))
        gyro = math.sqrt(sum(v * v for v in mean[3:]))
        temperature /= samples
        figures = (f"|a| {accel / STANDARD_GRAVITY_MPS2:.3f} g, |w| {math.degrees(gyro):.2f} dps, "
                   f"{temperature:.1f} C")
        if abs(accel - expected_g) > accel_tol:
            return ProbeResult(False, f"at rest {figures}: |a| not within {accel_tol / STANDARD_GRAVITY_MPS2:.2f} g "
                                      f"of {expected_g / STANDARD_GRAVITY_MPS2:.3f} g")
        if gyro > gyro_tol:
            return ProbeResult(False, f"at rest {figures}: |w| above {math.degrees(gyro_tol):.1f} dps")
        if not -40.0 <= temperature <= 85.0:
            return ProbeResult(False, f"{figures}: temperature outside the part's -40..85 C")
        return ProbeResult(True, f"WHO_AM_I 0x47; {figures}")
