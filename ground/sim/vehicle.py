"""The vehicle: masses, engine, attitude limits. Pure data plus its own checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ground.sim.moon import STANDARD_GRAVITY_MPS2, SURFACE_GRAVITY_MPS2


class VehicleError(ValueError):
    pass


@dataclass(frozen=True)
class Vehicle:
    """An M1-class lander by default (see ground/sim/README.md for where each number comes from)."""

    name: str = "m1-class"
    dry_mass_kg: float = 340.0  # RESILIENCE-class (missions.md)
    propellant_kg: float = 370.0  # at descent start; README: why 360
    isp_s: float = 320.0  # bipropellant class (assumed; unpublished for M1)
    max_thrust_n: float = 2500.0  # thrust-to-weight ~2.3 at 700 kg (descent-physics.md)
    min_throttle: float = 0.2  # deep-throttling limit of the main engine (or its pulse-width equivalent)
    max_throttle: float = 1.0
    pitch_rate_limit_radps: float = 0.5  # attitude control authority
    thrust_lag_s: float = 0.1  # first-order engine response

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise VehicleError(f"vehicle {self.name}: {f.name} must be a finite number, got {value!r}")
        if self.dry_mass_kg <= 0 or self.propellant_kg < 0:
            raise VehicleError(f"vehicle {self.name}: dry_mass_kg must be > 0 and propellant_kg >= 0")
        if self.isp_s <= 0 or self.max_thrust_n <= 0 or self.pitch_rate_limit_radps <= 0 or self.thrust_lag_s < 0:
            raise VehicleError(f"vehicle {self.name}: isp_s, max_thrust_n and pitch_rate_limit_radps must be > 0, "
                               "thrust_lag_s >= 0")
        if not 0.0 <= self.min_throttle <= self.max_throttle <= 1.0 or self.max_throttle <= 0:
            raise VehicleError(f"vehicle {self.name}: need 0 <= min_throttle <= max_throttle <= 1, max_throttle > 0")
        weight = self.wet_mass_kg * SURFACE_GRAVITY_MPS2
        if self.max_thrust_n * self.max_throttle <= weight:
            raise VehicleError(
                f"vehicle {self.name} cannot hover: max thrust {self.max_thrust_n * self.max_throttle:.0f} N "
                f"<= lunar weight {weight:.0f} N at {self.wet_mass_kg:.0f} kg")
        if self.min_throttle * self.max_thrust_n >= self.dry_mass_kg * SURFACE_GRAVITY_MPS2:
            raise VehicleError(
                f"vehicle {self.name} cannot descend: minimum thrust {self.min_throttle * self.max_thrust_n:.0f} N "
                f">= lunar weight {self.dry_mass_kg * SURFACE_GRAVITY_MPS2:.0f} N at dry mass")

    @property
    def wet_mass_kg(self) -> float:
        return self.dry_mass_kg + self.propellant_kg

    @property
    def exhaust_velocity_mps(self) -> float:
        return self.isp_s * STANDARD_GRAVITY_MPS2

    @property
    def delta_v_mps(self) -> float:
        return self.exhaust_velocity_mps * math.log(self.wet_mass_kg / self.dry_mass_kg)
