"""RUN-005: `kill -9` of a real `lander campaign` mid-campaign, then `--resume`: complete,
nothing lost, nothing twice, the runs stored before the kill untouched."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

RUNS = 6


def stored(out):
    path = out / "campaign.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=10)
    try:
        return db.execute("SELECT scenario, estimator, run, seed, finished_utc FROM runs").fetchall()
    except sqlite3.OperationalError:  # the writer has not made the table yet
        return []
    finally:
        db.close()


def alive_in_group(pgid):
    """Processes of the group that still run (zombies waiting for a reaper do not)."""
    ps = subprocess.run(["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if line.split()[0] == str(pgid) and not line.split()[1].startswith("Z")]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])  # in this process / a local pool
def test_run005_kill_9_mid_campaign_then_resume_loses_and_duplicates_nothing(tmp_path, workers):
    out = tmp_path / "campaign"
    cmd = [sys.executable, "-m", "hil.cli", "campaign", "nominal", "--runs", str(RUNS), "--workers", workers,
           "--no-report", "--out", str(out)]
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while len(stored(out)) < 2:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no run stored in 180 s"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # mid-campaign: a run in flight, others not started
        proc.wait(30)
        # the pool's workers notice their parent is gone and stop: nobody would store their runs
        deadline = time.monotonic() + 20
        while alive_in_group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive_in_group(proc.pid)
    finally:
        try:  # the pool's workers, orphaned by the kill: the group the campaign led
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = stored(out)
    assert 2 <= len(before) < RUNS, "the kill came after the end: nothing left to resume"

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} stored, {RUNS - len(before)} to fly" in done.stderr
    after = stored(out)
    keys = [r[:3] for r in after]
    assert len(after) == RUNS and len(set(keys)) == RUNS  # complete, no duplicate
    assert sorted(keys) == [("nominal", "terrain-aware", i) for i in range(RUNS)]
    assert set(before) <= set(after)  # the runs stored before the kill are the same rows
    db = sqlite3.connect(out / "campaign.sqlite")
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
