"""SLN-001..003: slant altimetry geometry and noise (flight/estimation/slant.py) against the
simulator's beam cast (ground/sim/sensors.py), which is written independently of it."""

import bisect
import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from terrain_helpers import profiles

from flight.estimation.slant import MOON_RADIUS_M, footprint
from ground.sim.moon import RADIUS_M
from ground.sim.sensors import TerrainIndex, cast_range

ELEVATION_TOL_M = 0.01  # the cast's root finder stops within 1e-4 m; double rounding at R ~ 1.7e6 m
ALONG_TOL_M = 0.05


def ground_band(index: TerrainIndex, x: float, tol: float) -> tuple[float, float]:
    """Lowest and highest ground within tol of downrange x (a vertical face spans its step)."""
    lo_x, hi_x = x - tol, x + tol
    zs = [index.elevation(lo_x), index.elevation_before(lo_x), index.elevation(hi_x), index.elevation_before(hi_x)]
    i, j = bisect.bisect_left(index.xs, lo_x), bisect.bisect_right(index.xs, hi_x)
    zs.extend(index.zs[i:j])
    return min(zs), max(zs)


def footprint_offsets_at_fixed_range(h: float, r: float, beams: np.ndarray) -> np.ndarray:
    return np.array([footprint(h, r, float(b)).offset_m for b in beams])


def test_sln001_the_flight_and_the_simulator_share_the_moon():
    assert MOON_RADIUS_M == RADIUS_M


@given(terrain=profiles(), where=st.floats(0.0, 1.0), above=st.floats(5.0, 20_000.0),
       pitch=st.floats(-1.2, 1.2), cant=st.floats(-0.5, 0.5))
def test_sln001_the_footprint_is_where_the_simulated_beam_meets_the_ground(terrain, where, above, pitch, cant):
    """SLN-001: for any terrain (steps and cliffs included), altitude, attitude and mount cant,
    the footprint the flight computes from the range lies on the ground the simulator cast the
    beam at: its elevation is the ground's at its downrange within 1 cm (a vertical face: within
    the face), its downrange within 5 cm."""
    tilt = pitch + cant
    assume(abs(tilt) < 1.45)
    index = TerrainIndex(terrain)
    x = float(terrain.xs[0] + where * (terrain.xs[-1] - terrain.xs[0]))
    h = max(index.elevation(x), index.elevation_before(x)) + above
    r = cast_range(index, h, x, tilt, 60_000.0)
    assume(r is not None and r > 0.0)
    fp = footprint(h, r, tilt)
    lo, hi = ground_band(index, x + fp.offset_m, ALONG_TOL_M)
    assert lo - ELEVATION_TOL_M <= fp.elevation_m <= hi + ELEVATION_TOL_M, (x + fp.offset_m, fp.elevation_m, lo, hi)
    assert math.copysign(1.0, fp.offset_m) == math.copysign(1.0, tilt) or abs(fp.offset_m) < 1e-6
    assert fp.drop_m == h - fp.elevation_m


@given(h=st.floats(50.0, 15_000.0), beam=st.floats(-1.3, 1.3), sigma_0=st.floats(0.1, 1.0),
       sigma_per_m=st.floats(1e-4, 1e-3), sigma_b=st.floats(1e-4, 5e-3), seed=st.integers(0, 2**32 - 1))
def test_sln002_the_stated_variance_is_the_spread_of_footprints_over_range_and_attitude_errors(
        h, beam, sigma_0, sigma_per_m, sigma_b, seed):
    """SLN-002: over flat ground, the footprint elevation's variance the flight states (range
    noise plus r·sinβ·σθ for the attitude), and the downrange doubt it states, are the spread of
    the footprints computed from ranges and beam angles drawn with those errors (Monte Carlo,
    4000 draws: within 15 %). The variance is a linearisation: good to 15 % for attitude doubts
    up to 5 mrad (the flight's pitch budget stays near 1 mrad) with a laser rangefinder's noise
    (σ_r = σ_0 + k·r, k ≥ 0.01 %); beyond that the neglected r·δβ²/2 term shows at vertical."""
    r_true = h / math.cos(beam)  # flat-Earth range is enough for the draw: the check is the spread
    assume(r_true < 60_000.0)
    sigma_r = sigma_0 + sigma_per_m * r_true
    stated = footprint(h, r_true, beam, sigma_r, sigma_b)
    rng = np.random.default_rng(seed)
    rs = r_true + sigma_r * rng.standard_normal(4000)
    bs = beam + sigma_b * rng.standard_normal(4000)
    fps = [footprint(h, float(r), float(b)) for r, b in zip(rs, bs)]
    z = np.array([f.elevation_m for f in fps])
    x = np.array([f.offset_m for f in fps])
    ratio = float(np.var(z)) / stated.variance_m2
    assert 0.85 < ratio < 1.15, ratio
    if stated.along_sigma_m > 1e-3 * sigma_r:  # the attitude's part of the spread along the track
        along = float(np.std(footprint_offsets_at_fixed_range(h, r_true, bs)))
        assert 0.9 < along / stated.along_sigma_m < 1.1, (along, stated.along_sigma_m)
    assert np.isfinite(x).all()
    assert stated.attitude_m2 <= stated.variance_m2


def test_sln003_beyond_the_tilt_limit_a_sample_says_nothing_about_the_ground_below():
    """SLN-003: the attitude's share of the variance grows as r·sinβ·σθ: at the braking tilt a
    milliradian of attitude doubt is worth tens of metres of ground, at vertical nothing."""
    flat = footprint(2000.0, 2000.0, 0.0, 1.0, 1e-3)
    steep = footprint(2000.0, 2000.0 / math.cos(1.2), 1.2, 1.0, 1e-3)
    assert flat.attitude_m2 < 1e-6 and 5.0 < math.sqrt(steep.attitude_m2) < 10.0
    assert steep.offset_m > 5000.0
