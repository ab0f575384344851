"""HRD-001..010: the executive under the faults a bench or a flight brings: IMU gaps, a
guidance that fails, bad parameters and config files, failing disks and links, events while
the IMU is silent, replayed commands across a restart, a flight-only install."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight import wiring
from flight.config import ConfigError
from flight.devices.simulated import RecordingEngine, SimulatedBench
from flight.guidance.descent import GuidanceConfig, Phase
from flight.guidance.safe import ArrestLaw, EngineGuard
from flight.telemetry.commands import Rejection, Telecommand, build_command
from flight.telemetry.dictionary import load
from flight.telemetry.packets import TelemetryError, decode_tm

D = load()
KEY = b"hardening-test-key-0123456789abcdef"


class GappyImu:
    """The bench's IMU with dropouts: samples stamped inside a window never arrive (a bus that
    stops answering)."""

    def __init__(self, imu, windows):
        self.imu = imu
        self.windows = windows

    def read(self):
        while (s := self.imu.read()) is not None:
            if not any(a <= s.time_s < b for a, b in self.windows):
                return s
        return None


class CheckedEngine(RecordingEngine):
    """Records every command the engine is given, as the engine controller would see it."""

    def __init__(self):
        super().__init__()
        self.history = []

    def command(self, throttle, pitch_rad):
        self.history.append((throttle, pitch_rad))
        super().command(throttle, pitch_rad)


def bench_system(config=None, gaps=(), altitude_m=2000.0, link=None):
    bench = SimulatedBench(altitude_m=altitude_m, vertical_speed_mps=-20.0)
    engine = CheckedEngine()
    bench.engine = engine
    devices = wiring.Devices(GappyImu(bench.imu, list(gaps)), [bench.primary, bench.short_range], engine,
                             bench.contact, world=bench)
    cfg = {"executive": {"clock": "lockstep"},
           "estimator": {"initial_altitude_m": altitude_m, "initial_vertical_speed_mps": -20.0}}
    for section, values in (config or {}).items():
        cfg[section] = {**cfg.get(section, {}), **values}
    system = wiring.build(cfg, devices)
    if link is not None:
        system.downlink.link = link
        system.commands.receive = link.receive
    events = []
    system.events.listeners.append(lambda t, name, args: events.append((t, name, args)))
    return system, bench, engine, events


def key_file(tmp_path):
    path = tmp_path / "command.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    return str(path)


# -- HRD-001: one time base; an IMU gap of any length --------------------------------------
def test_hrd001_a_1_2_s_imu_gap_no_longer_freezes_the_estimator():
    """HRD-001: the bench world with the IMU silent from 30.0 to 31.2 s (longer than the
    kernel's 1 s step) lands softly; the gap is reported with its length; FDIR and events kept
    the executive's time through it. (Before, the estimator froze for good: ~60 m/s impact.)"""
    system, bench, _, events = bench_system(gaps=[(30.0, 31.2)])
    system.guidance.arm()
    system.guidance.start_descent()
    system.executive.run(slots=30_000, until=system.guidance.touched_down)
    assert system.guidance.phase == Phase.TOUCHDOWN
    assert bench.touchdown_speed_mps is not None and bench.touchdown_speed_mps <= 1.0
    gaps = [args[0] for _, name, args in events if name == "IMU_GAP"]
    assert gaps == [pytest.approx(1.21, abs=0.015)]
    health = [(t, args[0]) for t, name, args in events if name == "IMU_HEALTH"]
    assert [h for _, h in health] == [1, 0] and 30.0 < health[0][0] < 30.1 and 31.2 <= health[1][0] < 31.3
    assert system.estimation.output.imu_gaps == 1


def test_hrd001_while_the_imu_is_lost_guidance_holds_then_arrests_the_descent():
    """HRD-001: no IMU for 20 s at 1.4 km: the last command is held for imu_loss_hold_s, then
    the thrust arrests the descent on the guidance's own model (the vehicle ends near a hover,
    not in the ground), and range samples are set aside (the state is stale), not judged."""
    system, bench, engine, _ = bench_system(gaps=[(30.0, 50.0)])
    system.guidance.arm()
    system.guidance.start_descent()
    system.executive.run(slots=3020)  # 30.2 s: lost (no sample for 50 ms) at 30.05, held since 30.1
    held = engine.history[-1]
    system.executive.run(slots=150)  # 31.7 s: still held
    assert engine.history[-1] == held and len(engine.history) >= 317
    system.executive.run(slots=1780)  # to 49.5 s
    assert bench.h > 100.0 and abs(bench.v) < 3.0  # arrested: a slow drift at most, far from the ground
    assert all(math.isfinite(t) and 0.0 <= t <= 1.0 for t, _ in engine.history)
    assert system.fdir.sensors[0].bad_run == 0  # stale-state samples were set aside, not called bad
    system.executive.run(slots=30_000, until=system.guidance.touched_down)
    assert bench.touchdown_speed_mps is not None and bench.touchdown_speed_mps <= 1.0


def test_hrd001_events_keep_flowing_and_suppressed_ones_are_reported_while_the_imu_is_silent():
    """HRD-001/004: a task failing every slot while the IMU is silent: its events are throttled
    on the executive's clock and EVENTS_SUPPRESSED still comes (it never came when throttling
    ran on IMU time)."""
    from flight.executive.scheduler import ScheduledTask

    system, _, _, _ = bench_system(gaps=[(1.0, 30.0)])
    sent = []
    downlink = system.events.downlink
    system.events.downlink = lambda pkt: (sent.append(decode_tm(pkt)), downlink(pkt))

    def boom(_deadline):
        raise RuntimeError("a task that fails every slot")

    system.executive.add_task(ScheduledTask("boom", boom, 1, 0, 100.0))
    system.executive.run(slots=1000)  # 10 s, 9 of them without an IMU
    suppressed = [p for p in sent if p.name == "EVENTS_SUPPRESSED"]
    assert len(suppressed) >= 8 and all(p.values[1] == 95 for p in suppressed[1:8])  # 100 per s, 5 sent
    assert system.events.counts["TASK_FAILED"] == 1000


# -- HRD-002: a safe engine -----------------------------------------------------------------
def test_hrd002_a_guidance_that_fails_every_cycle_hands_the_engine_to_the_guard():
    """HRD-002: guidance raising every cycle (a parameter gone bad behind the checks) no longer
    leaves the engine at its last command: within the deadline the guard commands the safe
    command (attitude held, throttle arresting the descent, never a cut), with an event; when
    guidance works again it gets the engine back, and the vehicle lands."""
    system, bench, engine, events = bench_system()
    g = system.guidance
    g.arm()
    g.start_descent()
    system.executive.run(slots=2000)  # 20 s of approach
    g.config.approach_decel_mps2 = -1.0  # sqrt of a negative: guidance raises from now on
    t_bad = system.time()
    system.executive.run(slots=2000)
    guard_events = [(t, args[0]) for t, name, args in events if name == "ENGINE_GUARD"]
    assert guard_events[0][1] == 1 and guard_events[0][0] - t_bad <= g.config.command_deadline_s + 0.1
    assert system.executive.task_stats["guidance"].failures >= 190
    safe = engine.history[-100:]
    assert all(g.config.min_throttle <= t <= 1.0 for t, _ in safe)  # powered: never a cut
    assert len({p for _, p in safe}) == 1  # the last valid attitude, held
    assert abs(bench.v) < 2.0 and bench.h > 50.0  # the descent was arrested
    g.config.approach_decel_mps2 = 0.6
    system.executive.run(slots=30_000, until=g.touched_down)
    assert [args[0] for _, name, args in events if name == "ENGINE_GUARD"] == [1, 0]
    assert bench.touchdown_speed_mps is not None and bench.touchdown_speed_mps <= 1.0


def test_hrd002_the_guard_refuses_non_finite_or_out_of_range_offers_and_keeps_the_engine_off_before_descent():
    c = GuidanceConfig()
    engine = CheckedEngine()
    events = []
    clock = [0.0]

    class Sink:
        def emit(self, name, *args):
            events.append((name, args))

    guard = EngineGuard(engine, Sink(), lambda: clock[0], lambda: (-30.0, 0.0, 500.0, True), c.arrest_law(),
                        c.max_pitch_rad, c.full_flow_kg_per_s, c.dry_mass_kg, c.command_deadline_s)
    assert guard.offer(0.0, 0.0, False, 600.0)  # idle: engine off
    clock[0] = 1.0
    guard.run(0)
    assert engine.history[-1] == (0.0, 0.0) and ("ENGINE_GUARD", (1,)) in events  # never lit before descent
    for bad in ((math.nan, 0.0), (0.5, math.inf), (1.5, 0.0), (0.05, 0.0), (0.5, 3.0)):
        assert not guard.offer(*bad, True, 600.0)
    assert guard.refused == 5 and all(math.isfinite(t) and math.isfinite(p) for t, p in engine.history)
    for k in range(3):
        assert guard.offer(0.5, 0.1, True, 600.0)
    assert not guard.safed and engine.history[-1] == (0.5, 0.1) and ("ENGINE_GUARD", (0,)) in events
    clock[0] = 2.0
    guard.run(0)
    throttle, pitch = engine.history[-1]
    expected = ArrestLaw(c.max_thrust_n, c.min_throttle, c.gravity_mps2, c.body_radius_m, c.arrest_time_constant_s)
    assert pitch == 0.1 and throttle == expected.throttle(600.0, 0.1, -30.0, 0.0, 500.0) and throttle == 1.0


@given(v=st.floats(-200, 50), mass=st.floats(340, 710), pitch=st.floats(-1.6, 1.6), vx=st.floats(0, 1700))
def test_hrd002_the_arrest_throttle_is_always_a_valid_powered_command(v, mass, pitch, vx):
    c = GuidanceConfig()
    throttle = c.arrest_law().throttle(mass, pitch, v, vx, 1000.0)
    assert math.isfinite(throttle) and c.min_throttle <= throttle <= 1.0


def test_hrd002_the_open_loop_arrest_brings_its_model_to_a_hover_without_climbing():
    law = GuidanceConfig().arrest_law()
    law.model_v = -40.0
    for _ in range(600):  # 60 s at 10 Hz
        law.open_loop(500.0, 0.0, 0.0, 1000.0, 0.1)
    assert -0.5 < law.model_v <= 0.2


# -- HRD-003: every parameter typed and bounded ---------------------------------------------
@pytest.mark.parametrize("section, values, words", [
    ("run", {"auto_start": "false"}, "[run] auto_start = 'false': expected true or false"),
    ("guidance", {"max_thrust_n": "2500"}, "[guidance] max_thrust_n = '2500': expected a number in [1, 1e+07] N"),
    ("guidance", {"approach_decel_mps2": -1.0}, "[guidance] approach_decel_mps2 = -1.0: expected a number in"),
    ("fdir", {"expected_below_m": {"lidar": 3.0}}, "[fdir] expected_below_m"),
    ("fdir", {"health": {"suspect_after": 2.5}}, "[fdir.health] suspect_after = 2.5: expected a whole number"),
    ("schedule", {"guidance": {"divisor": 0}}, "[schedule.guidance] divisor = 0"),
    ("executive", {"clock": "sundial"}, "[executive] clock = 'sundial': expected one of 'realtime', 'lockstep'"),
    ("estimator", {"parameters": {"gate_sigma": "4"}}, "[estimator.parameters] gate_sigma"),
    ("guidance", {"dry_mass_kg": 800.0}, "dry_mass_kg 800.0 must be below initial_mass_kg"),
    ("warp", {"factor": 9}, "unknown section 'warp'"),
])
def test_hrd003_a_config_value_of_the_wrong_type_or_range_is_refused_naming_where(section, values, words):
    with pytest.raises(ConfigError) as err:
        wiring.build({"executive": {"clock": "lockstep"}, section: values}, source="board.toml")
    assert words in str(err.value) and "board.toml" in str(err.value)


def test_hrd003_sensor_keys_are_numbers_or_names_and_the_schedule_reaches_guidance():
    system = wiring.build({"executive": {"clock": "lockstep"},
                           "fdir": {"expected_below_m": {"0": 4000, "short_range": 120.0}},
                           "schedule": {"guidance": {"divisor": 5}}})
    assert system.fdir.config.expected_below_m == {0: 4000.0, 1: 120.0}
    assert system.guidance.period_s == pytest.approx(0.05)
    partial = wiring.build({"executive": {"clock": "lockstep"}, "fdir": {"expected_below_m": {"1": 100}}})
    assert partial.fdir.config.expected_below_m == {0: 5000.0, 1: 100.0}  # the primary keeps its default


def test_hrd003_set_param_out_of_range_is_refused_and_changes_nothing(tmp_path):
    system = wiring.build({"executive": {"clock": "lockstep"}, "commands": {"key_file": key_file(tmp_path)}})
    gate = system.commands.gate
    index = [p.name for p in D.parameters].index("approach_decel_mps2")
    before = system.guidance.config.approach_decel_mps2
    bad = system.commands.handle(build_command(KEY, "SET_PARAM", 1, index, -1.0, epoch=gate.epoch))
    assert isinstance(bad, Rejection) and bad.code == D.rejections["bad_argument"] and "expected a number" in bad.reason
    assert system.guidance.config.approach_decel_mps2 == before
    good = system.commands.handle(build_command(KEY, "SET_PARAM", 2, index, 0.9, epoch=gate.epoch))
    assert isinstance(good, Telecommand) and system.guidance.config.approach_decel_mps2 == 0.9
    assert isinstance(system.commands.handle(build_command(KEY, "SET_PARAM", 3, 99, 1.0, epoch=gate.epoch)),
                      Rejection)


def test_hrd003_every_config_dataclass_field_has_a_schema_entry_with_its_default_in_range():
    from dataclasses import MISSING, fields

    from flight.config import schema
    from flight.fdir.monitor import FdirConfig
    from flight.fdir.sensor_health import HealthConfig

    for cls, spec in ((GuidanceConfig, schema()["guidance"]), (FdirConfig, schema()["fdir"]),
                      (HealthConfig, schema()["fdir"]["health"])):
        for f in fields(cls):
            assert f.name in spec, f"{cls.__name__}.{f.name} has no [config] entry"
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            if f.name not in ("health",) and default is not None:  # None: an optional key, absent
                spec[f.name].convert(default)  # raises if the default is out of its own range


def test_hrd003_lander_flight_refuses_a_bad_file_with_exit_2_and_the_place(tmp_path):
    cfg = tmp_path / "board.toml"
    cfg.write_text('[run]\nauto_start = "false"\n')
    p = subprocess.run([sys.executable, "-m", "flight.app", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 2 and f"{cfg}: [run] auto_start = 'false'" in p.stderr and "Traceback" not in p.stderr


# -- HRD-004: no exception leaves the executive -----------------------------------------------
def test_hrd004_a_full_disk_and_a_failing_link_cost_records_not_the_flight(tmp_path):
    class BrokenLink:
        def send(self, packet):
            raise OSError(5, "Input/output error")

        def receive(self):
            raise OSError(5, "Input/output error")

        def close(self):
            pass

    system, _, _, events = bench_system({"log": {"dir": str(tmp_path), "flush_period_s": 0.05}}, link=BrokenLink())
    log = system.log
    os.close(log._fd)
    log._fd = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC
    system.executive.run(slots=300)
    deadline = time.monotonic() + 5.0
    while log.write_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the writer thread meets the full disk
    system.executive.run(slots=100)
    hk = wiring.housekeeping(system)
    assert system.executive.stats.slots_run == 400 and system.executive.failures == 0
    assert hk["log_write_errors"] >= 1 and hk["link_errors"] > 0 and hk["log_records_lost"] > 0
    assert any(name == "LOG_WRITE_FAILED" for _, name, _ in events)
    system.close()


def test_hrd004_housekeeping_names_the_last_failed_task_and_counts_failures():
    from flight.executive.scheduler import ScheduledTask

    system, _, _, _ = bench_system()
    state = {"fail": True}

    def flaky(_deadline):
        if state["fail"]:
            raise ValueError("flaky")

    system.executive.add_task(ScheduledTask("flaky_sensor", flaky, 10, 0, 100.0))
    system.executive.run(slots=100)
    packet = system.encoder.housekeeping(system.time(), wiring.housekeeping(system))
    values = decode_tm(packet).values
    assert values["last_failed_task"] == "flaky_sensor" and values["task_failures"] == 10


def test_hrd004_an_event_that_cannot_be_encoded_is_counted_not_raised():
    system, _, _, _ = bench_system()
    system.events.emit("NO_SUCH_EVENT", 1.0)
    system.events.emit("PHASE", "not a number")  # type: ignore[arg-type]
    assert system.events.failed == 2


def test_hrd004_a_flood_of_garbage_on_the_uplink_is_bounded_and_counted():
    """Unauthenticated traffic cannot fill the downlink or the log: 16 packets per run, at most
    10 rejection reports per second, the rest counted."""
    class Flood:
        def send(self, packet):
            sent.append(packet)

        def receive(self):
            return [b"\x18\x10garbage" * 3] * 200

        def close(self):
            pass

    sent = []
    system, _, _, _ = bench_system(link=Flood())
    system.executive.run(slots=1000)  # 10 s: 100 command runs, 20,000 packets offered
    verifications = [p for p in sent if decode_tm(p).kind == "verification"]
    assert system.commands.dropped == 100 * 184 and len(verifications) <= 10 * 10 + 10
    assert system.commands.unreported == 100 * 16 - len(verifications)


# -- HRD-006: commands are not replayable across restarts -------------------------------------
def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hrd006_a_command_recorded_before_a_restart_is_refused_after_it(tmp_path):
    """HRD-006: lander-flight as a real process: ARM accepted, the process killed (-9) and
    started again, the recorded ARM replayed: refused; a fresh ARM for the new epoch: accepted."""
    ground = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ground.bind(("127.0.0.1", 0))
    ground.settimeout(0.2)
    port = free_port()
    cfg = tmp_path / "board.toml"
    cfg.write_text(f'[link]\nkind = "udp"\nbind_port = {port}\nremote_port = {ground.getsockname()[1]}\n'
                   f'[commands]\nkey_file = "{key_file(tmp_path)}"\n')

    def start():
        return subprocess.Popen([sys.executable, "-m", "flight.app", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def listen(seconds):
        got, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                got.append(decode_tm(ground.recv(4096)))
            except (TimeoutError, TelemetryError):
                pass
        return got

    def epoch_of(packets):
        return [p.values["command_epoch"] for p in packets if p.kind == "housekeeping"][-1]

    def verdicts(packets):
        return [(p.values[0], p.values[2]) for p in packets if p.kind == "verification"]

    first = start()
    try:
        epoch = epoch_of(listen(1.0))
        arm = build_command(KEY, "ARM", 1, epoch=epoch)
        ground.sendto(arm, ("127.0.0.1", port))
        assert (7, 0) in verdicts(listen(0.5))  # completed
    finally:
        first.kill()
        first.wait()
    second = start()
    try:
        new_epoch = epoch_of(listen(1.0))
        assert new_epoch != epoch
        ground.sendto(arm, ("127.0.0.1", port))  # the recording
        assert verdicts(listen(0.5)) == [(2, D.rejections["unauthenticated"])]
        ground.sendto(build_command(KEY, "ARM", 1, epoch=new_epoch), ("127.0.0.1", port))
        assert (7, 0) in verdicts(listen(0.5))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)


# -- HRD-009: the property -------------------------------------------------------------------
fault_schedules = st.fixed_dictionaries({
    "gaps": st.lists(st.tuples(st.floats(0.5, 40.0), st.floats(0.01, 10.0)), max_size=3),
    "task_failures": st.lists(st.tuples(st.sampled_from(["estimation", "fdir", "guidance", "housekeeping",
                                                         "commands", "engine_guard"]),
                                        st.floats(0.0, 40.0), st.floats(0.01, 3.0)), max_size=3),
    "disk_full": st.lists(st.tuples(st.floats(0.0, 40.0), st.floats(0.1, 10.0)), max_size=2),
    "garbage": st.lists(st.tuples(st.floats(0.0, 40.0), st.binary(max_size=120)), max_size=6),
})


@settings(max_examples=25, deadline=None)
@given(schedule=fault_schedules)
def test_hrd009_under_any_fault_schedule_the_executive_runs_and_the_engine_stays_valid(schedule, tmp_path_factory):
    """HRD-009 (property): random IMU gaps (0.01-10 s), task exceptions, log write failures and
    malformed commands: the executive keeps running every slot, every engine command is finite
    and within the engine's limits, and every event emitted was sent, suppressed or counted."""
    tmp = tmp_path_factory.mktemp("log")

    class Uplink:
        def send(self, packet):
            pass

        def receive(self):
            now = system.time()
            due = [raw for t, raw in schedule["garbage"] if now - 0.1 < t <= now]
            return due

        def close(self):
            pass

    gaps = [(a, a + d) for a, d in schedule["gaps"]]
    system, _, engine, _ = bench_system({"log": {"dir": str(tmp), "flush_period_s": 0.01}}, gaps=gaps,
                                        link=Uplink())
    for entry in system.executive.schedule:
        windows = [(a, a + d) for name, a, d in schedule["task_failures"] if name == entry.name]
        if windows:
            run = entry.run

            def failing(deadline, run=run, windows=windows):
                if any(a <= system.time() < b for a, b in windows):
                    raise RuntimeError("injected")
                run(deadline)

            object.__setattr__(entry, "run", failing)
    system.executive._table = system.executive._slot_table(system.executive.schedule, system.executive.task_stats)
    sent_events = [0, 0]
    downlink = system.events.downlink

    def counting(pkt):
        tm = decode_tm(pkt)
        if tm.kind == "event":
            sent_events[tm.name == "EVENTS_SUPPRESSED"] += 1
        downlink(pkt)

    system.events.downlink = counting
    log, real_fd = system.log, system.log._fd
    system.guidance.arm()
    system.guidance.start_descent()
    for k in range(45):  # 45 s, a second at a time
        full = any(a <= k < a + d for a, d in schedule["disk_full"])
        with log._lock:
            if full and log._fd == real_fd:
                log._fd = os.open("/dev/full", os.O_WRONLY)
            elif not full and log._fd not in (real_fd, -1):
                os.close(log._fd)
                log._fd = real_fd = os.open(log.current, os.O_WRONLY | os.O_APPEND)
        system.executive.run(slots=100)
        if system.guidance.touched_down():
            break
    system.close()
    c = system.guidance.config
    assert system.executive.stats.slots_run == system.executive.next_slot  # every slot ran
    for throttle, pitch in engine.history:
        assert math.isfinite(throttle) and math.isfinite(pitch)
        assert throttle == 0.0 or c.min_throttle - 1e-9 <= throttle <= 1.0 + 1e-9
        assert abs(pitch) <= c.max_pitch_rad + 1e-9
    emitted = sum(system.events.counts.values())
    assert emitted == sent_events[0] + system.events.suppressed_total + system.events.failed


# -- HRD-007: a flight-only install -----------------------------------------------------------
@pytest.mark.slow
def test_hrd007_the_wheel_installs_without_extras_and_flies_without_numpy(tmp_path):
    """HRD-007: build the wheel, install it with no extras into a fresh venv, run lander-flight
    for 2 s: it flies, and numpy is never imported (-X importtime lists every import)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), root], check=True,
                   timeout=600)
    (wheel,) = dist.glob("lander_fsw-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout.lower()
    assert "numpy" not in listed and "matplotlib" not in listed and "pyserial" in listed
    cfg = tmp_path / "board.toml"
    cfg.write_text('[executive]\nclock = "realtime"\n')
    p = subprocess.run([str(venv / "bin" / "lander-flight"), "--config", str(cfg), "--duration", "2", "--auto-start"],
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in p.stderr.splitlines() if "import time:" in line}
    assert "flight" in imported and "numpy" not in imported and "ground" not in imported and "hil" not in imported
    assert "phase APPROACH" in p.stdout


# -- HRD-005: a log you can always read ------------------------------------------------------
def test_hrd005_lander_log_decodes_every_record_and_reports_damage(tmp_path):
    """HRD-005: a flight's log (two boots, the first torn mid-record) decodes to JSON lines
    and CSV: boot records, events, housekeeping, verification and the accepted command; the
    torn bytes are a row of kind 'skipped', never a crash."""
    import csv
    import io
    import json

    from flight.telemetry.flightlog import log_files

    logdir = tmp_path / "log"
    for boot in (1, 2):
        system = wiring.build({"executive": {"clock": "lockstep"}, "log": {"dir": str(logdir)},
                               "commands": {"key_file": key_file(tmp_path)}})
        system.commands.handle(build_command(KEY, "ARM", 1, epoch=system.commands.gate.epoch))
        system.executive.run(slots=200)
        system.close()
        if boot == 1:
            with open(log_files(logdir)[0], "ab") as fh:
                fh.write(b"\xa5LR\x5a\x01\x00\x40torn")  # power lost mid-record
    out = subprocess.run([sys.executable, "-m", "hil.cli", "log", str(logdir)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("boot") == 2 and kinds.count("command") == 2 and kinds.count("skipped") == 1
    assert {"housekeeping", "event", "verification"} <= set(kinds)
    assert [r["boot"] for r in rows if r["kind"] == "command"] == [1, 2]
    assert next(r for r in rows if r["kind"] == "command")["name"] == "ARM"
    assert [r["name"] for r in rows if r["kind"] == "skipped"] == ["torn record"]
    hk = subprocess.run([sys.executable, "-m", "hil.cli", "log", str(logdir), "--format", "csv", "--kind",
                         "housekeeping"], capture_output=True, text=True, timeout=60, check=False)
    table = list(csv.DictReader(io.StringIO(hk.stdout)))
    assert len(table) == 2 * 20 and float(table[-1]["time_s"]) == pytest.approx(1.95)  # 10 Hz, half a cycle in
    missing = subprocess.run([sys.executable, "-m", "hil.cli", "log", str(tmp_path / "nope")], capture_output=True,
                             text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


# -- HRD-010: an IMU gap's record and an estimation that fails ---------------------------------
def test_hrd010_a_gap_is_bridged_with_its_own_record_of_guidance_never_an_older_one():
    """HRD-010: guidance's record of what it commanded while the IMU was lost serves the gap it
    was made in only. A record left from an earlier gap (noticed at 10.1 s, 0.2 s of thrust,
    a 0.1 rad turn) must not be applied to a later 80 ms gap guidance never noticed: across it
    the pitch and horizontal speed move only as the held (zero) force and the silent gyro say.
    A record noticed within its gap's detection time is applied."""
    from flight.devices.interfaces import ImuSample
    from flight.estimation.altitude_filter import AltitudeFilter, Policy
    from flight.estimation.task import EstimationTask

    class Imu:
        def __init__(self):
            self.queue = []

        def read(self):
            return self.queue.pop(0) if self.queue else None

    def fly(record, gap):
        now = [0.0]
        imu = Imu()
        f = AltitudeFilter(Policy.parse("terrain-aware"), x0=(2000.0, -20.0, 0.0, 0.0),
                           var0=(100.0, 1.0, 1e-4, 100.0))
        task = EstimationTask(f, imu, [], lambda: now[0], wiring.EventService(
            wiring.TelemetryEncoder(), wiring.Downlink(None, None), lambda: now[0]))
        task.commanded_force = lambda: record
        before = None
        for step in range(1, 1101):
            now[0] = round(step * 0.01, 2)
            if not gap[0] <= now[0] < gap[1]:
                imu.queue.append(ImuSample(now[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
            task.run(0)
            if now[0] == round(gap[0] - 0.01, 2):
                before = (task.attitude.pitch_rad, task.vx)
        return task.attitude.pitch_rad - before[0], task.vx - before[1]

    stale = (0.2 * 3.0, 0.2 * -3.0, 0.2, 10.1, 0.1)
    turn, dv = fly(stale, (10.41, 10.49))
    assert abs(turn) < 1e-9 and abs(dv) < 1e-9
    own = (0.2 * 3.0, 0.2 * -3.0, 0.2, 10.46, 0.1)  # noticed 50 ms into this gap (FDIR), within a cycle
    turn, dv = fly(own, (10.41, 10.70))
    assert turn == pytest.approx(0.1, abs=1e-5) and dv == pytest.approx(-0.6, abs=1e-4)  # (+ the transport rate)


def test_hrd010_an_estimation_that_keeps_failing_is_a_lost_imu_to_guidance():
    """HRD-010: an estimation task that raises every run publishes what the filter holds, and
    FDIR calls the IMU lost (the estimate is as stale as a silent IMU's): guidance holds, then
    arrests, and the engine commands stay valid; when estimation runs again, all is back."""
    system, bench, engine, events = bench_system()
    system.guidance.arm()
    system.guidance.start_descent()
    system.executive.run(slots=1000)
    broken = {"on": True}
    real_track = system.estimation._track

    def failing(now):
        if broken["on"]:
            raise RuntimeError("profile exploded")
        return real_track(now)

    system.estimation._track = failing
    system.executive.run(slots=20)
    assert system.fdir.summary.imu_lost  # estimation has not completed for > 50 ms
    assert any(name == "IMU_HEALTH" and args == (1,) for _, name, args in events)
    held = engine.history[-1]
    system.executive.run(slots=150)  # guidance holds its last command for 2 s ...
    assert engine.history[-1] == held
    system.executive.run(slots=1500)  # ... then arrests the descent on its own model
    assert all(math.isfinite(t) and 0.0 <= t <= 1.0 and math.isfinite(p) for t, p in engine.history)
    assert bench.h > 500.0 and abs(bench.v) < 3.0  # near a hover, far from the ground
    broken["on"] = False
    system.executive.run(slots=20)
    assert not system.fdir.summary.imu_lost and system.executive.failures >= 1600
