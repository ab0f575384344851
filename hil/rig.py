"""The HIL rig: the ground simulator, the sensor emulator and the flight software as separate
processes joined by real ptys, an I2C bridge and UDP (`lander hil`).

    lander hil SCENARIO --sil [--realtime] [--flight-arch x86_64|aarch64] [--seed N] [--estimator E]
    lander hil SCENARIO --emulator /dev/ttyACM0 --flight udp:HOST:PORT [--key FILE]   (the bench)

This process owns the simulated world (`ground/sim`) and, in lockstep, time. Per 10 ms step:
the flight's WAIT (what it wrote on its UARTs, its published state) → a SYNC drains what it
wrote into the emulator (ENGINE frames come back: the world's engine) → the world steps →
every sensor's value (IMU body-frame specific force and rate, a fresh range for each altimeter:
a real rangefinder measures when asked, contact) → one VALUES frame + SYNC on the stream → ACK
(the emulator applied it and every byte it wrote on a device line is at the flight's side) →
GO. The flight's real drivers talk to the emulator over the rangefinder and engine ptys and the
I2C bridge; nothing is shared in memory. `--realtime` and the bench run on the wall clock
instead: the flight on its monotonic clock, the rig stepping the world every 10 ms.

The rig records and scores with hil/sil.py's own recorder and summary (fed from the flight's
per-slot report over the clock socket, or its housekeeping in real time), and leaves what
`lander sim` leaves (summary.json, trace.csv, plot.png) plus the flight's telemetry decoded
(telemetry.jsonl), its log folder (flight-log/), its configuration, output and end-of-run report,
the preflight's output, and `filter.f64` (the flight's per-slot estimate as raw doubles: the
altitude filter's outputs, for bit-for-bit comparisons between runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

from board.emulator import stream as st
from flight import wiring
from flight.devices import engine_link
from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    ImuSample,
    RangeSample,
)
from flight.estimation.altitude_filter import Policy, Status
from flight.estimation.profile import ProfileStatus
from flight.guidance.descent import Phase
from ground.scenarios import Scenario
from ground.sim.terrain import Terrain
from ground.sim.world import World
from hil import rig_faults, sil
from hil.rig_faults import RigFault, Schedule
from hil.rig_links import ClockServer, EmulatorProcess, FlightProcess, RigError, Stream, Telemetry

__all__ = ["RigError", "RigResult", "RigSettings", "campaign_runner", "run", "run_to_dir"]

STEP_NS = 10_000_000
BENCH_G_MPS2 = 9.80665  # preflight is run on a bench on Earth, at rest
REQUEST_BYTES = len(b">Md1\r")
COMMAND_FRAME_BYTES = len(engine_link.frame(engine_link.encode_command(0, False, 0.0, 0.0)))  # 13
SLOT_TIMEOUT_S = 120.0  # one flight slot (qemu-user on a loaded machine is slow; a dead flight is seen sooner)
DRAIN_TIMEOUT_S = 0.5  # the flight's bytes not in the emulator by then: a lockstep stall
FLIGHT_FIFO_PRIORITY = 20  # real time: the flight above the rig and the emulator (10), as on the Pi
RIG_FIFO_PRIORITY = 10
LOCKSTEP_BUS_TIMEOUT_S = 10.0  # the I2C bridge's answer time in lockstep (an emulator restart takes ~1 s)


@dataclass(frozen=True)
class RigSettings:
    estimator: str = "terrain-aware"
    seed: int = 0
    realtime: bool = False
    flight_arch: str = "x86_64"  # or "aarch64": qemu-user, board.arm.prepare()
    faults: tuple[RigFault, ...] = ()
    emulator_port: str | None = None  # the bench: the Pico's USB serial (no emulator process started)
    flight_address: tuple[str, int] | None = None  # the bench: the flight computer's telemetry/command link
    key_file: str | None = None  # the bench: the command key (ARM, START_DESCENT)
    ground_port: int = 10015  # the bench: where the flight sends telemetry
    bench_wait_s: float = 600.0  # the bench: how long to wait for the flight computer to come up
    record: bool = True
    trace_hz: float = 10.0
    plot: bool = True

    @property
    def bench(self) -> bool:
        return self.emulator_port is not None


@dataclass
class RigResult:
    summary: dict[str, Any]
    trace: list[tuple] = field(default_factory=list)
    events: list[tuple[float, str, tuple]] = field(default_factory=list)
    terrain: Terrain | None = None


# -- what the flight publishes, in the shape hil/sil.py's recorder and summary read ------------
class _Counts:
    def __init__(self) -> None:
        self.by_sensor: dict[int, dict[str, Any]] = {}

    def sensor_counts(self, sensor: int) -> dict[str, Any]:
        return self.by_sensor.get(sensor, {"steps": 0, "rejected": 0, "stuck": 0, "locked_out": False})


class FlightView:
    """The parts of a `wiring.FlightSystem` that `sil._Recorder` and `sil.summarise` read, filled
    from the flight process: its per-slot report (lockstep), its housekeeping (real time), its
    end-of-run report. Nothing of the flight runs here."""

    FIELDS: ClassVar[dict[str, int]] = {name: i for i, name in enumerate(wiring.RIG_REPORT)}

    def __init__(self) -> None:
        self.estimation = SimpleNamespace(output=SimpleNamespace(estimate=None), vx=0.0, filter=_Counts())
        self.fdir = SimpleNamespace(last_outcome={}, summary=SimpleNamespace(zero_trap_events=0))
        self.guidance = SimpleNamespace(phase=Phase.IDLE, throttle=0.0, pitch_rad=0.0, touchdown_time_s=None)
        self.events = SimpleNamespace(counts={})
        self.executive = SimpleNamespace(stats=SimpleNamespace(total_slips=0), task_stats={})

    def from_report(self, v: tuple[float, ...]) -> None:
        f = self.FIELDS
        self.estimation.output.estimate = SimpleNamespace(
            altitude_m=v[f["altitude_m"]], vertical_velocity_mps=v[f["vertical_velocity_mps"]],
            terrain_elevation_m=v[f["terrain_m"]], height_above_terrain_m=v[f["hat_m"]],
            height_above_terrain_sigma_m=v[f["hat_sigma_m"]]) if v[f["has_estimate"]] else None
        self.estimation.vx = v[f["horizontal_speed_mps"]]
        g = self.guidance
        g.phase, g.throttle, g.pitch_rad = Phase(int(v[f["phase"]])), v[f["throttle"]], v[f["pitch_rad"]]
        td = v[f["touchdown_time_s"]]
        g.touchdown_time_s = None if math.isnan(td) else td
        for sensor, prefix in ((PRIMARY_ALTIMETER, "primary"), (SHORT_RANGE_ALTIMETER, "short_range")):
            t, r, code = v[f[f"{prefix}_time_s"]], v[f[f"{prefix}_range_m"]], v[f[f"{prefix}_code"]]
            if math.isnan(t):
                continue
            old = self.fdir.last_outcome.get(sensor)
            if old is not None and old.time_s == t and old.code == code:
                continue
            c = int(code)
            self.fdir.last_outcome[sensor] = SimpleNamespace(
                sensor_id=sensor, time_s=t, range_m=r, code=code, status=Status(c) if c >= 0 else None,
                profile=ProfileStatus(wiring.OUTCOME_PROFILE - c) if c <= wiring.OUTCOME_PROFILE else None,
                fused=c != wiring.OUTCOME_NOT_FUSED,
                error={wiring.OUTCOME_INVALID: "device flagged invalid", wiring.OUTCOME_ERROR: "device error"}.get(c, ""))

    def from_housekeeping(self, hk: dict[str, Any]) -> None:
        self.estimation.output.estimate = SimpleNamespace(
            altitude_m=hk["altitude_m"], vertical_velocity_mps=hk["vertical_velocity_mps"],
            terrain_elevation_m=hk["terrain_m"], height_above_terrain_m=hk["hat_m"],
            height_above_terrain_sigma_m=hk["hat_sigma_m"])
        self.estimation.vx = hk["horizontal_speed_mps"]
        g = self.guidance
        g.phase, g.throttle, g.pitch_rad = Phase(int(hk["phase"])), hk["throttle"], hk["pitch_rad"]
        self.executive.stats.total_slips = hk["cycle_slips"]
        if g.touchdown_time_s is None and g.phase in (Phase.TOUCHDOWN, Phase.SAFE):
            g.touchdown_time_s = hk["time_s"]

    def from_final(self, doc: dict[str, Any]) -> None:
        self.estimation.filter.by_sensor = {int(k): v for k, v in doc["sensor_counts"].items()}
        self.guidance.phase = Phase[doc["phase"]]
        self.guidance.touchdown_time_s = doc["touchdown_time_s"]
        self.fdir.summary.zero_trap_events = doc["zero_trap_events"]
        self.events.counts = dict(doc["events"])
        self.executive.stats.total_slips = doc["total_slips"]
        self.executive.task_stats = {name: SimpleNamespace(**t) for name, t in doc["tasks"].items()}


# -- the world's sensors as the emulator must report them ----------------------------------
def take_over_ranges(world: World) -> None:
    """The rig measures both altimeters itself, every step (a real rangefinder measures when it
    is asked, whenever that is): the world's own schedule for them is switched off."""
    world.primary_model.next_time_s = math.inf
    world.short_model.next_time_s = math.inf


def fresh_range(world: World, sensor: str) -> RangeSample | None:
    """This step's reading of an altimeter (None: no return), from the simulator's sensor model
    with its faults; nothing after touchdown (on the ground: below every minimum range)."""
    if world.touchdown is not None:
        return None
    model = world.primary_model if sensor == "primary" else world.short_model
    s = world.state
    sample = model.sample(world.time_s, s.altitude_m, s.downrange_m, world.body.state.pitch_rad, world.hat_m)
    if sample is not None and sample.valid and model.working(world.time_s, world.hat_m):
        world.ground_seen_s = world.time_s  # the recorder's "seen" (scoring only), as the world's own schedule does
    return sample


def dead(world: World, sensor: str) -> bool:
    """A `dead` fault of the simulator on this altimeter now: the emulated part goes silent."""
    model = world.primary_model if sensor == "primary" else world.short_model
    return any(f.kind == "dead" and f.active(world.time_s) for f in model.faults)


def sensor_values(step: int, time_ns: int, imu: ImuSample, primary: RangeSample | None,
                  short: RangeSample | None, contact: bool, lockstep: bool) -> st.Values:
    if primary is None:
        rf_mm, rf_status, rf_code = 0, st.RF_NO_TARGET, 0
    elif not primary.valid:
        rf_mm, rf_status, rf_code = 0, st.RF_ERROR, 301  # the unit's own "no valid measurement"
    else:
        rf_mm, rf_status, rf_code = max(0, round(primary.range_m * 1000.0)), st.RF_VALID, 0
    if short is None or not short.valid:
        lidar_mm, lidar_status = 0, st.LIDAR_NO_TARGET
    else:
        lidar_mm, lidar_status = max(0, round(short.range_m * 1000.0)), st.LIDAR_VALID
    return st.Values(step, time_ns // 1000, (imu.accel_x_mps2, imu.accel_y_mps2, imu.accel_z_mps2),
                     (imu.gyro_x_radps, imu.gyro_y_radps, imu.gyro_z_radps), 25.0, rf_mm, rf_status, rf_code,
                     lidar_mm, lidar_status, contact, False, lockstep)


def bench_at_rest(lockstep: bool = False) -> st.Values:
    """What preflight expects on a bench: at rest under Earth's 1 g, both altimeters seeing the
    floor a little way off, the controller disarmed."""
    return st.Values(0, 0, (0.0, 0.0, BENCH_G_MPS2), (0.0, 0.0, 0.0), 25.0, 2_000, st.RF_VALID, 0,
                     1_500, st.LIDAR_VALID, True, False, lockstep)


class DeviceFaults:
    """What the emulator has been told (unplugged, silent, lying) per device, and the FAULT
    frames that take it to what the rig's faults and the simulator's state want now."""

    def __init__(self) -> None:
        self.told: dict[str, tuple[bool, bool, float | None]] = {d: (False, False, None) for d in rig_faults.DEVICES}

    def frames(self, want: dict[str, tuple[bool, bool, float | None]]) -> bytes:
        out = b""
        for device, (unplug, silent, lie) in want.items():
            told = self.told[device]
            if told == (unplug, silent, lie):
                continue
            code = rig_faults.DEVICES[device]
            if (told[0] and not unplug) or (told[1] and not silent) or (told[2] is not None and lie != told[2]):
                out += st.encode_fault(st.Fault(code, st.FAULT_CLEAR))
                told = (False, False, None)
            if unplug and not told[0]:
                out += st.encode_fault(st.Fault(code, st.FAULT_UNPLUG))
            if silent and not told[1]:
                out += st.encode_fault(st.Fault(code, st.FAULT_SILENT))
            if lie is not None and told[2] is None:
                out += st.encode_fault(st.Fault(code, st.FAULT_LIE, lie))
            self.told[device] = (unplug, silent, lie)
        return out


# -- the flight process -----------------------------------------------------------------------
def flight_config(scenario: Scenario, estimator: str, terrain: Terrain, seed: int, emu_dir: Path,
                  out: Path, telemetry_port: int, clock_socket: Path | None) -> dict[str, Any]:
    """The in-process SIL's flight configuration (hil/sil.py: what the board is told at descent
    start, the vehicle), with the real drivers on the emulator's links, the rig's clock (or the
    monotonic one), telemetry to the rig and a log folder. The rangefinder polls at the
    scenario's primary rate; the altimeters' noise models are the scenario's sensors'."""
    cfg = sil.flight_config(scenario, estimator, terrain, seed)
    p, s = scenario.primary, scenario.short_range
    if not 0.5 <= p.rate_hz <= 20.0:
        raise RigError(f"{scenario.name}: the primary rangefinder runs at {p.rate_hz:g} Hz; its driver polls at "
                       "0.5..20 Hz (eye-safe units)")
    cfg["executive"] = {"clock": "rig", "rig_socket": str(clock_socket)} if clock_socket else {"clock": "realtime"}
    cfg["devices"] = {
        "kind": "real",
        "preflight_record": str(out / "preflight.json"),
        "rangefinder": {"device": str(emu_dir / "rangefinder"), "baudrate": 115200, "rate_hz": float(p.rate_hz),
                        "sigma_m": p.sigma_m, "sigma_per_m": p.sigma_per_m, "min_range_m": p.min_range_m},
        "engine": {"device": str(emu_dir / "engine"), "baudrate": 115200, "status_timeout_s": 0.3},
        # lockstep: a bus answer is waited for like the rig's GO (a slow answer on a loaded machine
        # must not be a timeout in one run and not in the next); real time: the part's 5 ms
        "i2c": {"bridge": str(emu_dir / "i2c.sock"), **({"timeout_s": LOCKSTEP_BUS_TIMEOUT_S} if clock_socket else {})},
        "imu": {"address": 0x68, "mounting": "+x+y+z"},
        "short_range": {"address": 0x62, "rate_hz": min(max(float(s.rate_hz), 1.0), 100.0), "sigma_m": s.sigma_m,
                        "sigma_per_m": s.sigma_per_m, "min_range_m": s.min_range_m,
                        "max_range_m": min(s.max_range_m, 655.35)},
    }
    cfg["link"] = {"kind": "udp", "bind_host": "127.0.0.1", "bind_port": 0, "remote_host": "127.0.0.1",
                   "remote_port": telemetry_port}
    cfg["log"] = {"dir": str(out / "flight-log"), "flush_period_s": 1.0}
    if clock_socket is None:  # real time: what the Pi's unit asks for, where this machine permits it
        cfg["realtime"] = {"freeze_gc": True, "lock_memory": True, "fifo_priority": FLIGHT_FIFO_PRIORITY}
    cfg.pop("run", None)
    return cfg


@contextlib.contextmanager
def fifo_priority(priority: int, pids: tuple[int, ...] = ()):
    """SCHED_FIFO for this process (and `pids`) while in the block, when permitted (root or
    CAP_SYS_NICE); the old policy back after. Yields whether it was granted. Children started
    inside inherit it."""
    changed = []  # each process set so far, with what it had: restored even if a later one fails
    granted = True
    try:
        for pid in (0, *pids):
            before = (pid, os.sched_getscheduler(pid), os.sched_getparam(pid))
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(priority))
            changed.append(before)
    except (PermissionError, OSError, AttributeError):
        granted = False
        for pid, policy, param in changed:  # all or none: a rig at FIFO without its emulator spins
            with contextlib.suppress(OSError):
                os.sched_setscheduler(pid, policy, param)
        changed = []
    try:
        yield granted
    finally:
        for pid, policy, param in changed:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(pid, policy, param)


def write_toml(path: Path, doc: dict[str, Any]) -> None:
    import tomli_w

    path.write_text(tomli_w.dumps(doc), encoding="utf-8")


def flight_command(arch: str, *args: str) -> tuple[list[str], dict[str, str] | None]:
    """`lander-flight ARGS` on this machine, or on aarch64 CPython under qemu-user."""
    if arch == "x86_64":
        return [sys.executable, "-m", "flight.app", *args], None
    if arch != "aarch64":
        raise RigError(f"--flight-arch {arch!r}: x86_64 or aarch64")
    from board import arm

    try:
        target = arm.prepare()
    except arm.ArmError as exc:
        raise RigError(f"--flight-arch aarch64: {exc}") from None
    return target.argv("-m", "flight.app", *args), target.env()


# -- one run ------------------------------------------------------------------------------------
class _Run:
    """One rig run's state: the processes, the links, the world and what is counted."""

    def __init__(self, scenario: Scenario, settings: RigSettings, out: Path, terrain: Terrain) -> None:
        self.scenario = scenario
        self.settings = settings
        self.out = out
        self.terrain = terrain
        self.world = sil.make_world(scenario, terrain, settings.seed)
        take_over_ranges(self.world)
        self.recorder = sil._Recorder(self.world, round(100 / settings.trace_hz) if settings.record else 0)
        self.view = FlightView()
        self.recorder.system = self.view  # type: ignore[assignment]
        self.runtime = Path(tempfile.mkdtemp(prefix="lander-rig-"))  # short paths: unix sockets <= 107 bytes
        self.emu_dir = self.runtime / "emulator"
        self.emulator: EmulatorProcess | None = None
        self.flight: FlightProcess | None = None
        self.stream: Stream | None = None
        self.clock: ClockServer | None = None
        self.telemetry: Telemetry | None = None
        self.faults = Schedule(list(settings.faults))
        self.device_faults = DeviceFaults()
        self.imu = ImuSample(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        self.imu_silent = False
        self._dead_primary = any(f.kind == "dead" for f in self.world.primary_model.faults)
        self._dead_short = any(f.kind == "dead" for f in self.world.short_model.faults)
        self._fault_state: tuple = (False, (False, False))
        self.seq = 0
        self.step = 0
        self.stalls = 0  # the rig's own (drain, ACK) timeouts
        self.drain_syncs = 0
        self.drain_retries = 0
        self.restarts = 0
        self.fault_log: list[dict[str, Any]] = []
        self._pending_recovery: list[dict[str, Any]] = []
        self._base: dict[str, tuple[int, int] | None] = {"rangefinder": None, "engine": None}
        self._last_written: tuple[int, int] | None = None
        self._report_file = None
        self._report_hash = hashlib.sha256()
        self.slots = 0
        self.slips = 0
        self.max_late_s = 0.0
        self.fifo = False

    # -- plumbing -----------------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return self.seq

    def sync(self, before: bytes = b"", timeout_s: float = 2.0) -> st.Ack:
        assert self.stream is not None
        seq = self.next_seq()
        ack, others = self.stream.sync(seq, before, timeout_s)
        self.apply_engine(others)
        if ack is None:
            raise RigError(f"no ACK from the emulator within {timeout_s:g} s (SYNC {seq})")
        return ack

    def apply_engine(self, messages: list) -> None:
        engine = self.world.engine
        for msg in messages:
            if isinstance(msg, st.EngineReport):
                engine.throttle = msg.throttle if msg.armed else 0.0
                engine.pitch_rad = msg.pitch_rad
                engine.armed = msg.armed
                engine.commands += 1

    def start_emulator(self) -> None:
        if self.settings.bench:
            self.stream = Stream(self.settings.emulator_port)  # type: ignore[arg-type]
        else:
            if self.emulator is None:
                self.emulator = EmulatorProcess(self.emu_dir, self.out / "emulator.log")
            self.emulator.start()
            self.stream = Stream(str(self.emu_dir / "stream"))
        self.stream.hello()

    def restart_emulator(self) -> None:
        """kill -9 and start again on the same folder: new ptys behind the same links, a new
        socket; the rig reopens its stream and tells the new instance what it must know."""
        assert self.emulator is not None and self.stream is not None
        self.stream.close()
        self.emulator.kill()
        self.restarts += 1
        self.start_emulator()
        self.device_faults = DeviceFaults()  # a fresh emulator has none
        self._base = {"rangefinder": None, "engine": None}  # its counters start from zero

    def preflight(self, command: list[str], env: dict[str, str] | None) -> dict[str, Any]:
        """`lander-flight preflight` against the emulator at rest on the bench, before the run."""
        import subprocess

        assert self.stream is not None
        self.sync(st.encode_values(bench_at_rest()))
        started = time.monotonic()
        proc = subprocess.run(command, env=env, cwd=self.out, capture_output=True, text=True, timeout=300,
                              check=False)
        text = proc.stdout + proc.stderr
        (self.out / "preflight.txt").write_text(text, encoding="utf-8")
        result = {"passed": proc.returncode == 0, "exit_code": proc.returncode,
                  "wall_s": round(time.monotonic() - started, 2),
                  "lines": [line for line in proc.stdout.splitlines() if line.startswith("  ")]}
        if proc.returncode != 0:
            raise RigError(f"preflight failed (exit {proc.returncode}):\n{text.strip()}")
        return result

    # -- the sensors of one step ---------------------------------------------------------------
    def values(self, lockstep: bool) -> st.Values:
        w = self.world
        last = None
        while (sample := w.imu.read()) is not None:
            last = sample
        if isinstance(last, ImuSample):
            self.imu = last
        self.imu_silent = last is None and w.steps > 0  # an imu_gap: the part stops answering
        primary, short = fresh_range(w, "primary"), fresh_range(w, "short_range")
        return sensor_values(self.step, round(w.time_s * 1e9), self.imu, primary, short, w.contact.is_closed, lockstep)

    def fault_frames(self, t_s: float) -> bytes:
        """FAULT frames due at t: the rig's own faults (an emulator restart happens here), and
        the simulator's that only the emulated part can show (a dead altimeter, an IMU gap)."""
        actions = self.faults.due(t_s)
        dead_now = (self._dead_primary and dead(self.world, "primary"),
                    self._dead_short and dead(self.world, "short_range"))
        state = (self.imu_silent, dead_now)
        if not actions and state == self._fault_state and not self.faults.in_force:
            return b""  # every step but a few: nothing changes
        self._fault_state = state
        out = b""
        for action in actions:
            entry = {"fault": action.fault.label, "at_s": round(t_s, 3), "begin": action.begin}
            self.fault_log.append(entry)
            if action.fault.kind == "emulator_restart":
                if self.settings.bench:
                    raise RigError("emulator_restart needs the emulator process (--sil), not a bench")
                self.restart_emulator()
                self._pending_recovery.append({"fault": action.fault, "since_s": t_s, "entry": entry})
            elif action.fault.kind == "garbage":
                out += action.frames()
            elif not action.begin:
                self._pending_recovery.append({"fault": action.fault, "since_s": t_s, "entry": entry})
        active = self.faults.in_force
        want: dict[str, tuple[bool, bool, float | None]] = {}
        for device in rig_faults.DEVICES:
            mine = [f for f in active if f.device == device]
            unplug = any(f.kind == "unplug" for f in mine)
            silent = any(f.kind == "silent" for f in mine)
            lies = [f.value for f in mine if f.kind == "lie"]
            if device == "imu":
                silent = silent or self.imu_silent
            elif device == "rangefinder":
                silent = silent or dead_now[0]
            elif device == "lidar":
                silent = silent or dead_now[1]
            want[device] = (unplug, silent, lies[-1] if lies else None)
        return self.device_faults.frames(want) + out

    def device_fault(self, device: str) -> bool:
        told = self.device_faults.told[device]
        return told[0] or told[1]

    # -- lockstep --------------------------------------------------------------------------------
    def drain(self, c: dict[str, int], written: tuple[int, int]) -> None:
        """Make the emulator take in every byte the flight wrote on its UARTs during the slot
        (the kernel may still hold some: SYNC again until the ACK's counters show them)."""
        self.drain_syncs += 1
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            ack = self.sync()
            short = []
            for device, flight_bytes, emulator_count, unit in (
                    ("rangefinder", c["rangefinder_written"], ack.rangefinder_requests, REQUEST_BYTES),
                    ("engine", c["engine_written"], ack.engine_frames + ack.engine_bad_frames, COMMAND_FRAME_BYTES)):
                base = self._base[device]
                if self.device_fault(device) or base is None:
                    continue
                if emulator_count - base[1] < (flight_bytes - base[0]) // unit:
                    short.append(device)
            if not short:
                break
            if time.monotonic() > deadline:
                self.stalls += 1
                print(f"lander hil: lockstep stall at {self.world.time_s:.2f} s: the emulator has not taken in the "
                      f"flight's {', '.join(short)} bytes within {DRAIN_TIMEOUT_S} s", file=sys.stderr)
                for device in short:
                    self._base[device] = None
                break
            self.drain_retries += 1
        self._rebase(written, ack)

    def _rebase(self, written: tuple[int, int], ack: st.Ack) -> None:
        """(Re)start counting after a fault on the line, or at the first exchange: only from a
        slot in which the flight wrote nothing on it (nothing of it can be in flight then)."""
        for i, (device, count) in enumerate((("rangefinder", ack.rangefinder_requests),
                                             ("engine", ack.engine_frames + ack.engine_bad_frames))):
            if self.device_fault(device):
                self._base[device] = None
            elif self._base[device] is None and self._last_written is not None \
                    and self._last_written[i] == written[i]:
                self._base[device] = (written[i], count)

    def needs_drain(self, written: tuple[int, int]) -> bool:
        """New bytes from the flight, or a line whose count must be (re)started."""
        if written != self._last_written:
            return True
        return any(self._base[d] is None and not self.device_fault(d) for d in ("rangefinder", "engine"))

    def note_recovery(self, t_s: float, counters: dict[str, int] | None) -> None:
        """A fault that ended (a port plugged back, a device cleared, the emulator back):
        recovered when the flight reads from that line again (its counters), or, on I2C and in
        real time, when it reports the link back up (DEVICE_LINK)."""
        still = []
        for p in self._pending_recovery:
            f: RigFault = p["fault"]
            done = False
            if counters is not None and f.device in ("rangefinder", "engine"):
                key = f"{f.device}_read"
                p.setdefault("read_at_end", counters[key])
                done = counters[key] > p["read_at_end"]
            elif counters is not None and f.kind == "emulator_restart":
                p.setdefault("read_at_end", (counters["rangefinder_read"], counters["engine_read"]))
                done = all(now > then for now, then in zip((counters["rangefinder_read"], counters["engine_read"]),
                                                           p["read_at_end"]))
            else:
                assert self.telemetry is not None
                dev = rig_faults.FLIGHT_DEVICE.get(f.device)
                # only events received since the fault ended (their times are the flight's clock,
                # which is the rig's only in lockstep): recovery is timed here, on the rig's clock
                seen = p.setdefault("events_at_end", len(self.telemetry.events))
                back = [t for t, name, args in self.telemetry.events[seen:]
                        if name == "DEVICE_LINK" and args[0] == dev and args[1] == 1]
                if back:
                    p["entry"]["recovered_after_s"] = round(t_s - p["since_s"], 3)
                    continue
            if done:
                p["entry"]["recovered_after_s"] = round(t_s - p["since_s"], 3)
            else:
                still.append(p)
        self._pending_recovery = still

    def lockstep(self, command: list[str], env: dict[str, str] | None) -> None:
        assert self.stream is not None and self.telemetry is not None
        w0 = self.world
        # the scenario's first instant, in lockstep, before the flight starts: no wall-clock
        # STATUS flows while it boots, and its drivers start up against the right values
        self.values(lockstep=True)
        self.sync(self.fault_frames(0.0) + st.encode_values(self.values(lockstep=True)))
        self.clock = ClockServer(self.runtime / "clock.sock")
        self.flight = FlightProcess(command, env, self.out / "flight.out")
        self.flight.start()
        self.clock.accept(60.0, self.flight.alive)
        self._report_file = open(self.out / "filter.f64", "wb")  # noqa: SIM115 - closed in finish()
        limit = self.scenario.criteria.time_limit_s
        wall0 = time.perf_counter()
        while True:
            w = self.clock.wait(SLOT_TIMEOUT_S, self.flight.alive)
            if w is None:
                raise RigError(f"the flight process ended during the run:\n{self.flight.tail()}")
            self.slots += 1
            self.view.from_report(w.values)
            self._record_report(w.values)
            if self.slots % 10 == 0:  # housekeeping comes at 10 Hz; an empty socket costs a syscall
                self.telemetry.drain()
            c: dict[str, int] = dict(zip(wiring.RIG_COUNTERS, w.counters))
            self.note_recovery(w0.time_s, c)
            if w0.finished() or w0.time_s >= limit:
                self.clock.stop(max(w.deadline_ns, round(w0.time_s * 1e9)))
                break
            written = (c["rangefinder_written"], c["engine_written"])
            if self.needs_drain(written):
                self.drain(c, written)
            self._last_written = written
            if w.deadline_ns > round(w0.time_s * 1e9):
                self.step += 1
                self.recorder(w.deadline_ns)  # the world steps (with the flight's last command) and is recorded
                values = self.values(lockstep=True)
                ack = self.sync(self.fault_frames(w0.time_s) + st.encode_values(values))
                if ack.last_step != values.step:
                    raise RigError(f"the emulator acknowledged step {ack.last_step}, not {values.step}")
            self.clock.go(max(w.deadline_ns, round(w0.time_s * 1e9)))
        self.wall_s = time.perf_counter() - wall0

    def _record_report(self, values: tuple[float, ...]) -> None:
        raw = struct.pack(f"<{len(values)}d", *values)
        self._report_hash.update(raw)
        if self._report_file is not None:
            self._report_file.write(raw)

    # -- real time (--realtime, the bench) ---------------------------------------------------
    def realtime(self, command: list[str] | None, env: dict[str, str] | None) -> None:
        assert self.stream is not None and self.telemetry is not None
        tm = self.telemetry
        w0 = self.world
        if command is None:  # the bench: at rest until the flight computer is up (its preflight runs first)
            self.stream.write(st.encode_values(bench_at_rest()))
            self.wait_for_flight(self.settings.bench_wait_s)
        self.stream.write(self.fault_frames(0.0) + st.encode_values(self.values(lockstep=False)))
        if command is not None:
            self.flight = FlightProcess(command, env, self.out / "flight.out")
            self.flight.start()
        else:
            self.arm_bench()
        deadline = time.monotonic() + 60.0
        while tm.last_hk is None or int(tm.last_hk["phase"]) < int(Phase.BRAKING):
            tm.drain()
            refused = [v for v in tm.verifications if v[0] == 8]  # [1,8]: completion failure
            if refused:
                raise RigError("the flight refused ARM or START_DESCENT (out of phase): has its preflight passed in "
                               "this boot? (its unit's journal shows the preflight's OK/FAIL lines)")
            if time.monotonic() > deadline:
                raise RigError("the flight did not start its descent within 60 s (no BRAKING in its housekeeping)")
            if self.flight is not None and not self.flight.alive():
                raise RigError(f"the flight process ended before the descent:\n{self.flight.tail()}")
            time.sleep(0.001)
        limit = self.scenario.criteria.time_limit_s
        period = STEP_NS / 1e9
        t0 = time.monotonic()
        wall0 = time.perf_counter()
        k = 0
        while not (w0.finished() or w0.time_s >= limit):
            k += 1
            due = t0 + k * period
            rest = due - time.monotonic()
            if rest > 0.0015:
                time.sleep(rest - 0.001)
            while time.monotonic() < due:
                pass
            late = time.monotonic() - due
            self.max_late_s = max(self.max_late_s, late)
            if late >= period:
                self.slips += 1
            self.apply_engine(self.stream.poll())
            for packet in tm.drain():
                if packet.kind == "housekeeping":
                    self.view.from_housekeeping(tm.last_hk)  # type: ignore[arg-type]
            self.note_recovery(w0.time_s, None)
            self.step += 1
            self.recorder(k * STEP_NS)
            self.slots += 1
            values = self.values(lockstep=False)
            self.stream.write(self.fault_frames(w0.time_s) + st.encode_values(values))
            if self.flight is not None and not self.flight.alive():
                raise RigError(f"the flight process ended during the run:\n{self.flight.tail()}")
        self.wall_s = time.perf_counter() - wall0

    def wait_for_flight(self, timeout_s: float) -> None:
        """The bench: the emulator shows a bench at rest (what the flight computer's preflight
        checks when its service starts) until the flight's housekeeping arrives."""
        tm = self.telemetry
        assert tm is not None
        if not self.settings.key_file:
            raise RigError("the bench needs --key FILE (the ground's copy of the command key) to ARM the flight")
        tm.drain()
        if tm.last_hk is None:
            print(f"lander hil: the emulator is at rest; waiting up to {timeout_s:.0f} s for the flight computer's "
                  f"housekeeping on UDP {tm.address[1]} (start or restart its service now: it runs preflight first)",
                  file=sys.stderr, flush=True)
        deadline = time.monotonic() + timeout_s
        while tm.last_hk is None:
            tm.drain()
            if time.monotonic() > deadline:
                raise RigError(f"no housekeeping from the flight on UDP port {tm.address[1]} within {timeout_s:.0f} s: "
                               "is it running, and is this laptop its [link] remote_host?")
            time.sleep(0.01)

    def arm_bench(self) -> None:
        """The bench: the flight computer runs its own service; ARM and START_DESCENT go to it as
        authenticated telecommands, as from a ground station."""
        tm = self.telemetry
        assert tm is not None
        if not self.settings.key_file:
            raise RigError("the bench needs --key FILE (the ground's copy of the command key) to ARM the flight")
        key = Path(self.settings.key_file).read_bytes()
        assert tm.last_hk is not None
        if int(tm.last_hk["phase"]) != int(Phase.IDLE):
            raise RigError(f"the flight is in phase {Phase(int(tm.last_hk['phase'])).name}, not IDLE: restart it")
        to = self.settings.flight_address
        tm.command(key, "ARM", to=to)
        tm.command(key, "START_DESCENT", to=to)

    # -- end ---------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        final = None
        code = None
        if self.flight is not None:
            code = self.flight.wait(60.0) if self.clock is not None else self.flight.stop()
            if code is None:
                code = self.flight.stop()
            try:
                import json

                final = json.loads((self.out / "flight-report.json").read_text())
            except (OSError, ValueError):
                final = None
        if self._report_file is not None:
            self._report_file.close()
        if self.telemetry is not None:
            time.sleep(0.05)
            self.telemetry.drain()
            if final is None and self.telemetry.last_hk is not None:
                self.view.from_housekeeping(self.telemetry.last_hk)
                self.view.events.counts = _event_counts(self.telemetry.events)
        if final is not None:
            self.view.from_final(final)
        return {"flight_exit_code": code, "flight_report": final}

    def close(self) -> None:
        for closer in (self.flight.stop if self.flight else None, self.clock.close if self.clock else None,
                       self.stream.close if self.stream else None, self.emulator.stop if self.emulator else None,
                       self.telemetry.close if self.telemetry else None):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
        if self._report_file is not None:
            self._report_file.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


def _event_counts(events: list[tuple[float, str, tuple]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, name, _ in events:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def run(scenario: Scenario, out: Path, settings: RigSettings = RigSettings(),
        terrain: Terrain | None = None) -> RigResult:
    """Fly one scenario on the rig. Lockstep runs are deterministic per (scenario, estimator,
    seed, faults, flight arch... up to libm): the same bytes on every line every time."""
    policy = Policy.parse(settings.estimator)
    terrain = terrain if terrain is not None else scenario.terrain(settings.seed)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "flight-log", ignore_errors=True)
    for stale in ("flight-report.json", "preflight.json", "flight.out", "emulator.log"):
        (out / stale).unlink(missing_ok=True)
    r = _Run(scenario, settings, out, terrain)
    lockstep = not (settings.realtime or settings.bench)
    try:
        bind = ("0.0.0.0", settings.ground_port) if settings.bench else ("127.0.0.1", 0)
        r.telemetry = Telemetry(bind, out / "telemetry.jsonl")
        r.start_emulator()
        command = env = None
        preflight: dict[str, Any] = {"passed": None, "note": "the bench runs preflight on the flight computer"}
        if not settings.bench:
            clock_socket = r.runtime / "clock.sock" if lockstep else None
            config = flight_config(scenario, policy.label, terrain, settings.seed, r.emu_dir, out,
                                   r.telemetry.address[1], clock_socket)
            write_toml(out / "flight.toml", config)
            pre_cmd, env = flight_command(settings.flight_arch, "preflight", "--config", str(out / "flight.toml"))
            preflight = r.preflight(pre_cmd, env)
            command, env = flight_command(settings.flight_arch, "--config", str(out / "flight.toml"), "--auto-start",
                                          "--report", str(out / "flight-report.json"))
        r.wall_s = 0.0
        if lockstep:
            r.lockstep(command, env)  # type: ignore[arg-type]
        else:
            emulator_pid = (r.emulator.proc.pid,) if r.emulator and r.emulator.proc else ()
            with fifo_priority(RIG_FIFO_PRIORITY, emulator_pid) as granted:
                r.fifo = granted
                r.realtime(command, env)
        ended = r.finish()
    finally:
        emulator_stats = {}
        if r.emulator is not None:
            r.emulator.stop()  # its counters are written as it exits
            emulator_stats = r.emulator.stats()
        r.close()
    summary = sil.summarise(scenario, policy.label, settings.seed, r.world, r.view, r.recorder, r.wall_s)  # type: ignore[arg-type]
    if settings.bench:  # the flight computer's filter counts are not in its telemetry
        for key in ("terrain_steps_absorbed", "sensor_faults_rejected", "primary_locked_out"):
            summary[key] = None
    final = ended["flight_report"] or {}
    tasks = final.get("tasks", {})
    summary["rig"] = {
        "mode": "bench" if settings.bench else ("sil-realtime" if settings.realtime else "sil-lockstep"),
        "flight_arch": "board" if settings.bench else settings.flight_arch,
        "emulator": r.stream.name if r.stream else "",
        "steps": r.step,
        "flight_slots": final.get("slots_run", r.slots),
        "flight_exit_code": ended["flight_exit_code"],
        "preflight": preflight,
        "lockstep_stalls": r.stalls + emulator_stats.get("lockstep_stalls", 0) if lockstep else None,
        "drain_syncs": r.drain_syncs if lockstep else None,
        "drain_retries": r.drain_retries if lockstep else None,
        "emulator_restarts": r.restarts,
        "emulator_i2c_transactions": emulator_stats.get("i2c_transactions"),
        "rig_slips": None if lockstep else r.slips,
        "rig_max_late_ms": None if lockstep else round(r.max_late_s * 1e3, 3),
        "rig_fifo": None if lockstep else r.fifo,
        "flight_realtime_flags": (r.telemetry.last_hk or {}).get("realtime") if r.telemetry else None,
        "flight_cycle_slips": final.get("total_slips", summary["cycle_slips"]),
        "flight_estimation_us": {k: round(tasks.get("estimation", {}).get(k, 0.0), 1) for k in ("mean_us", "max_us")},
        "flight_tick_mean_us": round(sum(t.get("mean_us", 0.0) * t.get("count", 0) for t in tasks.values())
                                     / max(final.get("slots_run", 1), 1), 1) if tasks else None,
        "drivers": final.get("drivers", {}),
        "faults": r.fault_log,
        "telemetry_packets": r.telemetry.packets if r.telemetry else 0,
        "filter_outputs_sha256": r._report_hash.hexdigest() if lockstep else None,
    }
    result = RigResult(summary, r.recorder.trace, r.telemetry.events if r.telemetry else [], terrain)
    return result


def run_to_dir(scenario: Scenario, out: Path, settings: RigSettings = RigSettings(),
               terrain: Terrain | None = None) -> dict[str, Any]:
    """Fly once on the rig and leave summary.json, trace.csv, plot.png (and the rest) in out."""
    from ground import report

    result = run(scenario, out, settings, terrain)
    report.write_summary(out / "summary.json", result.summary)
    report.write_trace(out / "trace.csv", sil.TRACE_COLUMNS, result.trace)
    if settings.plot and settings.record:
        report.plot(out / "plot.png", sil.TRACE_COLUMNS, result.trace, result.events, result.summary)
    return result.summary


# -- campaigns --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RigRunner:
    """A campaign runner flying each run on this rig (a plain object: it travels to pool
    processes and Dask workers). Each run gets a scratch folder and its own emulator, flight and
    sockets, so runs in parallel do not meet."""

    rig: str
    emulator: str | None = None
    flight_address: tuple[str, int] | None = None
    key_file: str | None = None

    def __call__(self, spec) -> dict[str, Any]:
        from ground.campaign.execution import CampaignAbort
        from hil.campaign import navigation_error

        scenario = spec.build_scenario()
        try:
            faults = tuple(rig_faults.from_document(spec.document, spec.source))
        except rig_faults.RigFaultError as exc:
            raise CampaignAbort(str(exc)) from None
        settings = RigSettings(estimator=spec.estimator, seed=spec.sim_seed, faults=faults, record=False, plot=False,
                               realtime=self.rig == "bench", emulator_port=self.emulator if self.rig == "bench" else None,
                               flight_address=self.flight_address, key_file=self.key_file)
        with tempfile.TemporaryDirectory(prefix="lander-campaign-run-") as scratch:
            try:
                result = run(scenario, Path(scratch), settings)
            except RigError as exc:
                if self.rig == "bench":  # the board is gone or wrong: no later run can fly either
                    raise CampaignAbort(f"the bench: {exc}") from None
                raise
        summary = dict(result.summary)
        assert result.terrain is not None
        summary["navigation_error"] = navigation_error(scenario, spec.estimator, result.terrain, spec.sim_seed)
        return summary


def campaign_runner(rig: str, emulator: str | None = None) -> RigRunner:
    """`lander campaign --rig sil-process` (each run on this rig, lockstep, in a scratch folder)
    or `--rig bench --emulator PORT` (each run on the bench, real time; the flight computer at
    LANDER_BENCH_FLIGHT, default udp:lander-fc.local:10016, commanded with the key file
    LANDER_BENCH_KEY; it must be configured for the campaign's scenario, see hil/README.md)."""
    import os

    from ground.campaign.execution import RigUnavailable

    if rig == "sil-process":
        return RigRunner(rig)
    if rig == "bench":
        if not emulator:
            raise RigUnavailable("--rig bench needs --emulator PORT")
        try:
            address = parse_flight_address(os.environ.get("LANDER_BENCH_FLIGHT", "udp:lander-fc.local:10016"))
        except ValueError as exc:
            raise RigUnavailable(f"LANDER_BENCH_FLIGHT: {exc}") from None
        return RigRunner(rig, emulator, address, os.environ.get("LANDER_BENCH_KEY"))
    raise RigUnavailable(f"no rig {rig!r} here (sil-process, bench)")


def parse_flight_address(text: str) -> tuple[str, int]:
    """`udp:HOST:PORT` -> (HOST, PORT)."""
    kind, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "udp" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--flight {text!r}: expected udp:HOST:PORT (the flight computer's link)")
    return host, int(port)

