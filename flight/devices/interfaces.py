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
    time_s: float
    specific_force_up_mps2: float  # along local vertical, up +
    specific_force_downrange_mps2: float  # along the ground track
    pitch_rad: float  # thrust/boresight tilt from vertical, + toward downrange


class RangeSample(NamedTuple):
    time_s: float
    range_m: float  # along the boresight
    sigma_m: float  # the device's own 1-sigma for this reading
    valid: bool  # the device says the reading is good


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
    def command(self, throttle: float, pitch_rad: float) -> None: ...


class ContactSwitch(Protocol):
    def closed(self) -> bool: ...


class Link(Protocol):
    def send(self, packet: bytes) -> None: ...

    def receive(self) -> list[bytes]: ...

    def close(self) -> None: ...
