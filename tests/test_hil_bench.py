"""HIL-050: the bench mode (`lander hil SCENARIO --emulator PORT --flight udp:HOST:PORT`) against a
bench made of local processes: the host emulator plays the Pico (its stream pty is the rig's
`--emulator` port), a `lander-flight` service with the real drivers and the real-time clock plays
the Pi (preflight first, then ARM and START_DESCENT as authenticated telecommands from the rig)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys

from ground.scenarios import load
from ground.scenarios.schema import Criteria
from hil import rig
from tests.hil_helpers import ROOT, at_rest, emulator_host, lander_flight, open_stream

KEY = b"bench-command-key-0123456789abcdef"


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hil050_the_bench_flow_preflight_then_armed_by_telecommand_then_flown_in_real_time(tmp_path):
    scenario = dataclasses.replace(load("m1-cliff"), criteria=Criteria(time_limit_s=4.0))
    key = tmp_path / "command.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    flight_port, ground_port = free_udp_port(), free_udp_port()
    with emulator_host() as (emu, _):
        # the operator's preflight, with the emulator at rest on the bench
        stream = open_stream(emu)
        stream.sync(1, at_rest())
        stream.close()
        config = rig.flight_config(scenario, "terrain-aware", scenario.terrain(0), 0, emu, tmp_path, ground_port, None)
        config["link"].update(bind_port=flight_port)
        config["commands"] = {"key_file": str(key)}
        rig.write_toml(tmp_path / "board.toml", config)
        pre = lander_flight("preflight", "--config", str(tmp_path / "board.toml"))
        assert pre.returncode == 0, pre.stdout + pre.stderr
        # the flight computer's service
        with open(tmp_path / "flight.out", "wb") as log:
            service = subprocess.Popen([sys.executable, "-m", "flight.app", "--config", str(tmp_path / "board.toml")],
                                       cwd=ROOT, stdout=log, stderr=log)
        try:
            settings = rig.RigSettings(emulator_port=str(emu / "stream"), flight_address=("127.0.0.1", flight_port),
                                       key_file=str(key), ground_port=ground_port, realtime=True, plot=False)
            summary = rig.run_to_dir(scenario, tmp_path / "out", settings)
            assert service.poll() is None  # the board's service runs on; the rig only commanded it
        finally:
            if service.poll() is None:
                os.kill(service.pid, signal.SIGTERM)
                service.wait(timeout=10)
    r = summary["rig"]
    assert r["mode"] == "bench" and r["flight_arch"] == "board" and r["emulator"] == "lander-emulator host"
    assert 390 <= r["steps"] <= 401 and r["rig_slips"] is not None
    rows = [json.loads(line) for line in (tmp_path / "out" / "telemetry.jsonl").read_text().splitlines()]
    completed = [row["values"][1] for row in rows if row["kind"] == "verification" and row["values"][0] == 7]
    assert len(completed) == 2  # ARM and START_DESCENT executed
    phases = [row["values"][0] for row in rows if row["kind"] == "event" and row["name"] == "PHASE"]
    assert phases[:2] == [1, 2]  # ARMED, BRAKING
    assert summary["terrain_steps_absorbed"] is None  # the board's filter counts are not in its telemetry
    assert summary["flight_phase_at_end"] in ("BRAKING", "APPROACH")


def test_hil050_a_bench_without_a_flight_says_so(tmp_path):
    scenario = dataclasses.replace(load("m1-cliff"), criteria=Criteria(time_limit_s=1.0))
    with emulator_host() as (emu, _):
        settings = rig.RigSettings(emulator_port=str(emu / "stream"), flight_address=("127.0.0.1", free_udp_port()),
                                   key_file=None, ground_port=free_udp_port(), realtime=True, plot=False)
        try:
            rig.run_to_dir(scenario, tmp_path, settings)
        except rig.RigError as exc:
            assert "needs --key FILE" in str(exc)
        else:
            raise AssertionError("the bench without a key must refuse to ARM")


def test_hil050_an_arm_refused_by_the_board_is_reported_with_the_likely_reason(tmp_path):
    """No preflight on the board in this boot: its ARM gate refuses; the rig says so and stops."""
    scenario = dataclasses.replace(load("m1-cliff"), criteria=Criteria(time_limit_s=2.0))
    key = tmp_path / "command.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    flight_port, ground_port = free_udp_port(), free_udp_port()
    with emulator_host() as (emu, _):
        config = rig.flight_config(scenario, "terrain-aware", scenario.terrain(0), 0, emu, tmp_path, ground_port, None)
        config["link"].update(bind_port=flight_port)
        config["commands"] = {"key_file": str(key)}
        rig.write_toml(tmp_path / "board.toml", config)
        with open(tmp_path / "flight.out", "wb") as log:
            service = subprocess.Popen([sys.executable, "-m", "flight.app", "--config", str(tmp_path / "board.toml")],
                                       cwd=ROOT, stdout=log, stderr=log)
        try:
            settings = rig.RigSettings(emulator_port=str(emu / "stream"), flight_address=("127.0.0.1", flight_port),
                                       key_file=str(key), ground_port=ground_port, realtime=True, plot=False)
            try:
                rig.run_to_dir(scenario, tmp_path / "out", settings)
            except rig.RigError as exc:
                assert "refused ARM" in str(exc) and "preflight" in str(exc)
            else:
                raise AssertionError("an ARM refused by the board must stop the run")
        finally:
            if service.poll() is None:
                os.kill(service.pid, signal.SIGTERM)
                service.wait(timeout=10)
