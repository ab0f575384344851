"""Shared set-up for the filter tests: a filter started near the truth of a profile."""

import numpy as np

from flight.estimation.altitude_filter import AltitudeFilter
from ground.filter_profiles import RangeProfile


def filter_for(profile: RangeProfile, policy: str = "terrain-aware", **overrides) -> AltitudeFilter:
    """Start at the profile's truth with 20 m / 1 m/s of initial doubt."""
    x0 = (
        float(profile.true_altitude_m[0] - profile.true_velocity_mps[0] * profile.dt_s[0]),
        float(profile.true_velocity_mps[0]),
        0.0,
        float(profile.true_terrain_m[0]),
    )
    return AltitudeFilter(policy, x0=x0, var0=(20.0**2, 1.0, 1e-4, 20.0**2), **overrides)


def hat_error(profile: RangeProfile, hat: np.ndarray) -> np.ndarray:
    return np.abs(hat - profile.true_hat_m)
