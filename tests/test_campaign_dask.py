"""RUN-006: the same campaign through a real Dask cluster (`dask scheduler` + `dask worker` on
127.0.0.1, started here, stopped by PID) gives the same rows as the local process pool."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from ground.campaign.cluster import DaskProcesses

HOST_TIMED = {"wall_time_s", "wall_time_world_s", "sim_speed_x_realtime", "finished_utc"}


def rows(out):
    db = sqlite3.connect(out / "campaign.sqlite")
    db.row_factory = sqlite3.Row
    out = {}
    for r in db.execute("SELECT * FROM runs"):
        d = {k: r[k] for k in r.keys() if k not in HOST_TIMED}  # noqa: SIM118 - a Row iterates its values
        # task overruns are counted against the host's clock, not the simulation's
        d["events"] = {k: v for k, v in json.loads(r["events"]).items() if k != "TASK_OVERRUN"}
        out[(r["scenario"], r["estimator"], r["run"])] = d
    return out


def campaign(out, *how):
    return subprocess.run([sys.executable, "-m", "hil.cli", "campaign", "m1-cliff", "sensor-faults",
                           "--estimator", "terrain-aware", "--estimator", "m1-baseline", "--runs", "2",
                           "--seed", "5", "--no-report", "--out", str(out), *how],
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_run006_a_dask_cluster_gives_the_same_rows_as_the_local_pool(tmp_path):
    cluster = DaskProcesses(workers=1, log_dir=tmp_path)
    with cluster as address:
        pids = cluster.pids()
        through_dask = campaign(tmp_path / "dask", "--scheduler", address)
    assert all(_gone(pid) for pid in pids)  # stopped by PID
    assert through_dask.returncode == 0, through_dask.stderr + (tmp_path / "worker-0.log").read_text()[-3000:]
    assert f"Dask cluster at {address}" in through_dask.stderr
    local = campaign(tmp_path / "local", "--workers", "2")
    assert local.returncode == 0, local.stderr
    a, b = rows(tmp_path / "dask"), rows(tmp_path / "local")
    assert len(a) == 8 and a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
