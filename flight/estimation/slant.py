"""Where a slant range lands, and how well it is known. Pure geometry over a spherical body.

A beam tilted β from the local vertical (+ ahead, toward downrange; β = pitch + the mount's cant),
from a vehicle at altitude h above the datum sphere of radius R, hits something at range r.
In the plane of the track, with the body's centre below the vehicle at distance R + h:

    s = r sin β,   c = R + h − r cos β,   ρ = √(s² + c²),   φ = atan2(s, c)
    footprint: downrange offset R·φ along the datum sphere, elevation z = ρ − R above it
    drop = h − z  (how far the footprint lies below the vehicle)

The footprint's elevation is known to the range's noise, the attitude's and the beam's width:

    σ_z² = (∂ρ/∂r · σ_r)² + (∂ρ/∂β · σ_β)² + (g · w)²
    ∂ρ/∂r = (s sin β − c cos β)/ρ,   ∂ρ/∂β = r (s cos β + c sin β)/ρ   (≈ −cos β and r sin β)

where w is the footprint's half-length on the ground (beam divergence, stretched by the
incidence) plus its along-track position error (∂x/∂β · σ_β), and g the terrain slope it may
lie on. Near vertical this is the familiar (σ_r cos β)² + (r sin β σ_β)².

>>> f = footprint(2000.0, 2000.0, 0.0)
>>> (round(f.offset_m, 6), round(f.elevation_m, 6), round(f.drop_m, 6))
(0.0, 0.0, 2000.0)
"""

from __future__ import annotations

import math
from typing import NamedTuple

MOON_RADIUS_M = 1737.4e3


class Footprint(NamedTuple):
    offset_m: float  # downrange from the vehicle, along the datum sphere
    elevation_m: float  # above the datum sphere
    drop_m: float  # vehicle altitude - footprint elevation
    variance_m2: float  # of the elevation (and of the drop), from range, attitude and footprint size
    along_sigma_m: float  # 1-sigma of the offset, from the attitude
    attitude_m2: float  # the attitude's part of variance_m2: shared by samples taken close together


def footprint(altitude_m: float, range_m: float, beam_rad: float, range_sigma_m: float = 0.0,
              beam_sigma_rad: float = 0.0, divergence_rad: float = 0.0, slope: float = 0.0,
              radius_m: float = MOON_RADIUS_M) -> Footprint:
    sb, cb = math.sin(beam_rad), math.cos(beam_rad)
    s = range_m * sb
    c = radius_m + altitude_m - range_m * cb
    rho = math.hypot(s, c)
    phi = math.atan2(s, c)
    elevation = rho - radius_m
    d_range = (s * sb - c * cb) / rho
    d_beam = range_m * (s * cb + c * sb) / rho
    # along-track: the offset's sensitivity to the beam angle, R dφ/dβ, with dφ = (c ds − s dc)/ρ²
    d_along = radius_m * range_m * (c * cb - s * sb) / (rho * rho)
    along_sigma = abs(d_along) * beam_sigma_rad
    incidence = abs(math.cos(beam_rad + phi)) or 1e-9
    half_length = 0.5 * divergence_rad * range_m / incidence
    spread = slope * (half_length + along_sigma)
    attitude = (d_beam * beam_sigma_rad) ** 2
    variance = (d_range * range_sigma_m) ** 2 + attitude + spread * spread
    return Footprint(radius_m * phi, elevation, altitude_m - elevation, variance, along_sigma, attitude)
