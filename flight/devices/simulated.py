"""Sample-level simulated devices: a simulator (or a test) pushes samples in, the flight
software reads them out through the same protocols the real drivers implement.

`SimulatedBench` adds a minimal stdlib-only vertical world (lunar gravity, the engine's
thrust, flat ground) so `lander-flight` and the benchmarks run with no simulator attached.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Generic, TypeVar

from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    DeviceError,
    ImuSample,
    RangeSample,
)

S = TypeVar("S")


class Feed(Generic[S]):
    """Samples in, in order; read() gives the oldest, or None when there is none."""

    def __init__(self) -> None:
        self._queue: deque[S | DeviceError] = deque()

    def push(self, sample: S | DeviceError) -> None:
        self._queue.append(sample)

    def read(self) -> S | DeviceError | None:
        return self._queue.popleft() if self._queue else None


class FeedImu(Feed[ImuSample]):
    pass


class FeedAltimeter(Feed[RangeSample]):
    def __init__(self, sensor_id: int) -> None:
        super().__init__()
        self.sensor_id = sensor_id


class RecordingEngine:
    def __init__(self) -> None:
        self.throttle = 0.0
        self.pitch_rad = 0.0
        self.commands = 0
        self.armed = False

    def arm(self, armed: bool) -> None:
        self.armed = armed

    def command(self, throttle: float, pitch_rad: float) -> None:
        self.throttle = throttle
        self.pitch_rad = pitch_rad
        self.commands += 1


class FixedContact:
    def __init__(self, closed: bool = False) -> None:
        self.is_closed = closed

    def closed(self) -> bool:
        return self.is_closed


class SimulatedBench:
    """A vertical point mass over flat ground, stepped in lockstep at the IMU rate.

    Only for running the executive without the ground simulator: guidance, estimation and
    FDIR see believable samples. Mass is held constant; the simulator in ground/ is the model.
    """

    def __init__(self, altitude_m: float = 2000.0, vertical_speed_mps: float = -20.0,
                 horizontal_speed_mps: float = 0.0, mass_kg: float = 600.0,
                 max_thrust_n: float = 2500.0, seed: int = 0, gravity_mps2: float = 1.62) -> None:
        self.h = altitude_m
        self.v = vertical_speed_mps
        self.vx = horizontal_speed_mps
        self.mass_kg = mass_kg
        self.max_thrust_n = max_thrust_n
        self.g = gravity_mps2
        self.rng = random.Random(seed)
        self.imu = FeedImu()
        self.primary = FeedAltimeter(PRIMARY_ALTIMETER)
        self.short_range = FeedAltimeter(SHORT_RANGE_ALTIMETER)
        self.engine = RecordingEngine()
        self.contact = FixedContact()
        self.time_s = 0.0
        self._steps = 0
        self._pitch = 0.0
        self.touchdown_speed_mps: float | None = None

    def advance_to(self, t_ns: int) -> None:
        t = t_ns * 1e-9
        while self.time_s < t - 1e-9:
            dt = min(0.01, t - self.time_s)
            self._step(dt)

    def _step(self, dt: float) -> None:
        thrust = self.engine.throttle * self.max_thrust_n
        a_up = thrust * math.cos(self.engine.pitch_rad) / self.mass_kg
        a_x = -thrust * math.sin(self.engine.pitch_rad) / self.mass_kg
        if self.h > 0.0:
            self.v += (a_up - self.g) * dt
            self.h = max(0.0, self.h + self.v * dt)
            self.vx += a_x * dt
        if self.h == 0.0:
            if not self.contact.is_closed:
                self.touchdown_speed_mps = abs(self.v)
            self.contact.is_closed = True
            self.v = 0.0
        self.time_s += dt
        self._steps += 1
        noise = self.rng.gauss
        # a flat world: the body's attitude is the commanded pitch; a positive rate about body y
        # lowers the pitch (flight/devices/interfaces.py)
        pitch = self.engine.pitch_rad
        rate = -(pitch - self._pitch) / dt
        self._pitch = pitch
        f_z = thrust / self.mass_kg if self.h > 0.0 else max(thrust / self.mass_kg, self.g)  # the legs carry it
        self.imu.push(ImuSample(self.time_s, noise(0.0, 0.01), 0.0, f_z + noise(0.0, 0.01),
                                0.0, rate + noise(0.0, 1e-4), 0.0))
        if self._steps % 10 == 0:
            sigma = 0.3 + 5e-4 * self.h
            self.primary.push(RangeSample(self.time_s, max(0.0, self.h + noise(0.0, sigma)), sigma, True))
        if self._steps % 2 == 0 and self.h < 180.0:
            self.short_range.push(RangeSample(self.time_s, max(0.0, self.h + noise(0.0, 0.05)), 0.05, True))
