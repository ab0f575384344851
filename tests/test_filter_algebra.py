"""ALT-001..003: the kernel's Kalman algebra, its covariance and its input checks."""

import math

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter
from flight._altfilter import ffi, lib
from hypothesis import given
from hypothesis import strategies as st

from flight.estimation.altitude_filter import AltitudeFilter, Policy, Status, default_config

NO_BOUNDS = {"min_variance": (1e-300,) * 4, "max_variance": (1e300,) * 4}

predict_inputs = st.tuples(
    st.floats(1e-3, 0.5),  # dt
    st.floats(-20.0, 20.0),  # vertical specific force
    st.floats(0.0, 2000.0),  # horizontal speed
)
update_inputs = st.tuples(
    st.floats(0.0, 20000.0),  # range
    st.floats(0.5, 1.0),  # cos tilt
    st.floats(0.1, 100.0),  # sigma
)
steps = st.lists(st.tuples(predict_inputs, st.none() | update_inputs), min_size=1, max_size=200)


def process_model(filt: AltitudeFilter, dt: float, force: float, vx: float):
    F = ffi.new("double[16]")
    Q = ffi.new("double[16]")
    u = ffi.new("double[4]")
    assert lib.alt_process_model(filt.handle, dt, force, vx, F, Q, u) == 0
    return np.array(list(F)).reshape(4, 4), np.array(list(Q)).reshape(4, 4), np.array(list(u)).reshape(4, 1)


@given(steps)
def test_alt001_ungated_filter_equals_filterpy(sequence):
    """ALT-001: with gating off, predict/update equal FilterPy on the same F, Q, H, R."""
    x0 = (5000.0, -30.0, 0.001, 100.0)
    var0 = (400.0, 2.0, 1e-4, 900.0)
    ours = AltitudeFilter(Policy.NONE, x0=x0, var0=var0, **NO_BOUNDS)
    ref = KalmanFilter(dim_x=4, dim_z=1)
    ref.x = np.array(x0, dtype=float).reshape(4, 1)
    ref.P = np.diag(var0).astype(float)
    H = np.array([[1.0, 0.0, 0.0, -1.0]])
    for (dt, force, vx), update in sequence:
        F, Q, u = process_model(ours, dt, force, vx)
        ref.predict(u=u, B=np.eye(4), F=F, Q=Q)
        assert ours.predict(dt, force, vx)
        if update is not None:
            rng, cos_tilt, sigma = update
            ref.update(np.array([[rng * cos_tilt]]), R=np.array([[(sigma * cos_tilt) ** 2]]), H=H)
            assert ours.update_range(rng, cos_tilt, sigma) == Status.ACCEPTED
        P = np.array(ours.P)
        scale = np.sqrt(np.diag(ref.P))
        # relative to the value or to its own uncertainty, whichever is larger
        assert np.all(np.abs(np.array(ours.x) - ref.x.ravel()) <= 1e-9 * (np.abs(ref.x.ravel()) + scale))
        assert np.all(np.abs(P - ref.P) <= 1e-9 * np.outer(scale, scale))


def test_alt001_process_noise_is_the_documented_one():
    """ALT-001: Q is the README's: white acceleration, bias walk, PX4-style terrain growth."""
    cfg = default_config("terrain-aware")
    filt = AltitudeFilter("terrain-aware", x0=(1000.0, 0.0, 0.0, 0.0))
    dt, vx = 0.1, 1500.0
    F, Q, u = process_model(filt, dt, 1.62, vx)
    qa = cfg["accel_noise_psd"]
    assert Q[0, 0] == qa * dt**3 / 3 and Q[1, 1] == qa * dt and Q[0, 1] == Q[1, 0] == qa * dt**2 / 2
    assert math.isclose(Q[3, 3], (dt * cfg["terrain_noise_mps"]) ** 2 + (dt * cfg["terrain_gradient"] * vx) ** 2)
    assert math.isclose(Q[2, 2], cfg["bias_walk_psd"] * dt)
    # curvature relief: at 1500 m/s the control acceleration is -g + vx^2/(R+h)
    assert math.isclose(u[1, 0], dt * (vx**2 / (1737.4e3 + 1000.0)), rel_tol=1e-12)
    assert F[0, 1] == dt and F[0, 2] == -0.5 * dt * dt and F[1, 2] == -dt


@given(st.sampled_from(list(Policy)), steps)
def test_alt002_covariance_stays_symmetric_positive_definite(policy, sequence):
    """ALT-002: for every sequence of valid inputs and every policy, P stays SPD and bounded."""
    filt = AltitudeFilter(policy, x0=(5000.0, -30.0, 0.0, 0.0))
    cfg = filt.config()
    for (dt, force, vx), update in sequence:
        assert filt.predict(dt, force, vx)
        if update is not None:
            assert filt.update_range(*update) != Status.INVALID_INPUT
        P = np.array(filt.P)
        assert np.array_equal(P, P.T)
        np.linalg.cholesky(P)  # raises if not positive definite
        assert np.all(np.diag(P) <= np.array(cfg["max_variance"]))
        assert np.all(np.isfinite(filt.x))


bad_floats = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def invalid_call(draw):
    which = draw(st.sampled_from(["predict", "update", "step"]))
    dt, force, vx = 0.01, 1.62, 100.0
    rng, cos_tilt, sigma, sensor = 1000.0, 1.0, 1.0, 0
    if which in ("predict", "step") and draw(st.booleans()):
        field = draw(st.sampled_from(["dt", "force", "vx"]))
        bad = draw(bad_floats | {
            "dt": st.sampled_from([0.0, -0.01, 1.5, 1e9]),
            "force": st.sampled_from([1e4, -1e4]),
            "vx": st.sampled_from([-1.0, 1e6]),
        }[field])
        dt, force, vx = {"dt": (bad, force, vx), "force": (dt, bad, vx), "vx": (dt, force, bad)}[field]
    else:
        field = draw(st.sampled_from(["range", "cos", "sigma", "sensor"]))
        bad = draw(bad_floats | {
            "range": st.sampled_from([-0.01, -5000.0, 1e6]),
            "cos": st.sampled_from([0.0, -0.5, 1.0000001, 2.0]),
            "sigma": st.sampled_from([0.0, -1.0, 1e9]),
            "sensor": st.sampled_from([-1, lib.ALT_MAX_SENSORS, 99]),
        }[field]) if field != "sensor" else draw(st.sampled_from([-1, lib.ALT_MAX_SENSORS, 99]))
        if field == "range":
            rng = bad
        elif field == "cos":
            cos_tilt = bad
        elif field == "sigma":
            sigma = bad
        else:
            sensor = bad
        if which == "predict":
            which = "update"
    return which, (dt, force, vx), (rng, cos_tilt, sigma, sensor)


@given(st.sampled_from(list(Policy)), st.integers(0, 40), invalid_call())
def test_alt003_invalid_input_changes_nothing(policy, warmup, call):
    """ALT-003: NaN/Inf/out-of-range input -> INVALID_INPUT and the filter bit-identical."""
    filt = AltitudeFilter(policy, x0=(2000.0, -20.0, 0.0, 0.0))
    for k in range(warmup):
        filt.step(0.01, 1.6, 100.0, 2000.0 - 0.2 * k if k % 10 == 0 else None, 1.0, 1.3)
    before = filt.snapshot()
    which, (dt, force, vx), (rng, cos_tilt, sigma, sensor) = call
    if which == "predict":
        assert filt.predict(dt, force, vx) is False
    elif which == "update":
        assert filt.update_range(rng, cos_tilt, sigma, sensor) == Status.INVALID_INPUT
    else:
        assert filt.step(dt, force, vx, rng, cos_tilt, sigma, sensor) == Status.INVALID_INPUT
    assert filt.snapshot() == before


def test_alt003_bad_configuration_is_refused_with_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="unknown filter parameter"):
        AltitudeFilter(gate_sgima=3.0)
    with pytest.raises(ValueError, match="refused"):
        AltitudeFilter(step_candidates=1)
    with pytest.raises(ValueError, match="refused"):
        AltitudeFilter(accel_noise_psd=math.nan)
    with pytest.raises(ValueError, match="unknown estimator policy"):
        AltitudeFilter("kalman-ish")


@given(gap=st.floats(1e-3, 3600.0), force=st.floats(-10.0, 10.0), sigma=st.floats(0.0, 5.0))
def test_alt012_a_gap_is_bridged_with_the_held_force_and_at_least_its_uncertainty(gap, force, sigma):
    """ALT-012: alt_predict_gap moves the mean as the held force would (one exact step of the
    constant-acceleration model) and widens the height's sigma by at least the gap's own term,
    1/2 sigma_a T^2, over the same gap with no force error; any length up to an hour."""
    start = dict(x0=(5000.0, -30.0, 0.0, 100.0), var0=(100.0, 1.0, 1e-8, 100.0), **NO_BOUNDS)
    bridged, plain = AltitudeFilter("none", **start), AltitudeFilter("none", **start)
    assert bridged.predict_gap(gap, force, 0.0, sigma) and plain.predict_gap(gap, force, 0.0, 0.0)
    g = default_config("none")["gravity_mps2"]
    assert bridged.x[0] == pytest.approx(5000.0 - 30.0 * gap + 0.5 * (force - g) * gap * gap, rel=1e-9, abs=1e-6)
    assert bridged.x[1] == pytest.approx(-30.0 + (force - g) * gap, rel=1e-9, abs=1e-9)
    assert bridged.x == plain.x
    assert bridged.P[0][0] - plain.P[0][0] >= 0.999 * (0.5 * sigma * gap * gap) ** 2 - 1e-12 * plain.P[0][0]


def test_alt012_a_bad_gap_changes_nothing():
    f = AltitudeFilter("terrain-aware", x0=(5000.0, -30.0, 0.0, 100.0))
    before = f.snapshot()
    for args in ((3600.5, 0.0, 0.0, 0.1), (0.0, 0.0, 0.0, 0.1), (1.0, math.nan, 0.0, 0.1), (1.0, 0.0, 0.0, -0.1),
                 (1.0, 0.0, 0.0, math.inf), (math.inf, 0.0, 0.0, 0.1)):
        assert not f.predict_gap(*args)
    assert f.snapshot() == before
