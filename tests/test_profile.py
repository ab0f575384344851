"""PRF-001..006: the look-ahead terrain profile (c_kernels/profile.c through
flight/estimation/profile.py) and the onboard map (flight/estimation/terrain_map.py)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.estimation.profile import CELLS, ProfileStatus, Source, TerrainProfile
from flight.estimation.terrain_map import TerrainMap, TerrainMapError

CELL_M = 100.0
finite = st.floats(-5000.0, 5000.0)
variances = st.floats(0.01, 1e4)


def fresh(behind: int = 16) -> TerrainProfile:
    return TerrainProfile(cell_m=CELL_M, gate_sigma=3.0, replace_after=3, behind=behind)


@given(x=st.floats(0.0, (CELLS - 17) * CELL_M), z=finite, var=variances)
def test_prf001_a_first_sample_is_the_cell_and_nothing_else_changes(x, z, var):
    """PRF-001: a sample in an empty cell is that cell's elevation and variance; the cells
    either side stay empty."""
    p = fresh()
    assert p.observe(x, z, var, 1.0) == ProfileStatus.NEW
    c = p.lookup(x)
    assert (c.source, c.elevation_m, c.variance_m2, c.time_s) == (Source.BEAM, z, var, 1.0)
    assert p.lookup(x - CELL_M).source == Source.EMPTY and p.lookup(x + CELL_M).source == Source.EMPTY


@given(samples=st.lists(st.tuples(st.floats(-3.0, 3.0), st.floats(1.0, 100.0)), min_size=2, max_size=30),
       common=st.floats(0.0, 1.0))
def test_prf002_agreeing_samples_fuse_and_never_below_their_shared_error(samples, common):
    """PRF-002: samples within the gate fuse (inverse-variance): the cell's variance never grows
    and never drops below the smallest part the samples share (their common attitude error:
    many looks from one place do not average it away); the elevation stays between the
    samples'."""
    p = fresh()
    zs = []
    last = math.inf
    floor = math.inf
    for z, var in samples:
        shared = common * var
        status = p.observe(250.0, z, var, 0.0, Source.BEAM, shared)
        zs.append(z)
        floor = min(floor, shared)
        c = p.lookup(250.0)
        if status == ProfileStatus.FUSED:
            assert c.variance_m2 <= last + 1e-9
            assert c.variance_m2 >= floor - 1e-9
        last = c.variance_m2
        assert min(zs) - 1e-9 <= c.elevation_m <= max(zs) + 1e-9


def test_prf003_a_cell_changes_only_when_enough_samples_agree_on_the_change():
    """PRF-003: a sample far outside the cell's gate is held, not fused; replace_after samples
    that agree among themselves replace the cell (the ground really is different: a fresh
    crater, a wrong map); ones that disagree among themselves do not."""
    p = fresh()
    p.observe(50.0, 0.0, 1.0, 0.0)
    assert p.observe(50.0, 300.0, 1.0, 1.0) == ProfileStatus.HELD
    assert p.observe(50.0, -300.0, 1.0, 1.0) == ProfileStatus.HELD  # disagrees with the held one: starts again
    assert p.lookup(50.0).elevation_m == 0.0
    assert p.observe(50.0, -301.0, 1.0, 2.0) == ProfileStatus.HELD
    assert p.observe(50.0, -299.0, 1.0, 3.0) == ProfileStatus.REPLACED
    assert p.lookup(50.0).elevation_m == pytest.approx(-300.0, abs=1.0)


@given(x=st.floats(-1e6, 1e6), moved=st.floats(-1e6, 1e6), dz=st.floats(-1000.0, 1000.0))
def test_prf004_a_bounded_window_moves_with_the_vehicle_and_the_frame_shift_moves_every_cell(x, moved, dz):
    """PRF-004: the ring holds CELLS cells from `behind` cells behind the vehicle: samples
    outside are refused (OUTSIDE) and never overwrite a cell; a shift of the filter's frame
    moves every held elevation by the same amount."""
    p = fresh(behind=16)
    p.move(x)
    assert p.observe(x, 10.0, 1.0, 0.0) == ProfileStatus.NEW
    assert p.observe(x + CELLS * CELL_M, 99.0, 1.0, 0.0) == ProfileStatus.OUTSIDE
    assert p.observe(x - 17 * CELL_M - 1.0, 99.0, 1.0, 0.0) == ProfileStatus.OUTSIDE
    assert p.lookup(x).elevation_m == 10.0
    p.shift(dz)
    assert p.lookup(x).elevation_m == pytest.approx(10.0 + dz)
    p.move(moved)
    inside = -16 <= p.index(x) - p.index(moved) < CELLS - 16  # the window: 16 cells behind, the rest ahead
    assert (p.lookup(x).source == Source.BEAM) == inside


@given(gap=st.integers(1, 150), z=finite)
def test_prf005_next_known_finds_the_nearest_cell_holding_something_either_way(gap, z):
    """PRF-005: across a gap of empty cells, the nearest held cell ahead (and behind) is found,
    with its centre; beyond the reach asked for, nothing."""
    p = fresh()
    p.observe(50.0, 1.0, 1.0, 0.0)
    far = 50.0 + gap * CELL_M
    p.observe(far, z, 2.0, 3.0)
    x_c, cell = p.next_known(50.0, +1, CELLS)
    assert x_c == pytest.approx(far) and cell.elevation_m == z and cell.time_s == 3.0
    x_b, back = p.next_known(far, -1, CELLS)
    assert x_b == pytest.approx(50.0) and back.elevation_m == 1.0
    assert p.next_known(50.0, +1, gap - 1) is None if gap > 1 else True


@pytest.mark.parametrize("call", [
    lambda p: p.observe(math.nan, 0.0, 1.0, 0.0), lambda p: p.observe(0.0, math.inf, 1.0, 0.0),
    lambda p: p.observe(0.0, 0.0, 0.0, 0.0), lambda p: p.observe(0.0, 0.0, 1.0, 0.0, Source.BEAM, 2.0),
    lambda p: p.observe(0.0, 0.0, 1.0, math.nan), lambda p: p.observe(0.0, 0.0, -1.0, 0.0)])
def test_prf006_bad_samples_are_refused_and_change_nothing(call):
    p = fresh()
    p.observe(0.0, 5.0, 1.0, 0.0)
    assert call(p) == ProfileStatus.INVALID
    assert p.lookup(0.0).elevation_m == 5.0 and p.lookup(0.0).variance_m2 == 1.0
    with pytest.raises(ValueError, match="cell_m"):
        TerrainProfile(cell_m=0.0)
    assert p.next_known(0.0, 2, 10) is None and p.next_known(math.nan, 1, 10) is None


def test_prf007_the_map_reads_its_file_and_names_the_line_of_a_bad_one(tmp_path):
    good = tmp_path / "map.csv"
    good.write_text("downrange_m,elevation_m,sigma_m\n0,100,10\n1000,200,20\n")
    m = TerrainMap.from_csv(str(good))
    assert m.at(500.0) == (150.0, 20.0) and m.at(-1.0) is None and m.at(1001.0) is None
    for body, words in [("x,y,z\n0,1,1\n", "line 1 must be"), ("downrange_m,elevation_m,sigma_m\n0,1\n", "line 2"),
                        ("downrange_m,elevation_m,sigma_m\n0,1,1\n1,zero,1\n", "line 3: not a number"),
                        ("downrange_m,elevation_m,sigma_m\n0,1,0\n1,1,1\n", "sigma_m > 0"),
                        ("downrange_m,elevation_m,sigma_m\n5,1,1\n1,1,1\n", "must increase"),
                        ("downrange_m,elevation_m,sigma_m\n0,1,1\n", "at least two rows")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        with pytest.raises(TerrainMapError, match=words):
            TerrainMap.from_csv(str(bad))
    with pytest.raises(TerrainMapError, match="cannot read"):
        TerrainMap.from_csv(str(tmp_path / "none.csv"))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TerrainMapError):
        TerrainMap.from_csv(str(tmp_path / "bin.csv"))
