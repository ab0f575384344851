import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def m1_cliff_rig_run(tmp_path_factory):
    """`m1-cliff`, seed 0, on the rig with the native flight: flown once per session, for the
    comparison with `lander sim` and with the aarch64 flight."""
    from ground.scenarios import load
    from hil import rig

    out = tmp_path_factory.mktemp("m1-cliff-x86_64")
    return out, rig.run_to_dir(load("m1-cliff"), out, rig.RigSettings(seed=0))
