"""CLI-001..003: the `lander` command line as a user runs it."""

import math
import subprocess
import sys

from ground import filter_demo


def lander(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli001_help_lists_every_subcommand():
    out = lander("--help")
    assert out.returncode == 0
    for cmd in ("version", "demo", "sim", "scenarios", "replay"):
        assert cmd in out.stdout


def test_cli001_version_and_unknown_command():
    assert lander("version").stdout.startswith("lander 0.1.0")
    bad = lander("fly-to-mars")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_cli002_demo_shows_m1_locking_out_and_ours_absorbing_the_cliff():
    rows = {r["policy"]: r for r in filter_demo.run(seed=3)}
    assert rows["m1-baseline"]["final_error_m"] > 4000 and math.isnan(rows["m1-baseline"]["recovered_after_s"])
    assert rows["apollo-gate"]["final_error_m"] > 4000
    assert 4.0 <= rows["px4-like"]["recovered_after_s"] <= 7.0
    assert rows["terrain-aware"]["recovered_after_s"] <= 1.0 and rows["terrain-aware"]["terrain_steps"] == 1
    out = lander("replay", "--seed", "3")
    assert out.returncode == 0 and "terrain-aware" in out.stdout and "never" in out.stdout


def test_cli003_demo_flies_m1_cliff_with_both_estimators_side_by_side(tmp_path):
    out = lander("demo", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if "m1-baseline" in line and "terrain-aware" in line)
    outcome = next(line for line in out.stdout.splitlines() if line.startswith("outcome"))
    assert header.index("m1-baseline") < header.index("terrain-aware")
    assert outcome.split()[1:] == ["CRASHED", "LANDED"]
    for estimator in ("m1-baseline", "terrain-aware"):
        assert f"plot ({estimator}): {tmp_path / estimator / 'plot.png'}" in out.stdout
        assert (tmp_path / estimator / "plot.png").stat().st_size > 10_000
