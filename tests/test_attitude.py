"""ATT-001..003: attitude from the gyro (flight/estimation/attitude.py)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.estimation.attitude import Attitude
from ground.scenarios import load
from hil import sil


def test_att001_the_flights_pitch_follows_the_truth_within_its_budget_through_a_whole_descent():
    """ATT-001: in SIL (the simulator's body-frame IMU: gyro noise, bias, quantisation), the
    pitch the flight propagates from the gyro and the transport rate stays within 3 sigma of
    its own budget of the true pitch, through the pitch-over to braking and back upright."""
    errors = []
    original = sil._Recorder._record

    def record(self, system, est):
        errors.append((system.estimation.attitude.pitch_rad - self.world.body.pitch_rad,
                       system.estimation.attitude.sigma_rad, self.world.body.pitch_rad))
        original(self, system, est)

    sil._Recorder._record = record
    try:
        result = sil.run(load("nominal"), "terrain-aware", 3)
    finally:
        sil._Recorder._record = original
    assert result.summary["touchdown_vertical_speed_mps"] is not None  # a whole descent, to the ground
    assert max(abs(p) for _, _, p in errors) > 1.4  # it did pitch over to braking
    inside = sum(abs(e) <= 3.0 * s for e, s, _ in errors)
    assert inside >= 0.99 * len(errors)
    assert max(s for _, s, _ in errors) < 0.01  # under 0.6 degrees after a whole descent


@given(st.lists(st.sampled_from(["gyro", "hold"]), max_size=200))
def test_att002_the_budget_only_grows_and_a_hold_grows_it_faster(steps):
    a, b = Attitude(0.1, 1e-4), Attitude(0.1, 1e-4)
    last = a.sigma_rad
    for step in steps:
        a.propagate(0.0, 0.01, 0.0, 0.0) if step == "gyro" else a.hold(0.01, 0.0, 0.0)
        b.propagate(0.0, 0.01, 0.0, 0.0)
        assert a.sigma_rad >= last
        last = a.sigma_rad
    assert a.sigma_rad >= b.sigma_rad and (("hold" not in steps) or a.sigma_rad > b.sigma_rad)


@pytest.mark.parametrize("pitch, sigma", [(math.nan, 0.0), (4.0, 0.0), (0.0, -1.0), (0.0, math.inf)])
def test_att003_a_bad_handover_is_refused(pitch, sigma):
    with pytest.raises(ValueError, match="attitude"):
        Attitude(pitch, sigma)
