"""SIM-001..004: the point-mass dynamics and the vehicle model."""

import math

import pytest
from ground._truth import ffi
from hypothesis import given
from hypothesis import strategies as st

from ground.sim.dynamics import PointMass
from ground.sim.moon import GM_M3PS2, RADIUS_M, STANDARD_GRAVITY_MPS2, circular_speed_mps
from ground.sim.vehicle import Vehicle, VehicleError

DT = 0.01


def test_sim001_a_coasting_circular_orbit_keeps_its_energy_and_height():
    """SIM-001: energy error small at the fixed step; curvature holds a circular orbit up
    (a flat-Moon model would fall 1.6 m/s^2)."""
    body = PointMass(Vehicle(), 15_000.0, circular_speed_mps(15_000.0))
    e0, l0 = body.specific_energy(), body.angular_momentum()
    heights = []
    for _ in range(60_000):  # 600 s, ~30 % of an orbit
        body.step(DT, 0.0, 0.0)
        heights.append(body.local().altitude_m)
    assert abs(body.specific_energy() - e0) / abs(e0) < 1e-10
    assert abs(body.angular_momentum() - l0) / abs(l0) < 1e-12
    assert max(heights) - min(heights) < 0.5


def test_sim001_free_fall_from_5_km_matches_missions_md():
    """79 s and ~127 m/s from 5 km at rest (missions.md), with inverse-square gravity."""
    body = PointMass(Vehicle(), 5_000.0, 0.0)
    while body.local().altitude_m > 0.0:
        body.step(DT, 0.0, 0.0)
    assert body.time_s == pytest.approx(math.sqrt(2 * 5000 / 1.624), rel=0.005)
    assert -body.local().vertical_speed_mps == pytest.approx(math.sqrt(2 * 1.624 * 5000), rel=0.005)


@given(throttle=st.floats(0.2, 1.0), seconds=st.floats(5.0, 60.0))
def test_sim002_vertical_burn_obeys_the_rocket_equation(throttle, seconds):
    """SIM-002: delta-v = Isp g0 ln(m0/m1) less gravity losses, mass flow = thrust / (Isp g0)."""
    v = Vehicle(thrust_lag_s=0.0)
    body = PointMass(v, 1_000_000.0, 0.0)  # far up: gravity small and known
    m0, g_loss, n = body.mass_kg, 0.0, round(seconds / DT)
    for _ in range(n):
        r = RADIUS_M + body.local().altitude_m
        g_loss += GM_M3PS2 / r**2 * DT
        body.step(DT, throttle, 0.0)
    expected = v.isp_s * STANDARD_GRAVITY_MPS2 * math.log(m0 / body.mass_kg) - g_loss
    assert body.local().vertical_speed_mps == pytest.approx(expected, rel=2e-3, abs=0.05)
    flow = throttle * v.max_thrust_n / (v.isp_s * STANDARD_GRAVITY_MPS2)
    assert m0 - body.mass_kg == pytest.approx(flow * n * DT, rel=1e-9)


def test_sim002_thrust_stops_when_the_propellant_is_gone():
    v = Vehicle(propellant_kg=2.0, thrust_lag_s=0.0)
    body = PointMass(v, 10_000.0, 0.0)
    for _ in range(2000):
        body.step(DT, 1.0, 0.0)
    assert body.propellant_kg == 0.0 and body.mass_kg == v.dry_mass_kg
    vz = body.local().vertical_speed_mps
    body.step(DT, 1.0, 0.0)
    assert body.local().vertical_speed_mps < vz  # falling: no thrust left
    assert body.thrust_accel_up == 0.0


@given(cmd=st.floats(-1.0, 1.0))
def test_sim003_engine_limits_pitch_rate_and_throttle_range(cmd):
    """SIM-003: the pitch follows the command at no more than the rate limit; a non-zero
    throttle is held inside [min, max]."""
    v = Vehicle(thrust_lag_s=0.0)
    body = PointMass(v, 10_000.0, 0.0)
    body.step(DT, 0.05, 3.0 * cmd)
    assert abs(body.pitch_rad) <= v.pitch_rate_limit_radps * DT + 1e-12
    assert body.throttle == v.min_throttle


@given(bad=st.sampled_from([math.nan, math.inf, -math.inf]), where=st.integers(0, 2))
def test_sim006_the_truth_kernel_refuses_non_finite_input_and_keeps_its_state(bad, where):
    """SIM-006: a NaN/Inf step input (or dt <= 0) is a clear error, and the body is untouched."""
    body = PointMass(Vehicle(), 10_000.0, 100.0)
    body.step(DT, 0.5, 0.1)
    before = bytes(ffi.buffer(body.state))
    args = [DT, 0.5, 0.1]
    args[where] = bad
    with pytest.raises(ValueError, match="bad step"):
        body.step(*args)
    with pytest.raises(ValueError, match="bad step"):
        body.step(0.0, 0.5, 0.1)
    assert bytes(ffi.buffer(body.state)) == before
    with pytest.raises(ValueError, match="cannot start"):
        PointMass(Vehicle(), bad, 100.0)


@pytest.mark.parametrize("change, message", [
    ({"max_thrust_n": 1000.0}, "cannot hover"),
    ({"min_throttle": 0.9}, "cannot descend"),
    ({"dry_mass_kg": -1.0}, "dry_mass_kg"),
    ({"isp_s": float("nan")}, "isp_s"),
    ({"min_throttle": 0.5, "max_throttle": 0.4}, "min_throttle"),
])
def test_sim004_impossible_vehicles_are_refused(change, message):
    with pytest.raises(VehicleError, match=message):
        Vehicle(**change)


def test_sim004_the_built_in_vehicle_is_m1_class():
    v = Vehicle()
    assert v.dry_mass_kg == 340.0 and 650.0 <= v.wet_mass_kg <= 750.0
    assert 2000.0 <= v.delta_v_mps <= 2400.0  # a descent from orbit plus M1's ~40 kg margin


def test_sim005_flying_into_a_wall_is_a_step_face_contact_and_landing_on_top_is_not():
    """SIM-005: touchdown records speeds, place and whether the vehicle hit a step face."""
    from ground.sim import terrain as T
    from ground.sim.sensors import ImuSpec, RangefinderSpec
    from ground.sim.world import World

    wall = T.profile([(-1e5, 0.0), (50.0, 0.0), (50.0, 100.0), (1e5, 100.0)])

    def fly(altitude, vx):
        w = World(Vehicle(), wall, altitude_m=altitude, horizontal_speed_mps=vx, primary=RangefinderSpec(),
                  short_range=RangefinderSpec(max_range_m=180.0), imu=ImuSpec(), faults=[], seed=0)
        for k in range(1, 3000):
            w.advance_to(k * 10_000_000)
            if w.touchdown:
                return w
        raise AssertionError("no touchdown")

    hit = fly(5.0, 50.0).touchdown
    assert hit.slope_contact and hit.downrange_m == pytest.approx(50.0, abs=1.0)
    assert hit.horizontal_speed_mps == pytest.approx(50.0, abs=0.5)
    top = fly(120.0, 20.0).touchdown  # falls onto the top of the wall
    assert not top.slope_contact and top.downrange_m > 50.0
    assert top.vertical_speed_mps == pytest.approx(math.sqrt(2 * 1.624 * 20.0), rel=0.02)
