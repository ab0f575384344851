"""TER-001..003: terrain profiles, files and generators."""

import bisect
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from terrain_helpers import profiles

from ground.sim import terrain as T


@given(profiles())
def test_ter001_csv_round_trips(tmp_path_factory, terrain):
    path = tmp_path_factory.mktemp("t") / "t.csv"
    terrain.to_csv(path)
    back = T.from_csv(path)
    assert np.array_equal(back.downrange_m, terrain.downrange_m)
    assert np.array_equal(back.elevation_m, terrain.elevation_m)


@given(profiles(), st.floats(-1e4, 1e6))
def test_ter001_interpolation_stays_between_neighbours(terrain, x):
    z = terrain.elevation(x)
    assert z == pytest.approx(float(terrain.elevations(np.array([x]))[0]), abs=1e-6)
    i = np.searchsorted(terrain.downrange_m, x, side="right")
    lo = terrain.elevation_m[max(i - 1, 0)]
    hi = terrain.elevation_m[min(i, len(terrain.elevation_m) - 1)]
    assert min(lo, hi) - 1e-9 <= z <= max(lo, hi) + 1e-9


def reference_elevation(terrain, x, after=True):
    """The profile's definition, row by row: the lookup the C kernel must reproduce."""
    xs, zs = terrain.xs, terrain.zs
    i = bisect.bisect_right(xs, x) if after else bisect.bisect_left(xs, x)
    if i == 0:
        return zs[0]
    if i == len(xs):
        return zs[-1]
    return zs[i - 1] + (zs[i] - zs[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])


@given(profiles(), st.lists(st.floats(-1e4, 2e5), min_size=1, max_size=40), st.booleans())
def test_ter001_lookups_in_any_order_are_exactly_the_profile(terrain, downranges, walk):
    """The kernel's row hint (a ground track moves a row at a time) never changes an answer,
    whatever order the lookups come in; at a step, `elevation` is after it and
    `elevation_before` before it."""
    if walk:
        downranges = sorted(downranges)
    for x in downranges + terrain.xs:
        assert terrain.elevation(x) == reference_elevation(terrain, x)
        assert terrain.elevation_before(x) == reference_elevation(terrain, x, after=False)


def test_ter001_two_rows_at_one_downrange_are_a_vertical_step(tmp_path):
    path = tmp_path / "cliff.csv"
    path.write_text("downrange_m,elevation_m\n0,5000\n1000,5000\n1000,0\n2000,0\n")
    t = T.from_csv(path)
    assert t.elevation(999.999) == pytest.approx(5000.0)
    assert t.elevation(1000.0) == 0.0 and t.elevation(1500.0) == 0.0
    assert t.steps() == [(1000.0, -5000.0)]


@pytest.mark.parametrize("body, line, words", [
    ("x,y\n0,1\n", 1, "header"),
    ("downrange_m,elevation_m\n0,1\n5,2\n4,3\n", 4, "less than"),
    ("downrange_m,elevation_m\n0,1\n1,abc\n", 3, "not a number"),
    ("downrange_m,elevation_m\n0,1\n1,nan\n", 3, "non-finite"),
    ("downrange_m,elevation_m\n0,1\n1,2,3\n", 3, "2 columns"),
    ("downrange_m,elevation_m\n0,1\n1,2\n1,3\n1,4\n", 5, "third row"),
])
def test_ter002_a_bad_file_names_its_line(tmp_path, body, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(T.TerrainError, match=f"{path.name}:{line}: .*{words}"):
        T.from_csv(path)


def test_ter002_missing_truncated_and_empty_files(tmp_path):
    with pytest.raises(T.TerrainError, match="no such terrain file"):
        T.from_csv(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(T.TerrainError, match="header"):
        T.from_csv(tmp_path / "empty.csv")
    (tmp_path / "one.csv").write_text("downrange_m,elevation_m\n0,1\n")
    with pytest.raises(T.TerrainError, match="at least two"):
        T.from_csv(tmp_path / "one.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(T.TerrainError, match="cannot read"):
        T.from_csv(tmp_path / "bin.csv")


def test_ter003_synthetic_features():
    t = T.synthetic({"elevation_m": 100.0, "features": [
        {"kind": "step", "at_m": 5000.0, "change_m": -3000.0},
        {"kind": "slope", "start_m": 10_000.0, "end_m": 20_000.0, "rise_m": 500.0},
        {"kind": "crater", "center_m": 40_000.0, "radius_m": 2000.0, "depth_m": 300.0, "rim_height_m": 80.0},
    ]})
    assert t.elevation(4999.0) == pytest.approx(100.0) and t.elevation(5001.0) == pytest.approx(-2900.0)
    assert t.steps() == [(5000.0, -3000.0)]
    assert t.elevation(15_000.0) == pytest.approx(-2900.0 + 250.0, abs=1.0)
    assert t.elevation(40_000.0) == pytest.approx(-2400.0 - 300.0, abs=1.0)  # crater floor
    assert t.elevation(42_000.0) == pytest.approx(-2400.0 + 80.0, abs=1.0)  # rim


def test_ter003_roughness_is_seeded():
    spec = {"features": [{"kind": "roughness", "amplitude_m": 50.0, "wavelength_m": 4000.0}]}
    a, b, c = T.synthetic(spec, seed=1), T.synthetic(spec, seed=1), T.synthetic(spec, seed=2)
    assert np.array_equal(a.elevation_m, b.elevation_m) and not np.array_equal(a.elevation_m, c.elevation_m)
    assert np.std(a.elevation_m) == pytest.approx(50.0, rel=0.3)


@pytest.mark.parametrize("spec, words", [
    ({"features": [{"kind": "volcano"}]}, "unknown kind"),
    ({"features": [{"kind": "step", "at_m": 1.0}]}, "missing change_m"),
    ({"features": [{"kind": "step", "at_m": 1.0, "change_m": 2.0, "width": 3}]}, "unknown key"),
    ({"features": [{"kind": "step", "at_m": "x", "change_m": 2.0}]}, "finite number"),
    ({"bumps": 3}, "unknown key"),
    ({"start_m": 10.0, "end_m": 0.0}, "greater than"),
])
def test_ter003_bad_specs_are_refused(spec, words):
    with pytest.raises(T.TerrainError, match=words):
        T.synthetic(spec)
    assert math.isfinite(T.flat(3.0).elevation(1e9))


def test_ter001_a_terrain_travels_to_a_worker_process_and_back():
    """Campaign workers get terrains pickled: the rows travel, the lookups still work."""
    import pickle

    t = T.profile([(0.0, 0.0), (1000.0, 0.0), (1000.0, -5000.0), (2000.0, -5000.0)])
    back = pickle.loads(pickle.dumps(t))
    assert back.xs == t.xs and back.zs == t.zs and back.source == t.source
    assert back.elevation(999.0) == 0.0 and back.elevation(1000.0) == -5000.0 and back.elevation_before(1000.0) == 0.0
