"""What the flight software needs from its devices: timestamped samples in SI units.

Estimation, FDIR and guidance see only these protocols; the wiring module picks the
implementation (simulated in SIL, pyserial/smbus2 drivers on the board).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

PRIMARY_ALTIMETER = 0  # km-class laser rangefinder (kernel sensor id)
SHORT_RANGE_ALTIMETER = 1  # <= 180 m, dissimilar


# Samples are NamedTuples: immutable values, and cheap to build at 100 Hz on the Pi (a frozen
# dataclass costs about three times as much per instance).
class ImuSample(NamedTuple):
    """What a real IMU gives: specific force and angular rate on the body axes, SI units.

    Body axes: z along the thrust axis (the engine pushes +z), x toward downrange when the
    vehicle is upright, y = z × x (right-handed). Pitch θ (the flight's attitude, see
    flight/estimation/attitude.py) is the thrust axis's tilt from the local vertical, positive
    up-range (braking), so the rangefinders, looking along −z, see ahead: body z = (−sin θ, cos θ)
    in (downrange, up), and a positive rate about +y lowers θ.
    """

    time_s: float  # flight clock at decode
    accel_x_mps2: float
    accel_y_mps2: float
    accel_z_mps2: float
    gyro_x_radps: float
    gyro_y_radps: float
    gyro_z_radps: float


class RangeSample(NamedTuple):
    time_s: float
    range_m: float  # along the boresight
    sigma_m: float  # the device's own 1-sigma for this reading
    valid: bool  # the device says the reading is good


class LinkHealth:
    """A driver's own account of its link: counted, never raised. Housekeeping and FDIR read it."""

    __slots__ = ("bad_frames", "frames", "io_errors", "ok", "reopens", "retries", "timeouts")

    def __init__(self) -> None:
        self.frames = 0  # good frames / transactions
        self.bad_frames = 0  # garbage, bad checksum, bad length
        self.timeouts = 0  # an expected reply did not come in time
        self.io_errors = 0  # OSError / SerialException from the port or bus
        self.retries = 0  # I2C transactions retried within the budget
        self.reopens = 0  # the port came back after it disappeared
        self.ok = True  # the last exchange succeeded within its timeout


class DeviceError(NamedTuple):
    """A driver could not produce a sample (timeout, bad frame, bus error)."""

    time_s: float
    reason: str


class Imu(Protocol):
    def read(self) -> ImuSample | DeviceError | None: ...


class Altimeter(Protocol):
    sensor_id: int

    def read(self) -> RangeSample | DeviceError | None: ...


class EngineCommand(Protocol):
    def arm(self, armed: bool) -> None: ...

    def command(self, throttle: float, pitch_rad: float) -> None: ...


class ContactSwitch(Protocol):
    def closed(self) -> bool: ...


class Link(Protocol):
    def send(self, packet: bytes) -> None: ...

    def receive(self) -> list[bytes]: ...

    def close(self) -> None: ...
