"""FLY-001: `lander-flight` as its own process, commanded and watched over UDP like the ground."""

import signal
import socket
import subprocess
import sys
import time

from flight.telemetry.commands import build_command
from flight.telemetry.dictionary import load
from flight.telemetry.flightlog import TC, TM, log_files, read_log
from flight.telemetry.packets import TelemetryError, decode_tm

D = load()
KEY = b"s3cret-command-key-0123456789abcd"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_fly001_flight_process_obeys_authentic_commands_and_refuses_the_rest(tmp_path):
    key = tmp_path / "command.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    ground = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ground.bind(("127.0.0.1", 0))
    ground.settimeout(0.2)
    flight_port = free_port()
    log = tmp_path / "log"
    cfg = tmp_path / "board.toml"
    cfg.write_text(f"""
[executive]
clock = "realtime"
[link]
kind = "udp"
bind_port = {flight_port}
remote_port = {ground.getsockname()[1]}
[log]
dir = "{log}"
flush_period_s = 0.2
[commands]
key_file = "{key}"
""")
    proc = subprocess.Popen([sys.executable, "-m", "flight.app", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    received = []

    def pump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                received.append(decode_tm(ground.recv(4096)))
            except TimeoutError:
                pass
            except TelemetryError as exc:  # the flight must only send decodable packets
                raise AssertionError(exc)

    def send(pkt):
        ground.sendto(pkt, ("127.0.0.1", flight_port))

    try:
        pump(1.0)
        assert any(p.kind == "housekeeping" for p in received), proc.stderr.read() if proc.poll() else "no HK"
        epoch = [p.values for p in received if p.kind == "housekeeping"][-1]["command_epoch"]
        arm = build_command(KEY, "ARM", 1, epoch=epoch)
        send(arm)
        send(arm)  # replay
        send(build_command(b"wrong-key" * 4, "START_DESCENT", 2, epoch=epoch))  # forged
        send(b"\x00garbage\xff" * 5)  # malformed
        send(build_command(KEY, "ABORT", 3, epoch=epoch))  # out of phase: not descending yet
        send(build_command(KEY, "START_DESCENT", 4, epoch=epoch))
        pump(1.5)
        assert proc.poll() is None, "the flight process died"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    verifications = [p.values for p in received if p.kind == "verification"]
    failures = sorted(code for subtype, _, code in verifications if subtype in (2, 8))
    r = D.rejections
    assert failures == sorted([r["replayed"], r["unauthenticated"], r["malformed"], r["out_of_phase"]])
    assert sum(1 for subtype, _, _ in verifications if subtype == 7) == 2  # ARM, START_DESCENT done
    phases = [p.values[0] for p in received if p.kind == "event" and p.name == "PHASE"]
    assert phases[:3] == [1, 2, 3]  # ARMED, BRAKING, APPROACH
    last_hk = [p.values for p in received if p.kind == "housekeeping"][-1]
    assert last_hk["commands_rejected"] == 4 and last_hk["phase"] == 3
    assert proc.returncode == 0 and "phase APPROACH" in out
    (path,) = log_files(log)  # one boot, one file
    logged = read_log(path)
    sent = [payload for kind, payload in logged.records if kind == TM]
    assert logged.problem == "" and len(sent) >= len(received)  # everything sent was logged
    assert [kind for kind, _ in logged.records].count(TC) == 3  # the authentic ones: ARM, ABORT (refused later), START_DESCENT


def test_fly002_lockstep_executive_flies_the_bench_world_to_a_soft_touchdown():
    """FLY-002: the same wiring on a lockstep clock lands the simulated bench vehicle from
    2 km at 20 m/s down: terminal descent, contact at <= 1 m/s, engine cut, no slips."""
    from flight import wiring
    from flight.guidance.descent import Phase

    system = wiring.build({"executive": {"clock": "lockstep"}})
    assert system.guidance.arm() is None and system.guidance.start_descent() is None
    system.executive.run(slots=30_000, until=system.guidance.touched_down)
    world = system.devices.world
    assert system.guidance.phase == Phase.TOUCHDOWN
    assert world.touchdown_speed_mps is not None and world.touchdown_speed_mps <= 1.0
    system.executive.run(slots=20)
    assert system.guidance.phase == Phase.SAFE and system.devices.engine.throttle == 0.0
    assert system.executive.stats.total_slips == 0
    assert system.events.counts.get("TASK_FAILED", 0) == 0


def test_fly003_real_time_flight_steps_the_simulated_world(tmp_path):
    """FLY-003: under the real-time clock the bench world is stepped every slot, so the
    flight sees samples and its clock advances with the wall clock."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('[executive]\nclock = "realtime"\n[devices]\naltitude_m = 2000.0\n'
                   '[estimator]\ninitial_altitude_m = 2000.0\n')
    p = subprocess.run([sys.executable, "-m", "flight.app", "--config", str(cfg), "--duration", "2",
                        "--auto-start"], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    fields = p.stdout.split()
    flight_time = float(fields[fields.index("HAT") - 2].removeprefix("t="))
    hat = float(fields[fields.index("HAT") + 1])
    assert 1.9 <= flight_time <= 2.0 and hat < 2000.0 - 20.0  # descending at ~20 m/s
