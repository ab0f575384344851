"""What the flight software needs from its devices: timestamped samples in SI units.

Estimation, FDIR and guidance see only these protocols; the wiring module picks the
implementation (simulated in SIL, pyserial/smbus2 drivers on the board).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PRIMARY_ALTIMETER = 0  # km-class laser rangefinder (kernel sensor id)
SHORT_RANGE_ALTIMETER = 1  # <= 180 m, dissimilar


@dataclass(frozen=True)
class ImuSample:
    time_s: float
    specific_force_up_mps2: float  # along local vertical, up +
    specific_force_downrange_mps2: float  # along the ground track
    pitch_rad: float  # thrust/boresight tilt from vertical, + toward downrange


@dataclass(frozen=True)
class RangeSample:
    time_s: float
    range_m: float  # along the boresight
    sigma_m: float  # the device's own 1-sigma for this reading
    valid: bool  # the device says the reading is good


@dataclass(frozen=True)
class DeviceError:
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
