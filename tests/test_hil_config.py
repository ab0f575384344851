"""HIL-001..003: real devices in the flight configuration (typed and bounded keys, built in the
wiring only, nothing touched at construction), and the rig's clock as its own process's time."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flight import wiring
from flight.config import ConfigError
from flight.devices.engine_link import EngineLink
from flight.devices.i2c_bridge import BridgeBus
from flight.devices.i2c_device import LazySMBus
from flight.devices.icm42688 import Icm42688
from flight.devices.lidarlite import LidarLite
from flight.devices.rangefinder import Rangefinder
from hil.rig_links import ClockServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sock_dir():
    """A short folder for unix sockets (107 bytes at most), removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="lander-test-clock-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def real(**devices):
    base = {"kind": "real", "rangefinder": {"device": "/nonexistent/lrf"}, "engine": {"device": "/nonexistent/eng"},
            "i2c": {"bridge": "/nonexistent/i2c.sock"}}
    base.update(devices)
    return {"devices": base}


def test_hil001_real_devices_built_from_the_board_template_keys_touching_nothing():
    cfg = real(rangefinder={"device": "/nonexistent/lrf", "baudrate": 115200, "rate_hz": 10.0, "sigma_m": 0.5,
                            "sigma_per_m": 1e-3, "min_range_m": 2.0},
               engine={"device": "/nonexistent/eng", "baudrate": 115200, "status_timeout_s": 0.5},
               i2c={"bus": 1}, imu={"address": 0x68, "mounting": "-y+x+z"},
               short_range={"address": 0x62, "rate_hz": 25.0, "max_range_m": 180.0})
    system = wiring.build(cfg)  # no device exists: the executive is built all the same
    try:
        d = system.devices
        lrf, lidar = d.altimeters
        assert isinstance(lrf, Rangefinder) and lrf.period_s == pytest.approx(0.1) and lrf.sigma_m == 0.5
        assert lrf.min_range_m == 2.0 and not lrf.port.is_open
        assert isinstance(lidar, LidarLite) and lidar.period_s == pytest.approx(0.04) and lidar.max_range_m == 180.0
        assert isinstance(d.imu, Icm42688) and d.imu.mounting == ((1, -1.0), (0, 1.0), (2, 1.0))
        assert isinstance(d.engine, EngineLink) and d.contact is d.engine and d.engine.status_timeout_s == 0.5
        assert isinstance(d.imu.device.bus, LazySMBus) and d.imu.device.bus._smbus is None
        assert [n for n, _, _ in d.probes] == ["rangefinder", "short_range", "imu", "engine"]
        # real I2C reads in the estimation task: its budget is the board's, not the simulation's
        assert next(t for t in system.executive.schedule if t.name == "estimation").budget_us == 1200.0
        assert system.guard.engine is d.engine  # guidance arms and commands through the guard
    finally:
        system.close()


def test_hil001_the_bridge_is_the_rigs_bus_and_every_key_is_checked():
    system = wiring.build(real(i2c={"bridge": "/nonexistent/i2c.sock", "timeout_s": 2.0}))
    try:
        bus = system.devices.imu.device.bus
        assert isinstance(bus, BridgeBus) and bus.timeout_s == 2.0
    finally:
        system.close()
    for bad, says in [
        (real(rangefinder={"device": "/x", "rate_hz": 50.0}), "rate_hz = 50.0: expected a number in [0.5, 20] Hz"),
        (real(imu={"address": 0x200}), "address = 512: expected a whole number in [8, 119]"),
        (real(i2c={"bus": 1, "bridge": "/x"}), "exactly one of bus"),
        (real(i2c={}), "exactly one of bus"),
        (real(i2c={"bus": 1, "timeout_s": 1.0}), "timeout_s is the bridge's"),
        (real(imu={"mounting": "+x+x+z"}), "each chip axis once"),
        (real(engine={"baudrate": 115200}), "[devices.engine] device = '/dev/...' is needed"),
        (real(lidar={"address": 0x62}), "unknown key 'lidar'"),
        ({**real(), "executive": {"clock": "lockstep"}}, "clock = 'lockstep' steps a simulated world"),
        ({"executive": {"clock": "rig"}}, "needs rig_socket"),
    ]:
        with pytest.raises(ConfigError) as err:
            wiring.build(bad, source="board.toml")
        assert says in str(err.value), err.value


def test_hil001_the_board_template_is_a_valid_real_configuration():
    from board.deploy import TEMPLATES
    from flight.config import check
    from flight.tomlio import read_toml

    text = (TEMPLATES / "board.toml").read_text()
    for name in ("@ENGINE_UART@", "@GROUND_HOST@"):
        text = text.replace(name, "x")
    text = text.replace("@CPU@", "3").replace("@FIFO_PRIORITY@", "50").replace("@VERSION@", "0")
    path = Path(tempfile.mkdtemp()) / "board.toml"
    path.write_text(text)
    doc = check(read_toml(path, ConfigError), "board.toml")
    assert doc["devices"]["kind"] == "real" and doc["devices"]["i2c"] == {"bus": 1}


def _flight_on_rig_clock(tmp_path: Path, sock: Path) -> subprocess.Popen:
    cfg = tmp_path / "board.toml"
    cfg.write_text(f'[executive]\nclock = "rig"\nrig_socket = "{sock}"\n[devices]\nkind = "simulated"\n')
    return subprocess.Popen([sys.executable, "-m", "flight.app", "--config", str(cfg), "--auto-start"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_hil002_the_flight_process_runs_a_slot_only_when_the_rig_says_go(tmp_path, sock_dir):
    sock = sock_dir / "clock.sock"
    server = ClockServer(sock)
    proc = _flight_on_rig_clock(tmp_path, sock)
    try:
        server.accept(30.0, lambda: proc.poll() is None)
        first = server.wait(30.0, lambda: proc.poll() is None)
        assert first is not None and first.deadline_ns == 0  # the first slot is asked for too
        assert server.n_counters == 0 and server.n_values == len(wiring.RIG_REPORT)  # simulated: no UARTs
        server.go(0)
        second = server.wait(30.0, lambda: proc.poll() is None)
        assert second is not None and second.deadline_ns == 10_000_000
        phase = dict(zip(wiring.RIG_REPORT, second.values))["phase"]
        assert phase >= 2.0  # BRAKING or on: slot 0 ran, auto-started
        time.sleep(0.3)  # the rig holds time: the flight waits, however long
        assert proc.poll() is None
        server.go(10_000_000)
        third = server.wait(30.0, lambda: proc.poll() is None)
        assert third is not None and third.deadline_ns == 20_000_000
        server.go(55_000_000)  # the rig may move time further: the executive catches up, 3 slots a wake
        fourth = server.wait(30.0, lambda: proc.poll() is None)
        assert fourth is not None and fourth.deadline_ns == 50_000_000  # slots 2..4 ran; 5 is already due
        server.go(55_000_000)
        fifth = server.wait(30.0, lambda: proc.poll() is None)
        assert fifth is not None and fifth.deadline_ns == 60_000_000
        server.stop(60_000_000)  # the run is over: the flight ends cleanly
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "slots 6 " in out and "slips 0" not in out  # the jump: late slots are counted as slips
    finally:
        _stop(proc)
        server.close()


def test_hil002_a_rig_that_goes_away_ends_the_flight_with_a_reason(tmp_path, sock_dir):
    sock = sock_dir / "clock.sock"
    server = ClockServer(sock)
    proc = _flight_on_rig_clock(tmp_path, sock)
    try:
        server.accept(30.0, lambda: proc.poll() is None)
        assert server.wait(30.0, lambda: proc.poll() is None) is not None
        server.close()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "the rig closed the connection" in err
    finally:
        _stop(proc)


def test_hil002_no_rig_listening_is_a_clear_start_up_error(tmp_path, sock_dir):
    sock = sock_dir / "absent.sock"
    cfg = tmp_path / "board.toml"
    cfg.write_text(f'[executive]\nclock = "rig"\nrig_socket = "{sock}"\n')
    script = ("import flight.executive.clock as c, sys\n"
              "try:\n    c.RigClock(sys.argv[1], connect_timeout_s=0.2)\n"
              "except c.ClockLost as e:\n    print(e)")
    proc = subprocess.run([sys.executable, "-c", script, str(sock)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, check=False)
    assert "No such file or directory" in proc.stdout


def test_hil002_sigterm_ends_a_flight_waiting_for_the_rig_cleanly(tmp_path, sock_dir):
    sock = sock_dir / "clock.sock"
    server = ClockServer(sock)
    proc = _flight_on_rig_clock(tmp_path, sock)
    try:
        server.accept(30.0, lambda: proc.poll() is None)
        assert server.wait(30.0, lambda: proc.poll() is None) is not None  # now it waits for GO
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)
        server.close()
