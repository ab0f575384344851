"""EST-001..004: the estimation task around the kernel: gravity, the turning local frame,
tilted beams over a curved Moon, and the short-range altimeter's authority near the ground."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    ImuSample,
    RangeSample,
)
from flight.devices.simulated import FeedAltimeter, FeedImu
from flight.estimation.altitude_filter import AltitudeFilter, Status
from flight.estimation.task import NOT_FUSED, EstimationTask, SlantMode, SlantModel
from flight.fdir.monitor import FdirTask
from ground.sim import terrain as T
from ground.sim.dynamics import PointMass
from ground.sim.moon import circular_speed_mps
from ground.sim.sensors import TerrainIndex, cast_range
from ground.sim.vehicle import Vehicle


class Events:
    def __init__(self):
        self.emitted = []

    def emit(self, name, *args):
        self.emitted.append((name, args))


class Clock:
    """The executive's flight time, moved by the test."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def coast(altitude, vx, vz, seconds, task_kwargs=None):
    """Truth from the simulator's dynamics (no thrust); the task sees perfect IMU samples."""
    body = PointMass(Vehicle(), altitude, vx, vz)
    imu = FeedImu()
    filt = AltitudeFilter("terrain-aware", x0=(altitude, vz, 0.0, 0.0), var0=(1.0, 0.01, 1e-8, 1.0))
    clock = Clock()
    task = EstimationTask(filt, imu, [], clock, Events(), horizontal_speed_mps=vx, **(task_kwargs or {}))
    task.run(0)
    for k in range(int(seconds * 100)):
        body.step(0.01, 0.0, 0.0)
        clock.t = (k + 1) * 0.01
        imu.push(ImuSample(clock.t, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
        task.run(0)
    return body.local(), task


def test_est001_inverse_square_gravity_and_curvature_keep_a_coasting_orbit_level():
    """EST-001: with no altimeter, 200 s of a 15 km circular orbit stays within 2 m (a
    constant 1.62 m/s^2 would put it 2.3 km low)."""
    truth, task = coast(15_000.0, circular_speed_mps(15_000.0), 0.0, 200.0)
    est = task.output.estimate
    assert abs(est.altitude_m - truth.altitude_m) < 2.0
    assert abs(est.vertical_velocity_mps - truth.vertical_speed_mps) < 0.05


def test_est002_transport_rate_keeps_the_horizontal_speed_true_while_descending():
    """EST-002: the local horizontal turns under a moving vehicle: vx' = f_x - vx vz/(R+h)."""
    truth, task = coast(15_000.0, 1200.0, -40.0, 150.0)
    assert abs(task.vx - truth.horizontal_speed_mps) < 0.02
    _, naive = coast(15_000.0, 1200.0, -40.0, 150.0, {"gm_m3ps2": 0.0})
    assert abs(naive.output.estimate.altitude_m - truth.altitude_m) > 100.0  # the fix matters


@settings(max_examples=30)
@given(tilt=st.floats(0.0, 1.3), hat=st.floats(500.0, 8000.0))
def test_est003_tilted_ranges_over_a_curved_moon_measure_the_height(tilt, hat):
    """EST-003: a tilted beam over a smooth Moon is corrected for the ground falling away,
    so it is accepted and agrees with the true height to well inside its sigma."""
    r = cast_range(TerrainIndex(T.flat(0.0)), hat, 0.0, tilt, 1e6)
    sigma = 0.3 + 5e-4 * r
    filt = AltitudeFilter("terrain-aware", x0=(hat, 0.0, 0.0, 0.0), var0=(1.0, 0.01, 1e-8, 1e-4))
    alt = FeedAltimeter(PRIMARY_ALTIMETER)
    # the geometry of a tilted beam taken as the height below (VERTICAL, the M1/Apollo use);
    # ours only takes it where the footprint is the ground below (tests/test_slant.py)
    task = EstimationTask(filt, FeedImu(), [alt], Clock(), Events(), slant=SlantModel(SlantMode.VERTICAL))
    task.attitude.handover(tilt, 0.0)
    task.output.estimate = filt.estimate()
    alt.push(RangeSample(0.0, r, sigma, True))
    task.run(0)
    (outcome,) = task.drain_outcomes()
    assert outcome.status == Status.ACCEPTED
    assert abs(filt.height_above_terrain_m - hat) < 0.05 * sigma + 0.5


def test_est004_near_the_ground_the_short_range_altimeter_has_the_authority():
    """EST-004: while the short-range altimeter has a sample accepted within 0.2 s, the
    primary is not fused, and FDIR takes that as no verdict (not a fault)."""
    filt = AltitudeFilter("terrain-aware", x0=(100.0, -1.0, 0.0, 0.0), var0=(4.0, 0.01, 1e-8, 4.0))
    primary, short = FeedAltimeter(PRIMARY_ALTIMETER), FeedAltimeter(SHORT_RANGE_ALTIMETER)
    clock = Clock()
    task = EstimationTask(filt, FeedImu(), [primary, short], clock, Events())
    fdir = FdirTask(task, Events(), clock)
    task.output.estimate = filt.estimate()
    primary.push(RangeSample(0.0, 160.0, 0.35, True))  # a km-class unit 60 m off
    short.push(RangeSample(0.0, 100.0, 0.55, True))
    task.run(0)
    fdir.run(0)
    by_id = {o.sensor_id: o for o in fdir.last_outcome.values()}
    assert by_id[SHORT_RANGE_ALTIMETER].status == Status.ACCEPTED
    assert by_id[PRIMARY_ALTIMETER].error == NOT_FUSED and not by_id[PRIMARY_ALTIMETER].fused
    assert filt.height_above_terrain_m == pytest.approx(100.0, abs=1.0)
    assert fdir.sensors[PRIMARY_ALTIMETER].bad_run == 0
    primary.push(RangeSample(0.5, 100.2, 0.35, True))  # short-range silent for 0.5 s: primary fused again
    task.run(0)  # (the IMU's state is current: the test's clock has not moved)
    assert task.drain_outcomes()[0].fused


def test_est004_alone_the_primary_is_always_fused():
    filt = AltitudeFilter("terrain-aware", x0=(100.0, -1.0, 0.0, 0.0))
    primary = FeedAltimeter(PRIMARY_ALTIMETER)
    task = EstimationTask(filt, FeedImu(), [primary], Clock(), Events())
    for k in range(5):
        primary.push(RangeSample(0.1 * k, 100.0 + k * 1e-2, 0.35, True))
    task.run(0)
    assert all(o.fused for o in task.drain_outcomes())
    assert np.isfinite(filt.height_above_terrain_m)
    assert math.isfinite(task.output.estimate.altitude_m)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="known defect, left as measured: while blind, a revisit's frame "
                   "shift reaches the terrain twice (the filter's update carries it by correlation, following adds it "
                   "again). Carrying it once (tried: the followed elevation moved by the filter's own terrain change) "
                   "made the crater walls worse over the 20-seed built-ins: rim-before-site up to 253 m of height "
                   "error against 72 m, 13 runs above 50 m against 6 (flight/estimation/README.md, limits)")
@settings(max_examples=60, deadline=None)
@given(st.floats(-80.0, 80.0), st.floats(1.0, 2500.0))
def test_est013_a_revisit_moves_the_terrain_under_the_vehicle_once(offset, terrain_var):
    """While following (blind), a revisit moves the altitude and the profile's frame with it; the
    terrain the filter holds must end on the profile's ground beneath the vehicle, whatever part
    of the shift the filter's own update already carried (its terrain-altitude correlation): not
    left behind, not shifted twice."""
    from types import SimpleNamespace

    from flight.estimation.profile import Source

    filt = AltitudeFilter("terrain-aware", x0=(3000.0, -10.0, 0.0, 0.0), var0=(50.0**2, 4.0, 1e-6, 50.0**2))
    clock = Clock(10.0)
    task = EstimationTask(filt, FeedImu(), [], clock, Events(), horizontal_speed_mps=50.0, downrange_m=0.0)
    p = task.profile
    for x in range(-500, 3000, 100):
        p.observe(float(x), 0.0, 4.0, 1.0, Source.BEAM)
    filt.reset_terrain(0.0, terrain_var)
    task._follow(0.0, 10.0)  # blind: the ground under the vehicle remembered
    cell = p.lookup(1000.0)
    est = filt.estimate()
    fp = SimpleNamespace(variance_m2=4.0, drop_m=est.altitude_m - cell.elevation_m + offset)
    assert task._revisit(cell, fp, 1000.0) is not None
    task._follow(50.0, 10.1)  # the next tick, 5 m on
    _, under, _ = p.interpolate(50.0)
    assert filt.estimate().terrain_elevation_m == pytest.approx(under, abs=1e-6)
