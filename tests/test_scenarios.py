"""SCN-001..003: scenario files: the built-ins, and every way a file can be wrong."""

import pytest

from ground.scenarios import ScenarioError, builtin_names, load
from ground.scenarios.schema import parse

BUILTINS = {"nominal", "m1-cliff", "uphill-wall", "m2-late-lrf", "im1-no-lrf", "im2-noisy-lrf", "sensor-faults",
            "imu-gap", "approach-drop", "approach-slope", "rim-before-site"}


def test_scn001_every_built_in_loads_and_is_what_the_issue_names():
    assert set(builtin_names()) == BUILTINS
    for name in BUILTINS:
        s = load(name)
        assert s.name == name and s.description
        assert s.vehicle.max_thrust_n > s.vehicle.wet_mass_kg * 1.62
    cliff = load("m1-cliff")
    assert cliff.terrain(0).steps() == [(315_000.0, -5000.0)]  # the ~5 km drop
    late = load("m2-late-lrf").make_faults()
    assert [(f.kind, f.params["valid_below_m"]) for f in late] == [("late_valid", 900.0)]
    assert [f.kind for f in load("im1-no-lrf").make_faults()] == ["dead"]


def base():
    return {"name": "t", "initial": {"altitude_m": 15000.0, "horizontal_speed_mps": "circular"}}


@pytest.mark.parametrize("change, words", [
    ({"colour": "red"}, "unknown key"),
    ({"initial": {"altitude_m": 15000.0}}, r"\[initial\]: missing horizontal_speed_mps"),
    ({"initial": {"altitude_m": "high", "horizontal_speed_mps": 1.0}}, r"altitude_m must be a finite number"),
    ({"initial": {"altitude_m": -5.0, "horizontal_speed_mps": 1.0}}, "above the datum"),
    ({"vehicle": {"max_thrust_n": 900.0}}, "cannot hover"),
    ({"vehicle": {"dry_mass": 300.0}}, r"\[vehicle\]: unknown key"),
    ({"vehicle": {"isp_s": True}}, "finite number"),
    ({"navigation": {"altitude_sigma_m": 0.0}}, "must be > 0"),
    ({"sensors": {"lidar": {}}}, r"\[sensors\]: unknown key"),
    ({"sensors": {"primary": {"rate_hz": 0.0}}}, r"\[sensors.primary\]"),
    ({"faults": [{"kind": "stuck", "sensor": "radar"}]}, "sensor must be"),
    ({"faults": {"kind": "stuck"}}, "array of tables"),
    ({"terrain": {"features": [{"kind": "step", "at_m": 1.0}]}}, "missing change_m"),
    ({"terrain": {"file": "nowhere.csv"}}, "no such terrain file"),
    ({"criteria": {"max_vertical_speed_mps": "2"}}, "finite number"),
    ({"name": 3}, "name must be"),
])
def test_scn002_bad_scenarios_are_refused_with_the_key_named(change, words):
    doc = base()
    doc.update(change)
    with pytest.raises(ScenarioError, match=words):
        parse(doc, "t.toml")


def test_scn002_missing_name_and_initial():
    with pytest.raises(ScenarioError, match="missing name"):
        parse({"initial": base()["initial"]}, "t.toml")
    with pytest.raises(ScenarioError, match=r"missing \[initial\]"):
        parse({"name": "x"}, "t.toml")


def test_scn003_files_unknown_names_and_broken_toml(tmp_path):
    with pytest.raises(ScenarioError, match="built-in: .*m1-cliff"):
        load("m3-somewhere")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[initial\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load(tmp_path / "gone.toml")
    good = tmp_path / "mine.toml"
    (tmp_path / "ground.csv").write_text("downrange_m,elevation_m\n0,0\n500000,0\n")
    good.write_text('name = "mine"\n[initial]\naltitude_m = 12000.0\nhorizontal_speed_mps = "circular"\n'
                    '[terrain]\nfile = "ground.csv"\n')
    s = load(good)
    assert s.terrain().elevation(1000.0) == 0.0  # the CSV path is relative to the scenario file
    assert s.initial.horizontal_speed_mps == pytest.approx((4.9028e12 / (1737.4e3 + 12000.0)) ** 0.5)
