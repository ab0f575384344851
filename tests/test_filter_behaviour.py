"""ALT-004..008: what the altitude-trust policies do with steps, faults and noise."""

import numpy as np
import pytest
from filter_helpers import filter_for, hat_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from flight.estimation.altitude_filter import AltitudeFilter, Policy, Status
from ground.filter_batch import BatchRunner
from ground.filter_profiles import descent_profile, lrf_sigma_m

STEP_AT_S = 4.0
RUNNER = BatchRunner()


def descent_speed(altitude_m: float) -> float:
    """A plausible descent rate for an altitude: ~1 % of it per second, 1..80 m/s."""
    return -float(np.clip(altitude_m / 100.0, 1.0, 80.0))


def noise_is_an_outlier_after(prof, t0: float, limit: float = 3.5, starts: int = 4) -> bool:
    """Whether the range noise from any of the first `starts` samples after t0 on (the filter
    takes a step in at one of them) has a running mean beyond limit/sqrt(n)."""
    i = prof.range_indices()
    i = i[prof.time_s[i] >= t0]
    z = (prof.range_m[i] - prof.true_hat_m[i]) / lrf_sigma_m(prof.true_hat_m[i])
    for k in range(min(starts, len(z))):
        n = np.arange(1, len(z) - k + 1)
        if np.any(np.abs(np.cumsum(z[k:])) / np.sqrt(n) > limit):
            return True
    return False


@settings(max_examples=150)
@given(
    altitude=st.floats(100.0, 15000.0),
    step=st.floats(50.0, 8000.0),
    down=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_alt004_terrain_step_absorbed_within_one_second(altitude, step, down, seed):
    """ALT-004: a real step of 50 m-8 km, down or up (less than the height above terrain),
    at 100 m-15 km: the height-above-terrain error is back inside 3 sigma within 1 s.

    "Inside 3 sigma" for a noisy estimate: from 1 s after the step on, at least 90 % of the
    samples lie inside 3 sigma and none beyond 5 sigma (a consistent filter without any step
    shows the odd run of 3-sigma samples too; a missed 50 m step is > 6 sigma at every
    altitude, a half-absorbed one > 3 sigma throughout).

    The claim is about the filter, not the dice: a seed whose noise after the step is itself
    beyond 3.5 sigma (the running mean of the normalised range noise since one of the first
    samples after the step, over n samples, farther than 3.5/sqrt(n) from zero) would put any estimator built on those samples
    beyond 3 sigma; hypothesis goes looking for such seeds, so they are set aside."""
    v = descent_speed(altitude)
    hat_at_step = altitude + v * STEP_AT_S
    if not down:
        # up: smaller than the height above terrain, and not flown into within the window
        assume(hat_at_step - step + 3.0 * v > 10.0)
    new_terrain = -step if down else step
    prof = descent_profile(STEP_AT_S + 3.0, altitude, v, terrain_steps=((STEP_AT_S, new_terrain),), seed=seed)
    assume(not noise_is_an_outlier_after(prof, STEP_AT_S))
    out = RUNNER.run(filter_for(prof), **prof.inputs())
    after = (prof.time_s >= STEP_AT_S + 1.0)
    ratio = hat_error(prof, out.hat)[after] / out.hat_sigma[after]
    detail = f"max error/sigma {ratio.max():.2f}; statuses {np.bincount(out.status)}"
    assert np.mean(ratio <= 3.0) >= 0.90, detail
    assert np.all(ratio <= 5.0), detail


def spiked(prof, rng, count):
    ranges = prof.range_m.copy()
    idx = prof.range_indices()[5::4]  # isolated samples: at least 3 good ones between spikes
    chosen = rng.choice(idx, size=min(count, len(idx)), replace=False)
    for i in chosen:
        floor = 20.0 * lrf_sigma_m(ranges[i])
        ranges[i] = max(0.0, ranges[i] + rng.choice([-1, 1]) * rng.uniform(floor, 5000.0))
    return prof.with_ranges(ranges), chosen


@given(altitude=st.floats(150.0, 15000.0), seed=st.integers(0, 2**31), count=st.integers(1, 8))
def test_alt005_single_spikes_never_move_the_estimate(altitude, seed, count):
    """ALT-005: isolated spikes move height above terrain by < 3 sigma, against the same run
    with those samples missing."""
    prof = descent_profile(10.0, altitude, descent_speed(altitude), seed=seed)
    spiky, where = spiked(prof, np.random.default_rng(seed), count)
    valid = prof.valid.copy()
    valid[where] = 0
    missing = prof.with_ranges(valid=valid)
    reference = RUNNER.run(filter_for(missing), **missing.inputs())
    out = RUNNER.run(filter_for(spiky), **spiky.inputs())
    assert np.all(np.abs(out.hat - reference.hat) <= 3.0 * reference.hat_sigma)
    assert np.all(np.isin(out.status[where], [Status.HELD, Status.REJECTED_INCONSISTENT]))


@given(
    altitude=st.floats(100.0, 15000.0),
    seed=st.integers(0, 2**31),
    start=st.floats(1.0, 4.0),
    length=st.floats(0.3, 5.0),
)
def test_alt006_stuck_readings_rejected_and_sensor_requalifies(altitude, seed, start, length):
    """ALT-006: a reading frozen while |v| > 0.5 m/s never moves the estimate by 3 sigma;
    after it clears, the sensor is accepted again within 2 s."""
    prof = descent_profile(start + length + 4.0, altitude, descent_speed(altitude), seed=seed)
    ranges = prof.range_m.copy()
    idx = prof.range_indices()
    frozen = idx[(prof.time_s[idx] >= start) & (prof.time_s[idx] < start + length)]
    assume(len(frozen) >= 2)
    ranges[frozen] = ranges[frozen[0] - 10]  # the last good reading, repeated
    stuck = prof.with_ranges(ranges)
    valid = prof.valid.copy()
    valid[frozen] = 0
    missing = prof.with_ranges(valid=valid)
    reference = RUNNER.run(filter_for(missing), **missing.inputs())
    out = RUNNER.run(filter_for(stuck), **stuck.inputs())
    assert np.all(out.status[frozen] == Status.REJECTED_STUCK)
    assert np.all(np.abs(out.hat - reference.hat) <= 3.0 * reference.hat_sigma)
    after = idx[prof.time_s[idx] >= start + length]
    first_ok = after[out.status[after] == Status.ACCEPTED][0]
    assert prof.time_s[first_ok] - (start + length) <= 2.0


@settings(max_examples=40)
@given(seed=st.integers(0, 2**31), cliff=st.floats(1500.0, 6000.0), noise_spikes=st.integers(0, 5))
def test_alt007_m1_baseline_never_reaccepts(seed, cliff, noise_spikes):
    """ALT-007: m1-baseline documents M1: after its first rejection it never accepts again,
    even though the sensor keeps telling the truth."""
    prof = descent_profile(12.0, 8000.0, -40.0, terrain_steps=((3.0, -cliff),), seed=seed)
    prof, _ = spiked(prof, np.random.default_rng(seed), noise_spikes)
    out = RUNNER.run(filter_for(prof, "m1-baseline"), **prof.inputs())
    measured = out.status[prof.range_indices()]
    rejected = np.flatnonzero(measured == Status.REJECTED_INCONSISTENT)
    assert len(rejected) > 0  # the cliff is always rejected
    assert not np.any(measured[rejected[0]:] == Status.ACCEPTED)


def test_alt007_terrain_aware_requalifies_where_m1_locks_out():
    prof = descent_profile(12.0, 8000.0, -40.0, terrain_steps=((3.0, -5000.0),), seed=7)
    m1 = RUNNER.run(filter_for(prof, "m1-baseline"), **prof.inputs())
    ours = RUNNER.run(filter_for(prof, "terrain-aware"), **prof.inputs())
    end = slice(-100, None)
    assert np.all(hat_error(prof, m1.hat)[end] > 4000.0)  # believes it is ~5 km lower
    assert np.all(hat_error(prof, ours.hat)[end] <= 3.0 * ours.hat_sigma[end])
    assert np.count_nonzero(ours.status == Status.TERRAIN_STEP) == 1


@pytest.mark.parametrize("policy", [Policy.TERRAIN_AWARE, Policy.NONE])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alt008_mean_nis_inside_chi_square_99_band(policy, seed):
    """ALT-008: truth drawn from the filter's own model: the mean NIS of 10k updates lies
    inside the chi-square 99 % band (the filter is neither over- nor under-confident)."""
    from test_filter_algebra import process_model

    rng = np.random.default_rng(seed)
    n, dt, force, sigma = 10_000, 0.05, 1.62, 2.0  # force = g: a random walk around 3 km
    x0 = np.array([3000.0, 0.0, 0.0, 0.0])
    var0 = np.array([100.0, 1.0, 1e-4, 100.0])
    filt = AltitudeFilter(policy, x0=tuple(x0), var0=tuple(var0))
    truth = x0 + rng.normal(size=4) * np.sqrt(var0)
    F, Q, u = process_model(filt, dt, force, 0.0)  # vx = 0: the model is exactly linear
    L = np.linalg.cholesky(Q)
    nis = []
    for _ in range(n):
        truth = F @ truth + u.ravel() + L @ rng.normal(size=4)
        z = truth[0] - truth[3] + rng.normal() * sigma
        assert filt.predict(dt, force, 0.0)
        status = filt.update_range(z, 1.0, sigma)
        # a live reading may repeat its predecessor by chance (README: ~0.14 % at 2 m noise)
        assert status in (Status.ACCEPTED, Status.REJECTED_STUCK)
        if status == Status.ACCEPTED:
            nis.append(filt.last_nis)
    assert len(nis) >= 0.99 * n
    nis = np.array(nis)
    lo, hi = chi2.ppf([0.005, 0.995], len(nis)) / len(nis)
    assert lo <= nis.mean() <= hi, f"mean NIS {nis.mean():.4f} outside [{lo:.4f}, {hi:.4f}]"


def test_alt011_reopen_lets_a_locked_out_sensor_back_in():
    """ALT-011: FDIR's re-open clears a lock-out (m1-baseline's) so the next sample is judged afresh."""
    prof = descent_profile(12.0, 8000.0, -40.0, terrain_steps=((3.0, -5000.0),), seed=5)
    filt = filter_for(prof, "m1-baseline")
    half = len(prof.dt_s) // 2
    first = {k: v[:half].copy() for k, v in prof.inputs().items()}
    RUNNER.run(filt, **first)
    assert filt.sensor_counts(0)["locked_out"]
    filt.reopen_sensor(0)
    assert not filt.sensor_counts(0)["locked_out"]
    with pytest.raises(ValueError):
        filt.reopen_sensor(99)
