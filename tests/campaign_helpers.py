"""Shared by the campaign tests: a stand-in runner where the flight is not the point."""


def stand_in(spec):
    """A runner that flies nothing: a summary made from the spec, deterministic."""
    vz = 0.5 + spec.sim_seed % 7 if spec.estimator == "terrain-aware" else 120.0
    return {"scenario": spec.scenario, "estimator": spec.estimator, "seed": spec.sim_seed,
            "outcome": "landed" if vz <= 2.0 else "crashed", "touchdown_vertical_speed_mps": vz,
            "touchdown_on_step_face": False, "events": {"PHASE": 6}, "criteria": {"max_vertical_speed_mps": 2.0},
            "max_hat_error_m_below_2km": 1.5}
