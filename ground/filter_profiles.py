"""Synthetic inputs for the altitude filter alone: a straight descent over terrain with
steps, IMU samples at 100 Hz and rangefinder samples at 10 Hz, plus the truth.

Used by the filter's property tests, its benchmark and `lander replay`; the full
closed-loop simulator lives elsewhere in ground/.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ground.filter_batch import BatchInputs
from ground.sim.moon import RADIUS_M

MOON_GRAVITY_MPS2 = 1.62  # the kernel's constant g, not GM/R²: these profiles feed the filter alone
MOON_RADIUS_M = RADIUS_M


def lrf_sigma_m(range_m: np.ndarray | float) -> np.ndarray | float:
    """1-sigma of a km-class laser rangefinder: 0.3 m plus 0.05 % of range (7.8 m at 15 km)."""
    return 0.3 + 5.0e-4 * np.abs(range_m)


@dataclass
class RangeProfile:
    """Filter inputs (one row per 100 Hz step) and the truth they came from."""

    dt_s: np.ndarray
    force_mps2: np.ndarray
    horizontal_speed_mps: np.ndarray
    range_m: np.ndarray
    cos_tilt: np.ndarray
    sigma_m: np.ndarray
    valid: np.ndarray  # uint8
    time_s: np.ndarray
    true_altitude_m: np.ndarray
    true_velocity_mps: np.ndarray
    true_terrain_m: np.ndarray

    @property
    def true_hat_m(self) -> np.ndarray:
        return self.true_altitude_m - self.true_terrain_m

    def inputs(self) -> BatchInputs:
        return {
            "dt_s": self.dt_s,
            "force_mps2": self.force_mps2,
            "horizontal_speed_mps": self.horizontal_speed_mps,
            "range_m": self.range_m,
            "cos_tilt": self.cos_tilt,
            "sigma_m": self.sigma_m,
            "valid": self.valid,
        }

    def with_ranges(self, range_m: np.ndarray | None = None, valid: np.ndarray | None = None) -> RangeProfile:
        return replace(
            self,
            range_m=self.range_m.copy() if range_m is None else np.ascontiguousarray(range_m, dtype=np.float64),
            valid=self.valid.copy() if valid is None else np.ascontiguousarray(valid, dtype=np.uint8),
        )

    def range_indices(self) -> np.ndarray:
        return np.flatnonzero(self.valid)


def descent_profile(
    duration_s: float,
    altitude_m: float,
    vertical_speed_mps: float,
    horizontal_speed_mps: float = 300.0,
    terrain_steps: tuple[tuple[float, float], ...] = (),
    seed: int = 0,
    imu_rate_hz: int = 100,
    range_rate_hz: int = 10,
    imu_noise_mps2: float = 0.01,
    imu_bias_mps2: float = 0.002,
) -> RangeProfile:
    """Constant-velocity descent; terrain_steps = ((time_s, new_elevation_m), ...)."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * imu_rate_hz)
    dt = 1.0 / imu_rate_hz
    t = (np.arange(n) + 1) * dt
    altitude = altitude_m + vertical_speed_mps * t
    velocity = np.full(n, float(vertical_speed_mps))
    terrain = np.zeros(n)
    for when, elevation in sorted(terrain_steps):
        terrain[t >= when] = elevation
    vx = np.full(n, float(horizontal_speed_mps))
    # Constant velocity: the specific force only balances gravity less curvature relief.
    force = MOON_GRAVITY_MPS2 - vx**2 / (MOON_RADIUS_M + altitude) + imu_bias_mps2
    force = force + rng.normal(0.0, imu_noise_mps2, n)
    every = imu_rate_hz // range_rate_hz
    valid = np.zeros(n, dtype=np.uint8)
    valid[every - 1 :: every] = 1
    true_range = np.maximum(altitude - terrain, 0.0)
    measured = np.maximum(true_range + rng.normal(0.0, 1.0, n) * lrf_sigma_m(true_range), 0.0)
    measured = np.round(measured, 2)  # the LRF reports centimetres
    sigma = lrf_sigma_m(measured)  # the driver knows only what it measured
    return RangeProfile(
        dt_s=np.full(n, dt),
        force_mps2=np.ascontiguousarray(force),
        horizontal_speed_mps=vx,
        range_m=np.where(valid == 1, measured, 0.0),
        cos_tilt=np.ones(n),
        sigma_m=np.ascontiguousarray(sigma),
        valid=valid,
        time_s=t,
        true_altitude_m=altitude,
        true_velocity_mps=velocity,
        true_terrain_m=terrain,
    )
