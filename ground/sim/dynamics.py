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


@dataclass(slots=True)
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
        self.time_s = 0.0
        self._lag_dt = self._lag_gain = 0.0
        self._at_position()

    @property
    def mass_kg(self) -> float:
        return self.vehicle.dry_mass_kg + self.propellant_kg

    def _at_position(self) -> None:
        """Gravity and the local frame at the current position: one square root per step."""
        x, y = self.x, self.y
        r2 = x * x + y * y
        r = math.sqrt(r2)
        k = -GM_M3PS2 / (r2 * r)
        self._gx, self._gy = k * x, k * y
        self._r, self._ux, self._uy = r, x / r, y / r

    def local(self) -> Local:
        ux, uy = self._ux, self._uy
        return Local(
            altitude_m=self._r - RADIUS_M,
            downrange_m=RADIUS_M * math.atan2(self.x, self.y),
            vertical_speed_mps=self.vx * ux + self.vy * uy,
            horizontal_speed_mps=self.vx * uy - self.vy * ux,
        )

    def step(self, dt: float, throttle_cmd: float, pitch_cmd: float) -> None:
        v = self.vehicle
        # the engine: a non-zero throttle is held inside [min, max], lags by tau; thrust turns
        # at most the pitch-rate limit
        if throttle_cmd <= 0.0 or self.propellant_kg <= 0.0:
            target = 0.0
        else:
            target = min(v.max_throttle, max(v.min_throttle, throttle_cmd))
        if v.thrust_lag_s > 0.0:
            if dt != self._lag_dt:  # the first-order lag's factor, once per step size
                self._lag_dt, self._lag_gain = dt, 1.0 - math.exp(-dt / v.thrust_lag_s)
            self.throttle += (target - self.throttle) * self._lag_gain
        else:
            self.throttle = target
        if target == 0.0 and self.throttle < 1e-3:
            self.throttle = 0.0
        max_step = v.pitch_rate_limit_radps * dt
        pitch = self.pitch_rad + max(-max_step, min(max_step, pitch_cmd - self.pitch_rad))
        self.pitch_rad = pitch
        # thrust and mass flow
        propellant = self.propellant_kg
        thrust = self.throttle * v.max_thrust_n if propellant > 0.0 else 0.0
        mass = v.dry_mass_kg + propellant
        if thrust > 0.0:
            burn = thrust / v.exhaust_velocity_mps * dt
            if burn > propellant:  # the last drops: thrust for the part of the step they last
                thrust *= propellant / burn
                burn = propellant
            self.propellant_kg = propellant = propellant - burn
            mass = v.dry_mass_kg + propellant + 0.5 * burn  # mid-step mass
        a = thrust / mass
        a_up = a * math.cos(pitch)
        a_dr = -a * math.sin(pitch)
        self.thrust_accel_up = a_up
        self.thrust_accel_downrange = a_dr
        # velocity Verlet, the thrust held over the step
        ux, uy = self._ux, self._uy
        half = 0.5 * dt
        kx = half * (a_up * ux + a_dr * uy)  # downrange unit = (uy, -ux)
        ky = half * (a_up * uy - a_dr * ux)
        vx = self.vx + half * self._gx + kx
        vy = self.vy + half * self._gy + ky
        self.x += dt * vx
        self.y += dt * vy
        self._at_position()
        self.vx = vx + half * self._gx + kx
        self.vy = vy + half * self._gy + ky
        self.time_s += dt

    def specific_energy(self) -> float:
        return 0.5 * (self.vx**2 + self.vy**2) - GM_M3PS2 / math.hypot(self.x, self.y)

    def angular_momentum(self) -> float:
        return self.x * self.vy - self.y * self.vx
