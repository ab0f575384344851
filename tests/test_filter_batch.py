"""ALT-009: the batch entry point is the step loop, with checked buffers."""

import numpy as np
import pytest
from filter_helpers import filter_for
from hypothesis import given
from hypothesis import strategies as st

from flight.estimation.altitude_filter import Status
from ground.filter_batch import BatchRunner, run_batch
from ground.filter_profiles import descent_profile


@given(seed=st.integers(0, 2**31), policy=st.sampled_from(["terrain-aware", "m1-baseline", "apollo-gate", "px4-like"]),
       corrupt=st.lists(st.integers(0, 299), max_size=5))
def test_alt009_batch_equals_the_step_loop(seed, policy, corrupt):
    """ALT-009: one C batch call gives bit-for-bit what 300 single steps give, NaNs included."""
    prof = descent_profile(3.0, 4000.0, -40.0, terrain_steps=((1.5, -3000.0),), seed=seed)
    ranges = prof.range_m.copy()
    ranges[corrupt] = np.nan  # where valid, an invalid input; elsewhere ignored
    prof = prof.with_ranges(ranges)
    batch_filter, loop_filter = filter_for(prof, policy), filter_for(prof, policy)
    out = run_batch(batch_filter, **prof.inputs())
    for k in range(len(prof.dt_s)):
        rng = float(prof.range_m[k]) if prof.valid[k] else None
        status = loop_filter.step(float(prof.dt_s[k]), float(prof.force_mps2[k]),
                                  float(prof.horizontal_speed_mps[k]), rng, 1.0, float(prof.sigma_m[k]))
        assert status == out.status[k]
        assert out.hat[k] == loop_filter.height_above_terrain_m
    assert batch_filter.snapshot() == loop_filter.snapshot()
    invalid_where = [k for k in corrupt if prof.valid[k]]
    assert all(out.status[k] == Status.INVALID_INPUT for k in invalid_where)


def test_alt009_batch_refuses_wrong_dtype_shape_and_length():
    prof = descent_profile(1.0, 1000.0, -10.0)
    runner = BatchRunner()
    filt = filter_for(prof)
    good = prof.inputs()
    before = filt.snapshot()
    with pytest.raises(TypeError, match="range_m: expected dtype float64, got float32"):
        runner.run(filt, **{**good, "range_m": good["range_m"].astype(np.float32)})
    with pytest.raises(ValueError, match="C-contiguous"):
        runner.run(filt, **{**good, "sigma_m": np.repeat(good["sigma_m"], 2)[::2]})
    with pytest.raises(ValueError, match="length"):
        runner.run(filt, **{**good, "cos_tilt": good["cos_tilt"][:-1]})
    with pytest.raises(TypeError, match="numpy array"):
        runner.run(filt, **{**good, "dt_s": list(good["dt_s"])})
    assert filt.snapshot() == before  # nothing ran


def test_alt009_runner_reuses_its_buffers():
    prof = descent_profile(1.0, 1000.0, -10.0)
    runner = BatchRunner()
    a = runner.run(filter_for(prof), **prof.inputs(), copy=False)
    b = runner.run(filter_for(prof), **prof.inputs(), copy=False)
    assert a.hat is b.hat  # the same memory: no allocation per run
