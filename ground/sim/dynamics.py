"""2-D point-mass flight over a spherical Moon.

The state is kept in a Moon-centred inertial plane (X, Y, VX, VY), so gravity is the exact
inverse-square pull and the curvature relief (vx²/(R+h), ~98 % of gravity at orbital speed)
comes out of the geometry rather than being added as a term. Moon rotation (4.6 m/s at the
equator) is ignored. Integration: velocity Verlet (kick-drift-kick) with the thrust held
over the step — symplectic for gravity, so a coasting orbit keeps its energy.

Local frame at the vehicle: `up` = r/|r|, `downrange` = the direction of increasing ground-
track angle. Downrange distance is measured along the datum sphere (radius R) from the start.

The arithmetic is the C truth kernel (c_kernels/truth.c: `sim_body_step`), called once per
10 ms step of every campaign run; this class is its Python face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ground._truth import ffi, lib
from ground.sim.moon import GM_M3PS2, RADIUS_M
from ground.sim.vehicle import Vehicle


@dataclass(slots=True)
class Local:
    altitude_m: float
    downrange_m: float
    vertical_speed_mps: float
    horizontal_speed_mps: float


class PointMass:
    """Vehicle translation, mass and engine state. `step(dt, throttle_cmd, pitch_cmd)`.

    `state` is the kernel's struct (x_m, y_m, vx_mps, vy_mps, propellant_kg, throttle,
    pitch_rad, thrust_accel_*, the local altitude/downrange/speeds, time_s), for readers on a
    hot path; the properties below are the same numbers by name."""

    def __init__(self, vehicle: Vehicle, altitude_m: float, horizontal_speed_mps: float,
                 vertical_speed_mps: float = 0.0, downrange_m: float = 0.0) -> None:
        self.vehicle = vehicle
        self._v = ffi.new("sim_vehicle *", {
            "gm_m3ps2": GM_M3PS2, "radius_m": RADIUS_M, "dry_mass_kg": vehicle.dry_mass_kg,
            "max_thrust_n": vehicle.max_thrust_n, "exhaust_velocity_mps": vehicle.exhaust_velocity_mps,
            "min_throttle": vehicle.min_throttle, "max_throttle": vehicle.max_throttle,
            "thrust_lag_s": vehicle.thrust_lag_s, "pitch_rate_limit_radps": vehicle.pitch_rate_limit_radps,
        })
        self.state = ffi.new("sim_body *")
        if lib.sim_body_init(self.state, self._v, vehicle.propellant_kg, altitude_m, horizontal_speed_mps,
                             vertical_speed_mps, downrange_m) != 0:
            raise ValueError(f"cannot start {vehicle.name} at altitude {altitude_m} m, speeds "
                             f"({horizontal_speed_mps}, {vertical_speed_mps}) m/s, downrange {downrange_m} m")

    def step(self, dt: float, throttle_cmd: float, pitch_cmd: float) -> None:
        if lib.sim_body_step(self.state, self._v, dt, throttle_cmd, pitch_cmd) != 0:
            raise ValueError(f"bad step: dt {dt} s, throttle {throttle_cmd}, pitch {pitch_cmd} rad")

    def local(self) -> Local:
        s = self.state
        return Local(s.altitude_m, s.downrange_m, s.vertical_speed_mps, s.horizontal_speed_mps)

    @property
    def mass_kg(self) -> float:
        return self.vehicle.dry_mass_kg + self.state.propellant_kg

    @property
    def propellant_kg(self) -> float:
        return self.state.propellant_kg

    @property
    def throttle(self) -> float:
        """Actual, after lag and limits."""
        return self.state.throttle

    @property
    def pitch_rad(self) -> float:
        """Actual thrust/body tilt from the local vertical, + toward downrange."""
        return self.state.pitch_rad

    @property
    def thrust_accel_up(self) -> float:
        """The last step's thrust acceleration in the local frame."""
        return self.state.thrust_accel_up_mps2

    @property
    def thrust_accel_downrange(self) -> float:
        return self.state.thrust_accel_downrange_mps2

    @property
    def time_s(self) -> float:
        return self.state.time_s

    def specific_energy(self) -> float:
        s = self.state
        return 0.5 * (s.vx_mps**2 + s.vy_mps**2) - GM_M3PS2 / math.hypot(s.x_m, s.y_m)

    def angular_momentum(self) -> float:
        s = self.state
        return s.x_m * s.vy_mps - s.y_m * s.vx_mps
