"""HIL-040..041: the rig's campaign runner (`lander campaign --rig sil-process`, `--rig bench`)."""

from __future__ import annotations

import json

from ground.campaign.store import Store
from hil import cli
from tests.hil_helpers import ROOT


def test_hil040_a_campaign_flies_each_run_on_the_process_separated_rig(tmp_path, capsys):
    scenario = tmp_path / "m1-short.toml"
    scenario.write_text((ROOT / "ground" / "scenarios" / "m1-cliff.toml").read_text().replace(
        'name = "m1-cliff"', 'name = "m1-short"') + "\n[criteria]\ntime_limit_s = 4.0\n"
        "\n[[rig_faults]]\nkind = \"garbage\"\ndevice = \"rangefinder\"\nstart_s = 1.0\ncount = 80\n")
    out = tmp_path / "campaign"
    code = cli.main(["campaign", str(scenario), "--runs", "2", "--rig", "sil-process", "--workers", "2",
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    store = Store(out)
    try:
        rows = store.rows()
    finally:
        store.close()
    assert len(rows) == 2 and {r["outcome"] for r in rows} == {"timeout"}  # 4 s of a 650 s descent
    for row in rows:
        rig = json.loads(row["rig"])  # stored as JSON text, like every table of a summary
        assert rig["mode"] == "sil-lockstep" and rig["steps"] == 400 and rig["preflight"]["passed"]
        assert [f["fault"] for f in rig["faults"]] == ["garbage:rangefinder@1"]
        assert rig["drivers"]["rangefinder"]["bad_frames"] >= 1
        assert set(row["navigation_error"]) == {"altitude_m", "vertical_speed_mps", "horizontal_speed_mps",
                                                "terrain_prior_m"}
    # the runs differ by their dispersion and seed: their filter outputs do
    assert json.loads(rows[0]["rig"])["filter_outputs_sha256"] != json.loads(rows[1]["rig"])["filter_outputs_sha256"]


def test_hil041_a_bench_campaign_without_its_board_stops_and_stores_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANDER_BENCH_FLIGHT", "udp:127.0.0.1:9")
    out = tmp_path / "bench"
    code = cli.main(["campaign", "nominal", "--runs", "2", "--rig", "bench", "--emulator", str(tmp_path / "no-pico"),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "the bench: cannot open the sensor stream" in err, err
    store = Store(out)
    try:
        assert store.rows() == []
    finally:
        store.close()
