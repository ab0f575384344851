"""2-D point-mass flight over a spherical Moon.

The state is kept in a Moon-centred inertial plane (X, Y, VX, VY), so gravity is the exact
inverse-square pull and the curvature relief (vx²/(R+h), ~98 % of gravity at orbital speed)
comes out of the geometry rather than being added as a term. Moon rotation (4.6 m/s at the
equator) is ignored. Integration: velocity Verlet (kick-drift-kick) with the thrust held
over the step — symplectic for gravity, so a coasting orbit keeps its energy.

Local frame at the vehicle: `up` = r/|r|, `downrange` = the direction of increasing ground-
track angle. Downrange distance is measured along the datum sphere (radius R) from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ground.sim.moon import GM_M3PS2, RADIUS_M
from ground.sim.vehicle import Vehicle


@dataclass
class Local:
    altitude_m: float
    downrange_m: float
    vertical_speed_mps: float
    horizontal_speed_mps: float


class PointMass:
    """Vehicle translation, mass and engine state. `step(dt, throttle_cmd, pitch_cmd)`."""

    def __init__(self, vehicle: Vehicle, altitude_m: float, horizontal_speed_mps: float,
                 vertical_speed_mps: float = 0.0, downrange_m: float = 0.0) -> None:
        self.vehicle = vehicle
        phi = downrange_m / RADIUS_M
        r = RADIUS_M + altitude_m
        up = (math.sin(phi), math.cos(phi))
        east = (math.cos(phi), -math.sin(phi))
        self.x = r * up[0]
        self.y = r * up[1]
        self.vx = horizontal_speed_mps * east[0] + vertical_speed_mps * up[0]
        self.vy = horizontal_speed_mps * east[1] + vertical_speed_mps * up[1]
        self.propellant_kg = vehicle.propellant_kg
        self.throttle = 0.0  # actual, after lag and limits
        self.pitch_rad = 0.0  # actual thrust/body tilt from local vertical, + toward downrange
        self.thrust_accel_up = 0.0  # last step's thrust acceleration in the local frame
        self.thrust_accel_downrange = 0.0
        self._gx, self._gy = self._gravity(self.x, self.y)
        self.time_s = 0.0

    @property
    def mass_kg(self) -> float:
        return self.vehicle.dry_mass_kg + self.propellant_kg

    @staticmethod
    def _gravity(x: float, y: float) -> tuple[float, float]:
        r2 = x * x + y * y
        k = -GM_M3PS2 / (r2 * math.sqrt(r2))
        return k * x, k * y

    def local(self) -> Local:
        r = math.hypot(self.x, self.y)
        ux, uy = self.x / r, self.y / r
        return Local(
            altitude_m=r - RADIUS_M,
            downrange_m=RADIUS_M * math.atan2(self.x, self.y),
            vertical_speed_mps=self.vx * ux + self.vy * uy,
            horizontal_speed_mps=self.vx * uy - self.vy * ux,
        )

    def _engine(self, dt: float, throttle_cmd: float, pitch_cmd: float) -> None:
        v = self.vehicle
        if throttle_cmd <= 0.0 or self.propellant_kg <= 0.0:
            target = 0.0
        else:
            target = min(v.max_throttle, max(v.min_throttle, throttle_cmd))
        if v.thrust_lag_s > 0.0:
            self.throttle += (target - self.throttle) * (1.0 - math.exp(-dt / v.thrust_lag_s))
        else:
            self.throttle = target
        if target == 0.0 and self.throttle < 1e-3:
            self.throttle = 0.0
        max_step = v.pitch_rate_limit_radps * dt
        self.pitch_rad += max(-max_step, min(max_step, pitch_cmd - self.pitch_rad))

    def step(self, dt: float, throttle_cmd: float, pitch_cmd: float) -> None:
        self._engine(dt, throttle_cmd, pitch_cmd)
        v = self.vehicle
        thrust = self.throttle * v.max_thrust_n if self.propellant_kg > 0.0 else 0.0
        mass = self.mass_kg
        if thrust > 0.0:
            burn = thrust / v.exhaust_velocity_mps * dt
            if burn > self.propellant_kg:  # the last drops: thrust for the part of the step they last
                thrust *= self.propellant_kg / burn
                burn = self.propellant_kg
            self.propellant_kg -= burn
            mass = v.dry_mass_kg + self.propellant_kg + 0.5 * burn  # mid-step mass
        a = thrust / mass
        a_up = a * math.cos(self.pitch_rad)
        a_dr = -a * math.sin(self.pitch_rad)
        self.thrust_accel_up = a_up
        self.thrust_accel_downrange = a_dr
        r = math.hypot(self.x, self.y)
        ux, uy = self.x / r, self.y / r
        tx = a_up * ux + a_dr * uy  # downrange unit = (uy, -ux)
        ty = a_up * uy - a_dr * ux
        half = 0.5 * dt
        self.vx += half * (self._gx + tx)
        self.vy += half * (self._gy + ty)
        self.x += dt * self.vx
        self.y += dt * self.vy
        self._gx, self._gy = self._gravity(self.x, self.y)
        self.vx += half * (self._gx + tx)
        self.vy += half * (self._gy + ty)
        self.time_s += dt

    def specific_energy(self) -> float:
        return 0.5 * (self.vx**2 + self.vy**2) - GM_M3PS2 / math.hypot(self.x, self.y)

    def angular_momentum(self) -> float:
        return self.x * self.vy - self.y * self.vx
