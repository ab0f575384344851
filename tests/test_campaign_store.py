"""STO-001..004 and RUN-001..003: the results store, resuming, the runner interface, the CLI's
refusals. Fast: a stand-in runner where the flight is not the point."""

import csv
import io
import json
import sqlite3

import pytest
from campaign_helpers import stand_in

from ground.campaign import dispersions as dsp
from ground.campaign import execution
from ground.campaign.execution import CampaignAbort, Sequential, run_campaign
from ground.campaign.plan import Campaign, differences
from ground.campaign.store import Store, StoreError, canonical, export_csv
from hil import campaign_cli, cli


def small(runs=3, seed=0, estimators=("terrain-aware", "m1-baseline")):
    return Campaign((dsp.load("m1-cliff"), dsp.load("sensor-faults")), estimators, runs, seed)


class Counting:
    def __init__(self, abort_after=None, fail_run=None):
        self.calls, self.abort_after, self.fail_run = [], abort_after, fail_run

    def __call__(self, spec):
        if self.abort_after is not None and len(self.calls) >= self.abort_after:
            raise CampaignAbort("board not answering")
        self.calls.append(spec.key)
        if spec.run == self.fail_run:
            raise ZeroDivisionError("the flight divided by zero")
        return stand_in(spec)


def test_sto001_a_run_is_one_committed_row_with_every_summary_field(tmp_path):
    c = small(runs=1)
    with Store(tmp_path) as store:
        store.begin(c.to_config(), "git abc", "0123", "lander campaign ...")
        spec = c.spec("m1-cliff", "terrain-aware", 0)
        summary = stand_in(spec) | {"a_field_added_later": 3.5}
        store.put(*spec.key, spec.dispersion, summary)
        # committed: another connection (another process would be the same) sees it at once
        other = sqlite3.connect(store.path)
        assert other.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (row,) = store.rows()
        assert row["dispersion"] == spec.dispersion and row["a_field_added_later"] == 3.5
        for key, value in summary.items():
            assert row[key] == (int(value) if isinstance(value, bool) else value), key
        with pytest.raises(StoreError, match="already stored"):
            store.put(*spec.key, spec.dispersion, summary)
        assert store.count() == 1


def test_sto002_configuration_once_and_every_session(tmp_path):
    c = small()
    with Store(tmp_path) as store:
        store.begin(c.to_config(), "git abc", "0123", "first")
        store.begin(c.to_config(), "git def", "4567", "second")
        stored = store.campaign()
        assert stored["code_version"] == "git abc" and stored["config"] == json.loads(canonical(c.to_config()))
        assert [s["command"] for s in store.sessions()] == ["first", "second"]


def test_sto002_differences_name_what_changed_and_ignore_where_the_file_lies():
    a = json.loads(canonical(small().to_config()))
    assert differences(a, a) == []
    moved = json.loads(canonical(small().to_config()))
    moved["scenarios"][0]["source"] = "/elsewhere/m1-cliff.toml"
    assert differences(a, moved) == []
    assert differences(a, json.loads(canonical(small(runs=4).to_config()))) == ["runs: stored 3, now 4"]
    assert differences(a, json.loads(canonical(small(seed=1).to_config()))) == ["seed: stored 0, now 1"]
    edited = json.loads(canonical(small().to_config()))
    edited["scenarios"][1]["document"]["dispersions"]["faults.2.kind"]["weights"] = [0.5, 0.5]
    assert differences(a, edited) == ["scenario sensor-faults: its file changed (dispersions)"]


def test_sto003_export_csv_has_every_field_and_one_column_per_drawn_value(tmp_path):
    c = small(runs=2)
    with Store(tmp_path) as store:
        store.begin(c.to_config(), "v", "h", "x")
        run_campaign(c, store, stand_in, Sequential())
        buf = io.StringIO()
        assert export_csv(store, buf) == 8
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == 8
    assert {"scenario", "estimator", "run", "seed", "outcome", "touchdown_vertical_speed_mps", "events"} <= set(rows[0])
    assert "dispersion.terrain.features.0.change_m" in rows[0] and "dispersion.faults.2.kind" in rows[0]
    cliff = [r for r in rows if r["scenario"] == "m1-cliff"]
    assert all(r["dispersion.faults.2.kind"] == "" for r in cliff)  # not this scenario's variable
    assert json.loads(rows[0]["events"]) == {"PHASE": 6}


def test_run001_a_stopped_campaign_resumes_with_only_the_missing_runs(tmp_path):
    """The store is the state: any runner, stopped anywhere, resumed: complete, nothing twice."""
    c = small(runs=3)
    first = Counting(abort_after=5)
    with Store(tmp_path) as store:
        with pytest.raises(CampaignAbort):
            run_campaign(c, store, first, Sequential())
        assert store.count() == 5
        before = {(r["scenario"], r["estimator"], r["run"]): r["finished_utc"] for r in store.rows()}
    second = Counting()
    with Store(tmp_path) as store:
        assert run_campaign(c, store, second, Sequential()) == c.size - 5
        keys = [(r["scenario"], r["estimator"], r["run"]) for r in store.rows()]
        assert sorted(keys) == sorted(c.run_keys()) and len(set(keys)) == len(keys) == c.size
        assert not set(second.calls) & set(first.calls)
        assert all(r["finished_utc"] == before[k] for k, r in zip(keys, store.rows()) if k in before)


def test_run002_a_run_that_raises_is_stored_as_an_error_not_retried(tmp_path):
    c = small(runs=2, estimators=("terrain-aware",))
    runner = Counting(fail_run=1)
    with Store(tmp_path) as store:
        run_campaign(c, store, runner, Sequential())
        errors = [r for r in store.rows() if r["outcome"] == "error"]
        assert len(errors) == 2 and all("ZeroDivisionError: the flight divided by zero" in r["error"] for r in errors)
        assert run_campaign(c, store, runner, Sequential()) == 0


def test_run003_the_sil_rig_is_default_and_the_hil_rig_provides_the_others(tmp_path, capsys):
    from hil.campaign import runner_for, sil_runner
    from hil.rig import RigRunner

    assert runner_for("sil") is sil_runner
    assert runner_for("sil-process") == RigRunner("sil-process")  # flown in tests/test_hil_campaign.py
    bench = runner_for("bench", "/dev/ttyACM0")
    assert isinstance(bench, RigRunner) and bench.emulator == "/dev/ttyACM0"
    with pytest.raises(execution.RigUnavailable, match="--rig bench needs --emulator PORT"):
        runner_for("bench", None)
    out = tmp_path / "c"
    assert cli.main(["campaign", "nominal", "--rig", "bench", "--out", str(out)]) == 2
    assert "--rig bench needs --emulator PORT" in capsys.readouterr().err
    assert cli.main(["campaign", "nominal", "--rig", "bench", "--emulator", "/dev/x", "--workers", "2",
                     "--out", str(out)]) == 2
    assert "one run at a time" in capsys.readouterr().err


def test_run003_bench_is_sequential_for_any_runner(tmp_path, monkeypatch):
    """What `--rig bench` builds once the rig provides its runner: one run at a time in this
    process, and resumable (the store is the state)."""
    import hil.campaign

    flown = []

    def bench_runner(spec):
        flown.append(spec.key)
        return stand_in(spec)

    monkeypatch.setattr(hil.campaign, "runner_for", lambda rig, emulator: bench_runner)
    monkeypatch.setattr(campaign_cli, "_fly", lambda campaign, store, runner, backend, args:
                        (run_campaign(campaign, store, runner, backend), type(backend).__name__)[1])
    out = tmp_path / "bench"
    args = ["campaign", "nominal", "--runs", "3", "--rig", "bench", "--emulator", "/dev/x", "--out", str(out)]
    assert cli.main(args) == "Sequential"
    assert len(flown) == 3 and cli.main([*args, "--resume"]) == "Sequential" and len(flown) == 3


def test_run004_the_cli_refuses_to_mix_campaigns_or_code(tmp_path, capsys, monkeypatch):
    from ground.campaign import provenance

    out = tmp_path / "c"
    monkeypatch.setattr(execution, "LocalPool", lambda workers=None: Sequential())
    monkeypatch.setattr("hil.campaign.runner_for", lambda rig, emulator=None: stand_in)
    base = ["campaign", "m1-cliff", "--runs", "2", "--no-report", "--out", str(out)]
    assert cli.main(base) == 0
    assert cli.main(base) == 2 and "holds a campaign already; --resume" in capsys.readouterr().err
    assert cli.main([*base[:3], "3", *base[4:], "--resume"]) == 2
    assert "holds a different campaign" in (err := capsys.readouterr().err) and "runs: stored 2, now 3" in err
    assert cli.main(["campaign", "--resume", "--no-report", "--out", str(out)]) == 0  # the stored configuration
    monkeypatch.setattr(provenance, "source_hash", lambda: "feedfacefeedface")
    assert cli.main([*base, "--resume"]) == 2 and "sources changed" in capsys.readouterr().err
    assert cli.main([*base, "--resume", "--accept-code-change"]) == 0
    with Store(out) as store:
        assert [s["source_hash"] for s in store.sessions()][-1] == "feedfacefeedface"
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    assert cli.main(["campaign", "nominal", "--out", str(stray)]) == 2
    assert "not a campaign folder" in capsys.readouterr().err and (stray / "notes.txt").read_text() == "mine"


def test_run004_export_and_report_need_a_campaign(tmp_path, capsys):
    assert cli.main(["campaign", "export", str(tmp_path / "none"), "--csv"]) == 2
    assert "no campaign here" in capsys.readouterr().err
    assert cli.main(["campaign", "export", str(tmp_path)]) == 2
    assert "--csv" in capsys.readouterr().err


def test_run004_an_unreachable_scheduler_is_refused_before_anything_is_written(tmp_path, capsys):
    from ground.campaign.cluster import free_port

    out = tmp_path / "c"
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    assert cli.main(["campaign", "nominal", "--runs", "1", "--scheduler", address, "--out", str(out)]) == 2
    assert f"cannot reach the Dask scheduler at {address}" in capsys.readouterr().err
    assert not out.exists()


def test_sto002_a_stored_campaign_finds_its_terrain_file_from_any_folder(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "ground.csv").write_text("downrange_m,elevation_m\n0,0\n400000,-250\n")
    (tmp_path / "here" / "mine.toml").write_text(
        'name = "mine"\n[initial]\naltitude_m = 12000.0\nhorizontal_speed_mps = "circular"\n'
        '[terrain]\nfile = "ground.csv"\n[dispersions]\n"initial.altitude_m" = { uniform = [11000.0, 13000.0] }\n')
    monkeypatch.chdir(tmp_path / "here")
    config = json.loads(canonical(Campaign((dsp.load("mine.toml"),), ("terrain-aware",), 2, 0).to_config()))
    monkeypatch.chdir(tmp_path)  # resumed from elsewhere
    again = Campaign.from_config(config)
    assert again.spec("mine", "terrain-aware", 1).build_scenario().terrain().elevation(400000.0) == -250.0
