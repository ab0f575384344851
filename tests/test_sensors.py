"""SNS-001..005: sensor and fault models."""

import bisect
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from terrain_helpers import profiles

from flight.estimation.attitude import Attitude
from ground.sim import faults as F
from ground.sim import terrain as T
from ground.sim.moon import RADIUS_M, STANDARD_GRAVITY_MPS2
from ground.sim.sensors import (
    ImuModel,
    ImuSpec,
    Rangefinder,
    RangefinderSpec,
    TerrainIndex,
    cast_range,
)


def sphere_range(h: float, tilt: float, elevation: float = 0.0) -> float:
    """Exact slant range from height h to a sphere of radius R + elevation."""
    rh, rg = RADIUS_M + h, RADIUS_M + elevation
    c = math.cos(tilt)
    disc = (rh * c) ** 2 - (rh**2 - rg**2)
    return rh * c - math.sqrt(disc) if disc >= 0 else math.inf  # inf: past the horizon


@given(h=st.floats(5.0, 20_000.0), tilt=st.floats(-1.45, 1.45), sparse=st.booleans())
def test_sns001_range_over_a_smooth_moon_is_the_sphere_intersection(h, tilt, sparse):
    """SNS-001: the beam meets a curved Moon exactly, dense or sparse terrain rows alike."""
    terrain = T.flat(0.0) if sparse else T.synthetic({"start_m": -200_000.0, "end_m": 200_000.0})
    r = cast_range(TerrainIndex(terrain), h, 0.0, tilt, 100_000.0)
    expected = sphere_range(h, tilt)
    if expected > 100_000.0:
        assert r is None
    else:
        assert r == pytest.approx(expected, rel=1e-7, abs=1e-3)
    far = cast_range(TerrainIndex(terrain), h, 0.0, tilt, 1e7)
    assert far is None if math.isinf(expected) else far == pytest.approx(expected, rel=1e-7, abs=1e-3)


def test_sns001_beam_hits_a_cliff_face_and_sees_past_a_drop():
    terrain = T.profile([(-1e5, 0.0), (1000.0, 0.0), (1000.0, 3000.0), (1e5, 3000.0)])
    idx = TerrainIndex(terrain)
    tilt = math.radians(45.0)
    r = cast_range(idx, 2000.0, 0.0, tilt, 50_000.0)  # the wall at 1 km, 1 km below the vehicle
    assert r == pytest.approx(1000.0 / math.sin(tilt), rel=2e-3)  # flat-ground figure; the Moon curves
    drop = T.profile([(-1e5, 5000.0), (1000.0, 5000.0), (1000.0, 0.0), (1e5, 0.0)])
    r = cast_range(TerrainIndex(drop), 8000.0, 3000.0, 0.0, 50_000.0)  # straight down past the rim
    assert r == pytest.approx(8000.0)
    assert cast_range(TerrainIndex(drop), 8000.0, 0.0, 0.0, 1000.0) is None  # beyond max range
    assert cast_range(TerrainIndex(drop), 8000.0, 0.0, math.pi / 2, 1e6) is None  # at the horizon


def test_sns001_a_beam_starting_on_a_block_edge_moves_on():
    """A slant beam over open ground skips whole 1 km blocks; an edge 4096.607... - 96.607...
    divides to just under 4 km and used to give the same edge back, for ever."""
    rows = T.Terrain([96.60714223766308, 96.60714223766308, 97.60714223766308, 97.60714223766308,
                      98.60714223766308], [0.0] * 5, "rows")
    r = cast_range(TerrainIndex(rows), 2581.0, 0.0, 1.0078125, 100_000.0)
    assert r == pytest.approx(sphere_range(2581.0, 1.0078125), rel=1e-7)


def make_lrf(terrain, faults=(), **spec):
    return Rangefinder(RangefinderSpec(**spec), 0, TerrainIndex(terrain), list(faults), np.random.default_rng(0))


def test_sns002_noise_grows_with_range_and_readings_are_centimetres():
    lrf = make_lrf(T.flat(0.0), mixed_return_probability=0.0)
    near = np.array([lrf.sample(0.0, 100.0, 0.0, 0.0, 100.0).range_m for _ in range(2000)])
    far = np.array([lrf.sample(0.0, 10_000.0, 0.0, 0.0, 10_000.0).range_m for _ in range(2000)])
    assert np.std(near) == pytest.approx(0.3 + 5e-4 * 100, rel=0.1)
    assert np.std(far) == pytest.approx(0.3 + 5e-4 * 10_000, rel=0.1)
    assert np.allclose(np.round(far * 100.0), far * 100.0)


def test_sns002_a_footprint_straddling_a_step_gives_mixed_returns():
    drop = T.profile([(-1e5, 500.0), (0.0, 500.0), (0.0, 0.0), (1e5, 0.0)])
    lrf = make_lrf(drop, sigma_m=0.01, sigma_per_m=0.0, divergence_rad=0.01, mixed_return_probability=0.5)
    values = np.array([lrf.sample(0.0, 2000.0, 0.0, 0.0, 2000.0).range_m for _ in range(400)])
    near, far = 1500.0, 2000.0
    assert lrf.straddles == 400
    assert np.all((values > near - 1) & (values < far + 1))
    assert np.any(np.abs(values - near) < 1) and np.any(np.abs(values - far) < 1)
    assert np.any((values > near + 5) & (values < far - 5))  # blends


def hit_downrange(h: float, x: float, tilt: float, r: float) -> float:
    return x + RADIUS_M * math.atan2(r * math.sin(tilt), RADIUS_M + h - r * math.cos(tilt))


@given(terrain=profiles(), x=st.floats(0.0, 60_000.0), above=st.floats(5.0, 20_000.0),
       tilt=st.floats(-1.2, 1.2), divergence=st.floats(1e-4, 0.02))
def test_sns002_edge_casts_are_skipped_only_where_both_edges_meet_the_same_straight_ground(
        terrain, x, above, tilt, divergence):
    """The straddle check's shortcut: when it skips the edge casts, casting them would have
    found both edges on the centre's own piece of ground (so no step to straddle)."""
    lrf = make_lrf(terrain, divergence_rad=divergence)
    h = terrain.elevation(x) + above
    r = cast_range(lrf.index, h, x, tilt, 100_000.0)
    assume(r is not None)
    if lrf._footprint_on_one_segment(h, x, tilt, r, 0.5 * divergence):
        piece = bisect.bisect_right(terrain.xs, hit_downrange(h, x, tilt, r))
        for edge in (tilt - 0.5 * divergence, tilt + 0.5 * divergence):
            r_edge = cast_range(lrf.index, h, x, edge, 200_000.0)
            assert r_edge is not None and bisect.bisect_right(terrain.xs, hit_downrange(h, x, edge, r_edge)) == piece


def test_sns002_the_shortcut_is_taken_over_plain_ground_and_not_at_a_rim():
    drop = T.profile([(-1e5, 500.0), (0.0, 500.0), (0.0, 0.0), (1e5, 0.0)])
    lrf = make_lrf(drop, divergence_rad=1e-3)
    assert lrf._footprint_on_one_segment(2000.0, 5000.0, 0.01, 2000.0, 5e-4)  # flat floor, far from the rim
    assert not lrf._footprint_on_one_segment(2000.0, 0.5, 0.0, 2000.0, 5e-4)  # the rim under the footprint
    assert not lrf._footprint_on_one_segment(2000.0, -500.0, 0.3, 2100.0, 5e-4)  # the beam crosses the rim


def fault(**table):
    return F.parse(table, "test")


def test_sns003_each_fault_does_what_it_says():
    flat = T.flat(0.0)

    def run(f, t=10.0, hat=1000.0, n=200):
        lrf = make_lrf(flat, [f], sigma_m=0.01, sigma_per_m=0.0, mixed_return_probability=0.0)
        return [lrf.sample(t + 0.1 * k, hat, 0.0, 0.0, hat) for k in range(n)]

    assert all(s is None for s in run(fault(kind="dead", sensor="primary")))
    late = fault(kind="late_valid", sensor="primary", valid_below_m=900.0)
    assert not any(s.valid for s in run(late, hat=1000.0)) and all(s.valid for s in run(late, hat=800.0))
    stuck = run(fault(kind="stuck", sensor="primary"))
    assert len({s.range_m for s in stuck}) == 1
    spikes = run(fault(kind="spikes", sensor="primary", probability=0.5, magnitude_m=300.0), n=400)
    big = sum(abs(s.range_m - 1000.0) > 250 for s in spikes)
    assert 140 < big < 260
    drift = run(fault(kind="bias_drift", sensor="primary", rate_mps=2.0, start_s=10.0), n=11)
    assert drift[-1].range_m - drift[0].range_m == pytest.approx(2.0, abs=0.1)
    drops = run(fault(kind="dropouts", sensor="primary", probability=0.3), n=1000)
    assert 230 < sum(s is None for s in drops) < 370
    noisy = run(fault(kind="noisy", sensor="primary", sigma_fraction=0.05), n=1000)
    assert np.std([s.range_m for s in noisy]) == pytest.approx(50.0, rel=0.15)
    assert all(s.sigma_m < 1.0 for s in noisy)  # the unit does not know it is noisy
    window = run(fault(kind="dead", sensor="primary", start_s=0.0, end_s=5.0))
    assert all(s is not None for s in window)  # outside the window: healthy


@pytest.mark.parametrize("table, words", [
    ({"kind": "melted", "sensor": "primary"}, "kind must be one of"),
    ({"kind": "stuck", "sensor": "imu"}, "sensor must be"),
    ({"kind": "spikes", "sensor": "primary", "probability": 0.1}, "missing magnitude_m"),
    ({"kind": "spikes", "sensor": "primary", "probability": 2, "magnitude_m": 1}, r"\[0, 1\]"),
    ({"kind": "stuck", "sensor": "primary", "start_s": 5, "end_s": 1}, "after start_s"),
    ({"kind": "stuck", "sensor": "primary", "colour": 1}, "unknown key"),
    ({"kind": "stuck", "sensor": "primary", "start_s": "soon"}, "must be a number"),
])
def test_sns004_bad_fault_tables_are_refused(table, words):
    with pytest.raises(F.FaultError, match=words):
        F.parse(table, "[[faults]] 1")


def test_sns005_imu_noise_saturation_and_quantisation():
    spec = ImuSpec(bias_sigma_mps2=0.0, bias_walk_mps2_per_rts=0.0, gyro_bias_sigma_radps=0.0,
                   gyro_bias_walk_radps_per_rts=0.0)
    imu = ImuModel(spec, np.random.default_rng(1), 0.01)
    lsb = STANDARD_GRAVITY_MPS2 / 2048.0
    gyro_lsb = math.radians(1.0 / 16.4)
    samples = [imu.sample(0.0, 3.0, 0.0, 0.0, 0.02) for _ in range(5000)]
    ups = np.array([s.accel_z_mps2 for s in samples])  # upright: body z is up
    assert np.allclose(np.round(ups / lsb), ups / lsb)
    assert np.mean(ups) == pytest.approx(3.0, abs=5e-4)
    assert np.std(ups) == pytest.approx(math.hypot(7e-4 / math.sqrt(0.01), lsb / math.sqrt(12)), rel=0.1)
    rates = np.array([s.gyro_y_radps for s in samples])
    assert np.allclose(np.round(rates / gyro_lsb), rates / gyro_lsb)
    assert np.mean(rates) == pytest.approx(0.02, abs=2e-5)
    assert np.std(rates) == pytest.approx(math.hypot(4.9e-5 / math.sqrt(0.01), gyro_lsb / math.sqrt(12)), rel=0.1)
    hard = imu.sample(0.0, 500.0, 0.0, 0.0, 100.0)  # touchdown shock: 51 g, and a 5,700 dps spin
    assert hard.accel_z_mps2 == pytest.approx(16 * STANDARD_GRAVITY_MPS2, abs=lsb)
    assert hard.gyro_y_radps == pytest.approx(math.radians(2000.0), abs=gyro_lsb)
    assert (hard.accel_y_mps2, hard.gyro_x_radps, hard.gyro_z_radps) == (0.0, 0.0, 0.0)  # the world is 2-D


@given(pitch=st.floats(-1.6, 1.6), up=st.floats(-20, 20), down=st.floats(-20, 20))
def test_sns005_body_axes_turn_back_to_the_local_frame_with_the_flights_attitude(pitch, up, down):
    """The simulator's body axes (C truth kernel) and the flight's rotation back to the local
    frame (flight/estimation/attitude.py) are two implementations of one convention."""
    spec = ImuSpec(noise_density_mps2_per_rthz=0.0, bias_sigma_mps2=0.0, bias_walk_mps2_per_rts=0.0)
    s = ImuModel(spec, np.random.default_rng(0), 0.01).sample(0.0, up, down, pitch, 0.0)
    lsb = STANDARD_GRAVITY_MPS2 / 2048.0
    f_up, f_down = Attitude(pitch, 0.0).to_local(s.accel_x_mps2, s.accel_z_mps2)
    assert f_up == pytest.approx(up, abs=lsb)
    assert f_down == pytest.approx(down, abs=lsb)


def test_sns005_imu_bias_walks_at_its_instability_and_jumps_by_what_the_fault_says():
    spec = ImuSpec(noise_density_mps2_per_rthz=0.0, bias_sigma_mps2=0.0, bias_walk_mps2_per_rts=0.1)
    lsb = STANDARD_GRAVITY_MPS2 / 2048.0
    finals = []
    for seed in range(300):
        imu = ImuModel(spec, np.random.default_rng(seed), 0.01)
        for _ in range(1000):  # 10 s
            s = imu.sample(0.0, 1.62, 0.0, 0.0, 0.0)
        bias_up = imu.bias_mps2[0]
        assert s.accel_z_mps2 == pytest.approx(1.62 + bias_up, abs=lsb / 2 + 1e-12)
        finals.append(bias_up)
    assert np.std(finals) == pytest.approx(0.1 * math.sqrt(10.0), rel=0.15)  # sigma * sqrt(t)
    calm = ImuSpec(bias_sigma_mps2=0.0, bias_walk_mps2_per_rts=0.0)
    a, b = ImuModel(calm, np.random.default_rng(7), 0.01), ImuModel(calm, np.random.default_rng(7), 0.01)
    b.jump_bias(0.05, 0.0)
    diffs = [b.sample(0.0, 1.62, 0.0, 0.0, 0.0).accel_z_mps2 - a.sample(0.0, 1.62, 0.0, 0.0, 0.0).accel_z_mps2
             for _ in range(500)]
    assert np.mean(diffs) == pytest.approx(0.05, abs=lsb / 4) and max(abs(d - 0.05) for d in diffs) <= lsb
