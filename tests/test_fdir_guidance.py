"""FDIR-001..004 and GDN-001..005."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER
from flight.devices.simulated import FeedAltimeter, FeedImu, RecordingEngine
from flight.estimation.altitude_filter import AltitudeFilter, Estimate
from flight.estimation.task import EstimationTask
from flight.fdir.monitor import FdirConfig, FdirTask
from flight.fdir.sensor_health import Health, HealthConfig, Observation, SensorHealth
from flight.guidance.descent import POWERED, GuidanceConfig, GuidanceTask, NavState, Phase, command
from flight.guidance.safe import EngineGuard


class Events:
    def __init__(self):
        self.log = []

    def emit(self, name, *args):
        self.log.append((name, args))


@given(st.lists(st.sampled_from(list(Observation)), max_size=300))
def test_fdir001_no_input_sequence_leaves_a_sensor_failed_once_it_behaves(history):
    """FDIR-001: whatever happened before, requalify_after + 1 good observations end NOMINAL."""
    h = SensorHealth(HealthConfig())
    for obs in history:
        h.update(obs)
    for _ in range(h.config.requalify_after + 1):
        h.update(Observation.GOOD)
    assert h.state == Health.NOMINAL


def test_fdir001_the_path_through_every_state():
    h = SensorHealth(HealthConfig(suspect_after=2, fail_after=4, requalify_after=2))
    seen = [h.update(o) for o in [Observation.BAD] * 4 + [Observation.GOOD] * 2]
    assert [s for s in seen if s is not None] == [Health.SUSPECT, Health.FAILED, Health.REQUALIFYING, Health.NOMINAL]
    assert h.update(Observation.PENDING) is None


class FakeFilter:
    """Only what FDIR touches: re-opening sensors."""

    def __init__(self):
        self.reopened = []
        self.height_above_terrain_sigma_m = 1.0

    def reopen_sensor(self, sensor_id):
        self.reopened.append(sensor_id)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def rig(hat=2000.0, sigma=5.0, touched=lambda: False, **cfg):
    clock, events = Clock(), Events()
    est = EstimationTask(AltitudeFilter(), FeedImu(), [FeedAltimeter(PRIMARY_ALTIMETER), FeedAltimeter(SHORT_RANGE_ALTIMETER)],
                         clock, events)
    est.filter = FakeFilter()
    fdir = FdirTask(est, events, clock, FdirConfig(**cfg), touched_down=touched)

    def at(t, hat_=hat, sigma_=sigma, v=-1.0):
        clock.t = est.output.imu_last_s = t  # the IMU is talking
        est.output.estimate = Estimate(hat_, v, 0.0, 0.0, hat_, sigma_, t)
        fdir.run(0)

    return est, fdir, events, at


def test_fdir002_zero_altitude_trap_detected_and_altimeters_reopened():
    """FDIR-002: HAT ~ 0 for 15 s with no touchdown (the M1 trap) -> event, re-open."""
    est, fdir, events, at = rig()
    for k in range(200):
        at(k * 0.1, hat_=0.3, sigma_=0.5)
    assert ("ZERO_ALTITUDE_TRAP", (0.3,)) in events.log
    assert est.filter.reopened == [PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER]
    assert fdir.summary.zero_trap_events == 1


def test_fdir002_no_trap_after_touchdown_or_when_disabled():
    _, _, events, at = rig(touched=lambda: True)
    for k in range(300):
        at(k * 0.1, hat_=0.0)
    _, _, events2, at2 = rig(zero_trap_enabled=False)
    for k in range(300):
        at2(k * 0.1, hat_=0.0)
    assert not [e for e in events.log + events2.log if e[0] == "ZERO_ALTITUDE_TRAP"]


def test_fdir003_missing_altimetry_raised_when_expected_only():
    """FDIR-003: the primary silent above 5 km is fine; below it, missing (M2, IM-1)."""
    _, fdir, events, at = rig()
    at(0.0, hat_=9000.0)
    at(3.0, hat_=9000.0)
    assert not fdir.summary.primary_missing
    at(6.0, hat_=3000.0)
    at(8.0, hat_=3000.0)
    assert fdir.summary.primary_missing and fdir.summary.altimetry_missing
    assert ("ALTIMETER_MISSING", (PRIMARY_ALTIMETER,)) in events.log


def test_fdir004_two_altimeters_that_disagree_are_reported():
    est, fdir, events, at = rig(hat=100.0, sigma=0.5)
    from flight.estimation.altitude_filter import Status
    from flight.estimation.task import RangeOutcome

    for k in range(6):
        t = k * 0.1
        est.output.outcomes += [RangeOutcome(PRIMARY_ALTIMETER, t, Status.ACCEPTED, 100.0, 0.3, height_m=100.0),
                                RangeOutcome(SHORT_RANGE_ALTIMETER, t, Status.ACCEPTED, 140.0, 0.05, height_m=140.0)]
        at(t, hat_=100.0, sigma_=0.5)
    assert fdir.summary.altimeters_disagree
    assert any(e[0] == "ALTIMETERS_DISAGREE" for e in events.log)


nav_states = st.builds(
    NavState,
    hat_m=st.floats(-10, 20000), hat_sigma_m=st.floats(0.01, 500), vertical_speed_mps=st.floats(-150, 50),
    horizontal_speed_mps=st.floats(-1800, 1800), altitude_m=st.floats(-10, 20000), altimetry_missing=st.booleans(),
)


@given(st.sampled_from(list(Phase)), nav_states, st.floats(340, 1000))
def test_gdn001_throttle_and_pitch_within_limits(phase, nav, mass):
    """GDN-001: powered phases command min_throttle..1; others 0; pitch inside its limit."""
    c = GuidanceConfig()
    cmd = command(phase, nav, mass, c)
    if phase in POWERED:
        assert c.min_throttle <= cmd.throttle <= 1.0
    else:
        assert cmd.throttle == 0.0
    assert abs(cmd.pitch_rad) <= c.max_pitch_rad
    assert math.isclose(cmd.pessimistic_hat_m, nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m)


@given(nav_states)
def test_gdn002_approach_never_faster_than_its_pessimistic_profile(nav):
    """GDN-002: the target speed follows the pessimistic height; while blind (altimetry
    missing) it never drops below the blind speed, so a pessimistic guess cannot turn into
    a hover that burns the propellant; terminal descent is <= 1 m/s."""
    c = GuidanceConfig()
    cmd = command(Phase.APPROACH, nav, 600.0, c)
    h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
    profile = min(c.max_descent_speed_mps,
                  math.sqrt(2 * c.approach_decel_mps2 * max(h_p - c.terminal_height_m, 0.0)) + c.terminal_speed_mps)
    speed = -cmd.target_vertical_speed_mps
    if nav.altimetry_missing:
        assert speed == pytest.approx(max(profile, c.blind_descent_speed_mps))
        trusting = GuidanceConfig(blind_mode=False)  # M1's logic: the estimate alone
        assert -command(Phase.APPROACH, nav, 600.0, trusting).target_vertical_speed_mps == pytest.approx(profile)
    else:
        assert speed == pytest.approx(profile)
    assert -command(Phase.TERMINAL, nav, 600.0, c).target_vertical_speed_mps <= 1.0


def guidance_rig():
    clock = Clock()
    est = EstimationTask(AltitudeFilter(), FeedImu(), [FeedAltimeter(0)], clock, Events())
    est.output.estimate = Estimate(500.0, -10.0, 0.0, 0.0, 500.0, 2.0, 0.0)
    fdir = FdirTask(est, Events(), clock)
    engine = RecordingEngine()
    events = Events()
    c = GuidanceConfig()
    guard = EngineGuard(engine, events, clock, lambda: (0.0, 0.0, 0.0, True), c.arrest_law(), c.max_pitch_rad,
                        c.full_flow_kg_per_s, c.dry_mass_kg)
    return est, GuidanceTask(est, fdir, guard, events, c), engine, events


def test_gdn003_phases_and_out_of_phase_commands():
    est, g, engine, events = guidance_rig()
    assert g.start_descent() is not None and g.abort() is not None  # not armed yet
    assert g.arm() is None and g.arm() is not None
    assert g.start_descent() is None and g.phase == Phase.BRAKING
    g.run(0)
    assert g.phase == Phase.APPROACH  # no horizontal speed left to brake
    assert g.abort() is None and g.phase == Phase.ABORT_HOLD
    assert g.start_descent() is None and g.phase == Phase.APPROACH
    est.output.estimate = Estimate(10.0, -1.0, 0.0, 0.0, 10.0, 1.0, 0.0)
    g.run(0)
    assert g.phase == Phase.TERMINAL
    est.output.estimate = Estimate(0.5, -0.8, 0.0, 0.0, 0.5, 0.3, 0.0)
    est.output.peak_specific_force_mps2 = 15.0  # the legs hit the ground
    g.run(0)
    assert g.phase == Phase.TOUCHDOWN and engine.throttle == 0.0  # engine cut at touchdown
    g.run(0)
    assert g.phase == Phase.SAFE and engine.throttle == 0.0
    assert [a[0] for n, a in events.log if n == "PHASE"] == [1, 2, 3, 7, 3, 4, 5, 6]


def test_gdn004_pitch_rate_is_limited():
    est, g, engine, _ = guidance_rig()
    est.vx = 1500.0
    est.output.estimate = Estimate(8000.0, 0.0, 0.0, 0.0, 8000.0, 2.0, 0.0)  # above the high gate
    g.arm()
    g.start_descent()
    pitches = []
    for _ in range(30):
        g.run(0)
        pitches.append(engine.pitch_rad)
    steps = [abs(b - a) for a, b in zip([0.0] + pitches, pitches)]
    assert max(steps) <= g.config.pitch_rate_limit_radps * g.period_s + 1e-12
    assert pitches[-1] > 1.0  # it did turn toward braking


def test_gdn005_propellant_low_commits_a_hold_to_landing():
    _, g, _, events = guidance_rig()
    g.arm()
    g.start_descent()
    g.abort()
    g.propellant_used_kg = g.config.initial_mass_kg - g.config.dry_mass_kg - 1.0
    g.run(0)
    assert ("PROPELLANT_LOW", ) == tuple(e[0] for e in events.log if e[0] == "PROPELLANT_LOW")
    assert g.phase == Phase.TERMINAL


def test_gdn006_engine_push_is_not_a_touchdown_shock():
    """GDN-006: near the ground, full thrust at a light mass (6.6 m/s^2 at 380 kg) must not
    read as touchdown; a shock beyond the commanded push does."""
    est, g, engine, _ = guidance_rig()
    est.output.estimate = Estimate(2.0, -0.8, 0.0, 0.0, 2.0, 0.1, 0.0)
    g.config.initial_mass_kg = 380.0
    g.arm()
    g.start_descent()
    g._enter(Phase.TERMINAL)
    g.throttle = 1.0
    est.output.peak_specific_force_mps2 = 2500.0 / 380.0 + 1.0
    g.run(0)
    assert g.phase == Phase.TERMINAL
    est.output.peak_specific_force_mps2 = 80.0  # 0.8 m/s stopped in 10 ms
    g.run(0)
    assert g.phase == Phase.TOUCHDOWN and engine.throttle == 0.0


def test_gdn007_terminal_entered_on_a_wrong_estimate_is_left():
    est, g, _, _events = guidance_rig()
    g.arm()
    g.start_descent()
    g._enter(Phase.TERMINAL)
    est.output.estimate = Estimate(180.0, -10.0, 0.0, 0.0, 180.0, 0.3, 0.0)  # the short-range just acquired
    g.run(0)
    assert g.phase == Phase.APPROACH and g.last.target_vertical_speed_mps < -5.0


def test_gdn008_m1_baseline_gets_m1s_whole_altitude_trust_policy():
    from flight import wiring

    m1 = wiring.build({"executive": {"clock": "lockstep"}, "estimator": {"policy": "m1-baseline"}})
    ours = wiring.build({"executive": {"clock": "lockstep"}})
    assert not m1.fdir.config.zero_trap_enabled and ours.fdir.config.zero_trap_enabled
    assert not m1.guidance.config.blind_mode and ours.guidance.config.blind_mode
    assert m1.guidance.config.pessimism_sigma == 0.0 and ours.guidance.config.pessimism_sigma == 3.0


@given(to_go=st.floats(-3000.0, 3000.0), v0=st.floats(-80.0, 80.0), v_t=st.floats(-2.0, 2.0),
       t_go=st.floats(10.0, 150.0))
def test_gdn013_explicit_guidance_arrives_where_and_as_fast_as_it_was_asked(to_go, v0, v_t, t_go):
    """GDN-013: flying E-guidance's acceleration, re-evaluated every 0.1 s as the time to go
    counts down (as the approach does), arrives at the target distance with the target speed.
    Checked by integrating the motion, not by re-deriving the formula."""
    from flight.guidance.descent import polynomial_acceleration

    dt, x, v, t, a, n = 0.01, 0.0, v0, t_go, 0.0, 0
    while t > 1e-9:
        if n % 10 == 0 and t > 0.2:  # at 10 Hz, the last 0.2 s on the last command
            a = polynomial_acceleration(to_go - x, v, v_t, t)
        step = min(dt, t)
        x += v * step + 0.5 * a * step * step
        v += a * step
        t -= step
        n += 1
    assert x == pytest.approx(to_go, abs=0.5 + 0.002 * abs(to_go - v0 * t_go))
    assert v == pytest.approx(v_t, abs=0.1)


@given(hat=st.floats(30.0, 2500.0), vx=st.floats(-5.0, 90.0), vz=st.floats(-60.0, 5.0),
       d=st.floats(-200.0, 4000.0), t_go=st.floats(6.0, 150.0))
def test_gdn013_approach_pitch_stays_within_its_limits(hat, vx, vz, d, t_go):
    """GDN-013: the approach's thrust pitch never exceeds 0.7 rad, nor 0.45 rad below 250 m
    (where the short-range altimeter's footprint must stay under the vehicle)."""
    c = GuidanceConfig(site_downrange_m=10_000.0)
    nav = NavState(hat_m=hat, hat_sigma_m=1.0, vertical_speed_mps=vz, horizontal_speed_mps=vx,
                   altitude_m=hat, altimetry_missing=False, downrange_m=10_000.0 - d, site_height_m=hat)
    cmd = command(Phase.APPROACH, nav, 500.0, c, t_go)
    limit = c.max_low_pitch_rad if hat - c.pessimism_sigma * 1.0 < c.low_pitch_below_hat_m else c.max_approach_pitch_rad
    assert abs(cmd.pitch_rad) <= limit + 1e-9
    assert c.min_throttle <= cmd.throttle <= 1.0
