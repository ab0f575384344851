"""HIL-010..013: `lander-flight preflight` against the host emulator (every device probed with its
own probe(), OK/FAIL with the reason, exit 0 only if all pass), a dead and a lying device, and ARM
refused until preflight passed in this boot for these devices."""

from __future__ import annotations

import json

import pytest

from board.emulator import stream as st
from flight import wiring
from flight.devices import preflight
from tests.hil_helpers import at_rest, board_toml, emulator_host, lander_flight, open_stream


@pytest.fixture
def bench(tmp_path):
    with emulator_host() as (emu, _proc):
        stream = open_stream(emu)
        stream.sync(1, at_rest())
        try:
            yield tmp_path, emu, stream
        finally:
            stream.close()


def _lines(out: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.startswith("  ")}


def test_hil010_every_device_ok_exit_0_and_a_record_for_this_boot(bench):
    tmp, emu, _ = bench
    proc = lander_flight("preflight", "--config", str(board_toml(tmp, emu)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _lines(proc.stdout) == {"rangefinder": "OK", "short_range": "OK", "imu": "OK", "engine": "OK"}
    assert "range 2.00 m" in proc.stdout and "range 1.50 m" in proc.stdout and "|a| 1.000 g" in proc.stdout
    record = json.loads((tmp / "preflight.json").read_text())
    assert record["passed"] is True and record["boot_id"] == preflight.boot_id() != ""


@pytest.mark.parametrize("fault, device, reason", [
    (st.Fault(st.DEV_IMU, st.FAULT_SILENT), "imu", "Errno 121"),  # dead: no acknowledge on the bus
    (st.Fault(st.DEV_RANGEFINDER, st.FAULT_SILENT), "rangefinder", "no valid reply within"),
    (st.Fault(st.DEV_ENGINE, st.FAULT_SILENT), "engine", "0 STATUS frames"),
    (st.Fault(st.DEV_IMU, st.FAULT_LIE, 3 * 9.80665), "imu", "not within 0.10 g"),  # a stuck z accelerometer at 3 g
    (st.Fault(st.DEV_RANGEFINDER, st.FAULT_LIE, 0.0), "rangefinder", "range 0.00 m outside"),
    (st.Fault(st.DEV_LIDAR, st.FAULT_LIE, 0.0), "short_range", "range 0.00 m outside"),
])
def test_hil011_a_dead_or_lying_device_fails_with_its_reason_and_exit_1(bench, fault, device, reason):
    tmp, emu, stream = bench
    stream.sync(2, st.encode_fault(fault))
    proc = lander_flight("preflight", "--config", str(board_toml(tmp, emu)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts = _lines(proc.stdout)
    assert verdicts.pop(device) == "FAIL" and set(verdicts.values()) == {"OK"}
    assert reason in next(line for line in proc.stdout.splitlines() if f" {device} " in line)
    assert "ARM stays refused" in proc.stdout
    assert json.loads((tmp / "preflight.json").read_text())["passed"] is False


def test_hil012_arm_refused_until_preflight_passed_in_this_boot_for_these_devices(bench):
    tmp, emu, stream = bench
    path = board_toml(tmp, emu)
    system = wiring.build(wiring.load_config(str(path)), source=str(path))
    try:
        assert "no preflight in this boot" in system.arm()  # nothing probed yet
        stream.sync(3, st.encode_fault(st.Fault(st.DEV_IMU, st.FAULT_SILENT)))
        assert lander_flight("preflight", "--config", str(path)).returncode == 1
        assert "preflight failed in this boot (imu:" in system.arm()
        stream.sync(4, st.encode_fault(st.Fault(st.DEV_IMU, st.FAULT_CLEAR)))
        assert lander_flight("preflight", "--config", str(path)).returncode == 0
        record = json.loads((tmp / "preflight.json").read_text())
        (tmp / "preflight.json").write_text(json.dumps({**record, "boot_id": "another-boot"}))
        assert "another boot" in system.arm()
        (tmp / "preflight.json").write_text(json.dumps({**record, "devices_sha256": "0" * 64}))
        assert "probed other devices" in system.arm()
        (tmp / "preflight.json").write_text(json.dumps(record))
        assert system.arm() is None and system.guidance.phase.name == "ARMED"
    finally:
        system.close()


def test_hil012_auto_start_goes_through_the_same_gate(bench):
    tmp, emu, _ = bench
    path = board_toml(tmp, emu)
    proc = lander_flight("--config", str(path), "--auto-start", "--duration", "0.3")
    assert proc.returncode == 0 and "ARM refused: no preflight in this boot" in proc.stderr
    assert proc.stdout.startswith("phase IDLE")
    assert lander_flight("preflight", "--config", str(path)).returncode == 0
    proc = lander_flight("--config", str(path), "--auto-start", "--duration", "0.3")
    # armed and started (the bench's contact switch is closed: it is on the ground, so it goes SAFE)
    assert "ARM refused" not in proc.stderr and not proc.stdout.startswith("phase IDLE"), proc.stderr


def test_hil013_preflight_refuses_a_configuration_without_real_devices(tmp_path):
    cfg = tmp_path / "sim.toml"
    cfg.write_text('[devices]\nkind = "simulated"\n')
    proc = lander_flight("preflight", "--config", str(cfg))
    assert proc.returncode == 2 and "nothing to probe" in proc.stderr
