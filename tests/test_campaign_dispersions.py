"""DSP-001..005: dispersions declared in scenario TOML, drawn from (campaign seed, run) alone."""

import json
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ground.campaign import dispersions as dsp
from ground.campaign.plan import Campaign
from ground.scenarios import ScenarioError, builtin_names, schema


def doc(**dispersions):
    return {"name": "t", "initial": {"altitude_m": 15000.0, "horizontal_speed_mps": "circular"},
            "terrain": {"elevation_m": 0.0, "features": [{"kind": "step", "at_m": 300000.0, "change_m": -1000.0}]},
            "faults": [{"kind": "stuck", "sensor": "primary", "start_s": 100.0, "end_s": 200.0}],
            "dispersions": dispersions}


def test_dsp001_every_built_in_declares_dispersions_that_check():
    for name in builtin_names():
        ds = dsp.load(name)
        assert ds.dispersions, f"{name} has no [dispersions]"
        values = ds.draw(0, 0)
        assert set(values) == set(ds.dispersions)
        ds.scenario(values)  # a drawn run is a valid scenario
    for cliff in ("m1-cliff", "uphill-wall"):  # the cliff families vary the cliff itself
        assert {"terrain.features.0.change_m", "terrain.features.0.at_m"} <= set(dsp.load(cliff).dispersions)
    kinds = dsp.load("sensor-faults").dispersions["faults.2.kind"]
    assert kinds.kind == "choice" and set(kinds.params) == {"stuck", "dead"}


def test_dsp001_a_plain_run_ignores_the_dispersions():
    one = schema.load("m1-cliff")  # `lander sim` reads the same file: the scenario as written
    assert one.terrain(0).steps() == [(315_000.0, -5000.0)]


def test_dsp002_a_path_reaches_any_field_of_the_document():
    ds = dsp.from_document(doc(**{
        "terrain.features.0.change_m": {"normal": [-5000.0, 500.0], "clip": [-6000.0, -4000.0]},
        "terrain.features.0.at_m": {"uniform": [290000.0, 310000.0]},
        "initial.altitude_m": {"uniform": [14000.0, 16000.0]},
        "navigation.altitude_sigma_m": {"uniform": [100.0, 300.0]},
        "sensors.primary.sigma_m": {"uniform": [0.2, 1.0]},  # no [sensors] table in the file: created
        "faults.0.start_s": {"uniform": [50.0, 150.0]},
        "faults.0.kind": {"choice": ["stuck", "dead"]},
    }), "t.toml")
    for run in range(5):
        v = ds.draw(3, run)
        s = ds.scenario(v)
        assert s.terrain_spec["features"][0]["change_m"] == v["terrain.features.0.change_m"]
        assert s.terrain(0).steps() == [(v["terrain.features.0.at_m"], v["terrain.features.0.change_m"])]
        assert -6000.0 <= v["terrain.features.0.change_m"] <= -4000.0
        assert s.initial.altitude_m == v["initial.altitude_m"]
        assert s.navigation.altitude_sigma_m == v["navigation.altitude_sigma_m"]
        assert s.primary.sigma_m == v["sensors.primary.sigma_m"]
        assert s.faults[0]["start_s"] == v["faults.0.start_s"] and s.faults[0]["kind"] == v["faults.0.kind"]


def test_dsp002_bare_and_quoted_dotted_keys_are_the_same_entry():
    import tomllib

    bare = tomllib.loads('[dispersions]\nfaults.0.start_s = { uniform = [1.0, 2.0] }\n')["dispersions"]
    quoted = tomllib.loads('[dispersions]\n"faults.0.start_s" = { uniform = [1.0, 2.0] }\n')["dispersions"]
    assert dsp.flatten(bare, "x") == dsp.flatten(quoted, "x") == {"faults.0.start_s": {"uniform": [1.0, 2.0]}}


def test_dsp002_the_mechanism_follows_the_schema_it_does_not_know_fields(monkeypatch):
    """A field the schema does not have is refused by the schema, named; a field it has (here the
    landing site, which the schema gained after the dispersions were written) works unchanged;
    and one the schema gains later works the same way (patched in)."""
    bad = doc(**{"sensors.primary.wobble_rad": {"normal": [0.0, 0.01]}})
    with pytest.raises(ScenarioError, match=r"t.toml: \[dispersions\] 'sensors.primary.wobble_rad'.*unknown key"):
        dsp.from_document(bad, "t.toml")
    d = doc(**{"site.downrange_m": {"normal": [348000.0, 500.0]}})
    ds = dsp.from_document(d, "t.toml")
    v = ds.draw(0, 7)
    assert ds.document(v)["site"] == {"downrange_m": v["site.downrange_m"]}
    assert ds.scenario(v).site.downrange_m == v["site.downrange_m"]
    later = doc(**{"beacon.offset_m": {"uniform": [0.0, 10.0]}})
    with pytest.raises(ScenarioError, match="unknown key"):
        dsp.from_document(later, "t.toml")
    monkeypatch.setattr(schema, "TOP", schema.TOP | {"beacon"})
    assert dsp.from_document(later, "t.toml").document(ds.draw(0, 1) | {"beacon.offset_m": 5.0})["beacon"] == {
        "offset_m": 5.0}


@pytest.mark.parametrize("entry, words", [
    ({"initial.altitude_m": {"gauss": [1.0, 2.0]}}, "name exactly one distribution"),
    ({"initial.altitude_m": {"normal": [1.0, 2.0], "uniform": [0.0, 1.0]}}, "name exactly one distribution"),
    ({"initial.altitude_m": {"normal": [15000.0]}}, r"normal = \[mean, sigma\] needs two finite numbers"),
    ({"initial.altitude_m": {"normal": [15000.0, 0.0]}}, "sigma > 0"),
    ({"initial.altitude_m": {"normal": [15000.0, 10.0], "clip": [2.0, 1.0]}}, r"clip = \[lo, hi\]"),
    ({"initial.altitude_m": {"normal": [15000.0, 10.0], "weights": [1]}}, "unknown key"),
    ({"initial.altitude_m": {"uniform": [2.0, 1.0]}}, "lo < hi"),
    ({"initial.altitude_m": {"uniform": ["a", 1.0]}}, "two finite numbers"),
    ({"faults.0.kind": {"choice": []}}, "non-empty array"),
    ({"faults.0.kind": {"choice": ["dead", "stuck"], "weights": [1.0]}}, "weights must be 2 numbers"),
    ({"faults.0.kind": {"choice": ["dead", "stuck"], "weights": [0.0, 0.0]}}, "positive sum"),
    ({"faults.0.kind": {"choice": ["dead", "melted"]}}, r"= 'melted' makes the scenario invalid.*kind must be one of"),
    ({"faults.3.start_s": {"uniform": [1.0, 2.0]}}, r"faults is an array of 1; '3' is not an index"),
    ({"initial.altitude_m.x": {"uniform": [1.0, 2.0]}}, r"initial.altitude_m is a value"),
    ({"sensors.primary.sigma": {"uniform": [0.2, 1.0]}}, r"unknown key\(s\) sigma"),
    ({"initial.altitude_m": {"uniform": [-10.0, 100.0]}}, "above the datum"),
    ({"name": {"choice": ["a", "b"]}}, "cannot be dispersed"),
    ({"initial.altitude_m": 15000.0}, "must be a table"),
])
def test_dsp003_a_bad_entry_is_a_scenario_error_naming_file_and_key(entry, words):
    (key,) = entry
    with pytest.raises(ScenarioError, match=rf"t.toml: \[dispersions\] '{key}'.*{words}"):
        dsp.from_document(doc(**entry), "t.toml")


def test_dsp003_the_cli_refuses_before_any_run(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[initial]\naltitude_m = 15000.0\nhorizontal_speed_mps = "circular"\n'
                   '[dispersions]\n"initial.altitude" = { uniform = [1.0, 2.0] }\n')
    out = tmp_path / "campaign"
    p = subprocess.run([sys.executable, "-m", "hil.cli", "campaign", str(bad), "--runs", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 2
    assert f"{bad}: [dispersions] 'initial.altitude'" in p.stderr and "unknown key(s) altitude" in p.stderr
    assert not out.exists()


SEEDS = st.integers(0, 2**63 - 1)
RUNS = st.integers(0, 10**6)


@given(seed=SEEDS, runs=st.lists(RUNS, min_size=1, max_size=6))
def test_dsp004_run_i_draws_from_seed_and_i_alone_in_any_order(seed, runs):
    ds = dsp.load("sensor-faults")
    alone = {i: ds.draw(seed, i) for i in runs}
    for i in reversed(runs):  # another order, interleaved with other draws
        ds.draw(seed, i + 1)
        assert ds.draw(seed, i) == alone[i]


@given(seed=SEEDS, run=RUNS)
def test_dsp004_an_added_entry_leaves_the_others_draws_alone(seed, run):
    one = dsp.from_document(doc(**{"faults.0.start_s": {"uniform": [50.0, 150.0]}}), "t.toml")
    two = dsp.from_document(doc(**{"initial.altitude_m": {"uniform": [14000.0, 16000.0]},
                                   "faults.0.start_s": {"uniform": [50.0, 150.0]}}), "t.toml")
    assert one.draw(seed, run)["faults.0.start_s"] == two.draw(seed, run)["faults.0.start_s"]


def test_dsp004_same_run_same_conditions_for_every_estimator_and_in_another_process():
    c = Campaign((dsp.load("m1-cliff"), dsp.load("nominal")), ("terrain-aware", "m1-baseline"), 4, 11)
    a, b = c.spec("m1-cliff", "terrain-aware", 3), c.spec("m1-cliff", "m1-baseline", 3)
    assert (a.dispersion, a.document, a.sim_seed) == (b.dispersion, b.document, b.sim_seed)
    assert c.spec("nominal", "terrain-aware", 3).sim_seed == a.sim_seed  # same seeds side by side
    assert c.spec("m1-cliff", "terrain-aware", 2).sim_seed != a.sim_seed
    assert c.spec("m1-cliff", "terrain-aware", 2).dispersion != a.dispersion
    code = ("import json; from ground.campaign import dispersions as d; from ground.campaign.plan import Campaign; "
            "c = Campaign((d.load('m1-cliff'),), ('terrain-aware',), 4, 11); s = c.spec('m1-cliff', 'terrain-aware', 3); "
            "print(json.dumps([s.sim_seed, s.dispersion]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(p.stdout) == [a.sim_seed, a.dispersion]


@given(seed=SEEDS, run=RUNS)
def test_dsp005_draws_stay_inside_their_clip_and_range(seed, run):
    ds = dsp.load("m1-cliff")
    v = ds.draw(seed, run)
    assert -6500.0 <= v["terrain.features.0.change_m"] <= -3500.0
    assert 305000.0 <= v["terrain.features.0.at_m"] <= 325000.0
    assert -0.006 <= v["sensors.primary.misalignment_rad"] <= 0.006


def test_dsp005_choice_follows_its_weights_and_normal_its_moments():
    import numpy as np

    ds = dsp.load("sensor-faults")
    n = 4000
    kinds = Counter(ds.draw(5, i)["faults.2.kind"] for i in range(n))
    # weights 0.7 / 0.3: the binomial sigma over 4000 draws is 0.0072; allow 4.5 sigma
    assert abs(kinds["stuck"] / n - 0.7) < 0.033 and kinds["stuck"] + kinds["dead"] == n
    wall = dsp.load("uphill-wall")
    rim = np.array([wall.draw(5, i)["navigation.terrain_prior_m"] for i in range(n)])
    assert abs(rim.mean() + 1500.0) < 4.5 * 300.0 / np.sqrt(n) and abs(rim.std() / 300.0 - 1.0) < 0.06


def test_dsp_doctests_run():
    import doctest

    from ground.campaign import stats

    for module in (dsp, stats):
        assert doctest.testmod(module).failed == 0, module.__name__
