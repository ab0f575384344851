"""CLI-001..002: the `lander` command line as a user runs it."""

import math
import subprocess
import sys

from ground import filter_demo


def lander(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flight.cli", *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli001_help_lists_every_subcommand():
    out = lander("--help")
    assert out.returncode == 0
    for cmd in ("version", "demo"):
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
    out = lander("demo", "--seed", "3")
    assert out.returncode == 0 and "terrain-aware" in out.stdout and "never" in out.stdout
