"""The one place that builds the flight executive: devices, clock, tasks, schedule, links.

Everything else talks to protocols; only this module chooses implementations (simulated
or real devices, real-time or lockstep clock, UDP or serial link, which watchdog). The SIL
runner and `lander-flight` both call `build()`. A configuration is checked whole against the
schema in the telemetry dictionary (flight/config.py) before anything is built; every problem
is a `ConfigError` naming the file, section and key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from flight import __version__
from flight.config import ConfigError, check, check_value
from flight.devices import preflight
from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    Altimeter,
    ContactSwitch,
    EngineCommand,
    Imu,
    LinkHealth,
)
from flight.devices.probe import ProbeResult
from flight.devices.simulated import SimulatedBench
from flight.estimation.altitude_filter import AltitudeFilter, Policy
from flight.estimation.attitude import Attitude
from flight.estimation.profile import TerrainProfile
from flight.estimation.task import EstimationTask, GapModel, SlantMode, SlantModel
from flight.estimation.terrain_map import TerrainMap, TerrainMapError
from flight.executive.clock import Clock, FlightTime, LockstepClock, MonotonicClock, RigClock
from flight.executive.health import (
    HealthMonitor,
    LinuxWatchdog,
    NoWatchdog,
    SystemdWatchdog,
    Watchdog,
)
from flight.executive.scheduler import Executive, ScheduledTask
from flight.fdir.monitor import FdirConfig, FdirTask
from flight.fdir.sensor_health import HealthConfig
from flight.guidance.descent import GuidanceConfig, GuidanceTask
from flight.guidance.safe import EngineGuard
from flight.telemetry.commands import CommandGate, KeyFileError, load_key
from flight.telemetry.flightlog import FlightLog
from flight.telemetry.links import SerialLink, UdpLink
from flight.telemetry.packets import TelemetryEncoder
from flight.telemetry.service import CommandService, Downlink, EventService
from flight.tomlio import read_toml

__all__ = ["DEFAULT_SCHEDULE", "RIG_REPORT", "ConfigError", "Devices", "FlightSystem", "build", "housekeeping",
           "load_config", "real_devices"]

DEFAULT_SCHEDULE = {  # name: (rate divisor at 100 Hz, offset, budget in us), in table order
    "estimation": (1, 0, 400.0),
    "fdir": (1, 0, 200.0),
    "guidance": (10, 0, 400.0),
    "engine_guard": (10, 0, 100.0),  # right after guidance: it sees this cycle's offer
    "housekeeping": (10, 5, 600.0),  # half a cycle after guidance: the two heaviest 10 Hz tasks never share a tick
    "commands": (10, 5, 600.0),
    "health": (100, 0, 200.0),
}
# Real drivers read the IMU (a 14-byte burst, ~0.4 ms at 400 kHz) and both altimeters over I2C
# and UART inside the estimation task: ~1.2 ms measured on a Raspberry Pi 4. The default budgets
# above are the simulated devices' (no I/O); [schedule.*] budget_us still overrides these.
REAL_DEVICE_BUDGETS_US = {"estimation": 1200.0}

# What the flight publishes each slot to the HIL rig over its clock (clock = "rig"): the rig
# records and scores the flight from these, as the in-process SIL reads the same objects. A
# range outcome's code: the kernel's Status value, or NOT_FUSED / INVALID / ERROR below.
RIG_REPORT = ("has_estimate", "altitude_m", "vertical_velocity_mps", "terrain_m", "hat_m", "hat_sigma_m",
              "horizontal_speed_mps", "phase", "throttle", "pitch_rad", "touchdown_time_s",
              "primary_time_s", "primary_range_m", "primary_code",
              "short_range_time_s", "short_range_range_m", "short_range_code")
RIG_COUNTERS = ("rangefinder_written", "rangefinder_read", "engine_written", "engine_read")
OUTCOME_NOT_FUSED, OUTCOME_INVALID, OUTCOME_ERROR = -1, -2, -3
OUTCOME_PROFILE = -10  # -10 - ProfileStatus: the sample went to the look-ahead profile
DEVICE_IDS = {"rangefinder": 0, "short_range": 1, "imu": 2, "engine": 3}  # DEVICE_LINK's device argument


@dataclass
class Devices:
    imu: Imu
    altimeters: list[Altimeter]
    engine: EngineCommand
    contact: ContactSwitch | None = None
    world: Any = None  # the simulated world, when there is one (stepped by a lockstep clock)
    # real devices only:
    probes: list[tuple[str, str, Callable[[], ProbeResult]]] = field(default_factory=list)  # preflight
    links: list[tuple[str, LinkHealth]] = field(default_factory=list)  # DEVICE_LINK events
    start: Callable[[], list[tuple[str, ProbeResult]]] | None = None  # before the executive runs
    counters: Callable[[], tuple[int, ...]] | None = None  # UART bytes, for the rig's clock
    closers: list[Callable[[], None]] = field(default_factory=list)
    preflight_record: str | None = None  # ARM needs a passed preflight in this boot (real devices)
    digest: str = ""


@dataclass
class FlightSystem:
    executive: Executive
    clock: Clock
    time: FlightTime
    devices: Devices
    estimation: EstimationTask
    fdir: FdirTask
    guidance: GuidanceTask
    guard: EngineGuard
    events: EventService
    commands: CommandService
    health: HealthMonitor
    watchdog: Watchdog
    downlink: Downlink
    encoder: TelemetryEncoder
    config: dict[str, Any]
    log: FlightLog | None = None
    realtime_flags: int = 0  # set by the entry point: bit 0 affinity, 1 SCHED_FIFO, 2 mlockall, 3 gc frozen
    closers: list = field(default_factory=list)

    def arm(self) -> str | None:
        """ARM as the telecommand does (the preflight gate first, with real devices); the
        reason when refused."""
        reason = arm_refusal(self.devices)
        return reason if reason is not None else self.guidance.arm()

    def close(self) -> None:
        for close in self.closers:
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - closing what is left must not stop at the first failure
                pass


def load_config(path: str) -> dict[str, Any]:
    """A board configuration file, parsed and checked against the schema."""
    return check(read_toml(path, ConfigError, "config file"), path)


def simulated_devices(config: dict) -> Devices:
    sec = config.get("devices", {})
    bench = SimulatedBench(altitude_m=sec.get("altitude_m", 2000.0),
                           vertical_speed_mps=sec.get("vertical_speed_mps", -20.0), seed=sec.get("seed", 0))
    return Devices(bench.imu, [bench.primary, bench.short_range], bench.engine, bench.contact, world=bench)


def arm_refusal(devices: Devices) -> str | None:
    """Why ARM must be refused now, or None: real devices need a preflight that passed in this
    boot for these devices (flight/devices/preflight.py); read at ARM time, never per tick."""
    if devices.preflight_record is None:
        return None
    reason = preflight.check_record(devices.preflight_record, devices.digest)
    return None if reason is None else f"ARM refused: {reason}"


def real_devices(config: dict, clock_s: Callable[[], float], source: str = "config") -> Devices:
    """The real drivers of `[devices] kind = "real"`. Construction touches no device (the first
    calls open, identify and configure them), so a board booting with a cable loose still
    builds its executive; preflight names what is wrong."""
    from flight.devices.engine_link import EngineLink
    from flight.devices.i2c_bridge import BridgeBus
    from flight.devices.i2c_device import LazySMBus
    from flight.devices.icm42688 import Icm42688
    from flight.devices.lidarlite import LidarLite
    from flight.devices.rangefinder import Rangefinder

    sec = config.get("devices", {})
    rf, eng, i2c = sec.get("rangefinder", {}), sec.get("engine", {}), sec.get("i2c", {})
    imu_sec, short = sec.get("imu", {}), sec.get("short_range", {})
    for name, table in (("rangefinder", rf), ("engine", eng)):
        if "device" not in table:
            raise ConfigError(f"{source}: [devices.{name}] device = '/dev/...' is needed with kind = 'real'")
    if ("bus" in i2c) == ("bridge" in i2c):
        raise ConfigError(f"{source}: [devices.i2c] needs exactly one of bus = N (smbus2) and bridge = 'PATH' (the rig)")
    if "timeout_s" in i2c and "bridge" not in i2c:
        raise ConfigError(f"{source}: [devices.i2c] timeout_s is the bridge's (a bus times out in the kernel)")
    bus: Any = BridgeBus(i2c["bridge"], i2c.get("timeout_s", 0.005)) if "bridge" in i2c else LazySMBus(i2c["bus"])
    on_bus = f"bridge {i2c['bridge']}" if "bridge" in i2c else f"/dev/i2c-{i2c['bus']}"
    try:
        lrf = Rangefinder(rf["device"], clock_s, rate_hz=rf.get("rate_hz", 5.0), baudrate=rf.get("baudrate", 115200),
                          sigma_m=rf.get("sigma_m", 0.3), sigma_per_m=rf.get("sigma_per_m", 5.0e-4),
                          min_range_m=rf.get("min_range_m", 1.0))
        lidar = LidarLite(bus, clock_s, address=short.get("address", 0x62), period_s=1.0 / short.get("rate_hz", 50.0),
                          sigma_m=short.get("sigma_m", 0.05), sigma_per_m=short.get("sigma_per_m", 0.0),
                          min_range_m=short.get("min_range_m", 0.05), max_range_m=short.get("max_range_m", 40.0))
        imu = Icm42688(bus, clock_s, address=imu_sec.get("address", 0x68), mounting=imu_sec.get("mounting", "+x+y+z"))
    except ValueError as exc:
        raise ConfigError(f"{source}: [devices]: {exc}") from None
    engine = EngineLink(eng["device"], clock_s, baudrate=eng.get("baudrate", 115200),
                        status_timeout_s=eng.get("status_timeout_s", 0.3))
    probes = [("rangefinder", f"{rf['device']} at {lrf.port.baudrate} Bd", lrf.probe),
              ("short_range", f"LIDAR-Lite v3HP {lidar.device.address:#04x} on {on_bus}", lidar.probe),
              ("imu", f"ICM-42688-P {imu.device.address:#04x} on {on_bus}", imu.probe),
              ("engine", f"controller on {eng['device']} at {engine.port.baudrate} Bd", engine.probe)]

    def start() -> list[tuple[str, ProbeResult]]:
        return [("imu", imu.start())]

    def counters() -> tuple[int, ...]:
        return (lrf.port.bytes_written, lrf.port.bytes_read, engine.port.bytes_written, engine.port.bytes_read)

    return Devices(imu, [lrf, lidar], engine, engine, probes=probes,
                   links=[("rangefinder", lrf.health), ("short_range", lidar.health), ("imu", imu.health),
                          ("engine", engine.health)],
                   start=start, counters=counters, closers=[lrf.close, engine.close, bus.close],
                   preflight_record=sec.get("preflight_record", preflight.DEFAULT_RECORD),
                   digest=preflight.devices_digest(sec))


def _dataclass(cls, values: dict[str, Any], section: str, source: str):
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [{section}]: {exc}") from None


def build(config: dict, devices: Devices | None = None, clock: Clock | None = None,
          source: str = "config") -> FlightSystem:
    config = check(config, source)
    exe_cfg = config.get("executive", {})
    tick_hz = exe_cfg.get("tick_hz", 100)
    real = devices is None and config.get("devices", {}).get("kind", "simulated") == "real"
    kind = exe_cfg.get("clock", "realtime")
    if real and kind == "lockstep":
        raise ConfigError(f"{source}: [executive] clock = 'lockstep' steps a simulated world: with real devices "
                          "use 'realtime', or 'rig' (the HIL rig owns time)")
    if kind == "rig" and "rig_socket" not in exe_cfg and clock is None:
        raise ConfigError(f"{source}: [executive] clock = 'rig' needs rig_socket = 'PATH' (the rig's clock socket)")
    if not real:
        devices = devices or simulated_devices(config)
    if clock is None:
        if kind == "lockstep":
            world = devices.world if devices is not None else None
            clock = LockstepClock(on_advance=world.advance_to if world is not None else None)
        elif kind == "rig":
            clock = RigClock(exe_cfg["rig_socket"])  # connects now: a missing rig fails here
        else:
            clock = MonotonicClock()
    flight_time = FlightTime(clock)
    # what is opened from here on is closed again if the build fails part-way (a campaign or a
    # test builds many systems in one process: no socket, port or thread may outlive a refusal)
    opened: list[Callable[[], None]] = [clock.close] if isinstance(clock, RigClock) else []
    try:
        if real:
            devices = real_devices(config, flight_time.now_s, source)
    except BaseException:
        _close_all(opened)
        raise
    assert devices is not None
    opened += list(devices.closers)
    defaults = {name: (d, o, REAL_DEVICE_BUDGETS_US.get(name, b) if real else b)
                for name, (d, o, b) in DEFAULT_SCHEDULE.items()}
    schedule = {name: (over.get("divisor", d), over.get("offset", o), over.get("budget_us", b))
                for name, (d, o, b) in defaults.items()
                for over in [config.get("schedule", {}).get(name, {})]}
    for name, (divisor, offset, _) in schedule.items():
        if offset >= divisor:
            _close_all(opened)
            raise ConfigError(f"{source}: [schedule.{name}] offset = {offset}: must be below divisor = {divisor}")

    encoder = TelemetryEncoder()
    log_cfg = config.get("log", {})
    log = None
    if "dir" in log_cfg:
        try:
            log = FlightLog(log_cfg["dir"], log_cfg.get("flush_period_s", 1.0), log_cfg.get("fsync", False),
                            log_cfg.get("max_file_bytes", 64 << 20), log_cfg.get("max_total_bytes", 1 << 30),
                            log_cfg.get("queue_bytes", 4 << 20), version=__version__)
        except OSError as exc:
            _close_all(opened)
            raise ConfigError(f"{source}: [log] dir = {log_cfg['dir']!r}: cannot write a log there: "
                              f"{exc.strerror or exc}") from None
    if log is not None:
        opened.append(log.close)
    try:
        link = _build_link(config.get("link", {}), source)
        if link is not None:
            opened.append(link.close)
        downlink = Downlink(link, log)
        events = EventService(encoder, downlink, flight_time)
        system = _build_tasks(config, devices, clock, flight_time, tick_hz, schedule, encoder, downlink, events,
                              source)
    except BaseException:
        _close_all(opened)
        raise
    system.log = log
    system.closers += [system.watchdog.close] + ([log.close] if log else []) + ([link.close] if link else []) \
        + list(devices.closers)
    if isinstance(clock, RigClock):
        clock.counters = devices.counters or tuple
        clock.values = lambda: rig_report(system)
        system.closers.append(clock.close)
    return system


def _code(o) -> float:
    if o.status is not None:
        return float(int(o.status))
    if o.profile is not None:
        return float(OUTCOME_PROFILE - int(o.profile))
    if not o.fused:
        return float(OUTCOME_NOT_FUSED)
    return float(OUTCOME_INVALID if o.error == "device flagged invalid" else OUTCOME_ERROR)


def rig_report(s: FlightSystem) -> tuple[float, ...]:
    """The values of RIG_REPORT, now (after the slot that just ran)."""
    est = s.estimation.output.estimate
    g = s.guidance
    nan = math.nan
    out = [1.0, est.altitude_m, est.vertical_velocity_mps, est.terrain_elevation_m, est.height_above_terrain_m,
           est.height_above_terrain_sigma_m] if est is not None else [0.0, nan, nan, nan, nan, nan]
    out += [s.estimation.vx, float(int(g.phase)), g.throttle, g.pitch_rad,
            nan if g.touchdown_time_s is None else g.touchdown_time_s]
    for sensor in (PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER):
        o = s.fdir.last_outcome.get(sensor)
        out += [nan, nan, nan] if o is None else [o.time_s, o.range_m, _code(o)]
    return tuple(float(v) for v in out)


def _estimation(config: dict, devices: Devices, flight_time: FlightTime, events: EventService,
                guidance_config: GuidanceConfig, fdir_config: FdirConfig, source: str) -> EstimationTask:
    est = config.get("estimator", {})
    sig0 = est.get("initial_altitude_sigma_m", 100.0)
    sig_v = est.get("initial_vertical_speed_sigma_mps", 1.0)
    sig_t = est.get("initial_terrain_sigma_m", sig0)
    sig_b = est.get("initial_bias_sigma_mps2", 0.01)  # accelerometer bias left after calibration
    x0 = (est.get("initial_altitude_m", 2000.0), est.get("initial_vertical_speed_mps", -20.0), 0.0,
          est.get("initial_terrain_m", 0.0))  # the onboard map's elevation below
    try:
        filt = AltitudeFilter(Policy.parse(est.get("policy", "terrain-aware")), x0=x0,
                              var0=(sig0**2, sig_v**2, sig_b**2, sig_t**2), **est.get("parameters", {}))
        attitude = Attitude(est.get("initial_pitch_rad", 0.0), est.get("initial_pitch_sigma_rad", 1e-4),
                            est.get("gyro_noise_density_radps_per_rthz", 4.9e-5), est.get("gyro_bias_sigma_radps", 1e-5),
                            est.get("attitude_hold_sigma_radps", 1e-3), filt.config()["body_radius_m"])  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{source}: [estimator]: {exc}") from None
    # the IMU's gap model follows guidance's hold (one number, two users) and FDIR's "lost"
    gap = GapModel(est.get("imu_gap_after_s", 0.05), fdir_config.imu_lost_after_s, guidance_config.imu_loss_hold_s,
                   est.get("gap_hold_accel_sigma_mps2", 0.3), est.get("gap_arrest_accel_sigma_mps2", 3.0))
    policy = filt.policy
    # how slant ranges are used follows the policy's anchor (see SlantMode): learning the ground
    # ahead is ours; PX4 stops at a tilt limit; M1 and Apollo take the drop as the height below
    mode = {Policy.TERRAIN_AWARE: SlantMode.PROFILE, Policy.PX4_LIKE: SlantMode.TILT_LIMIT}.get(policy, SlantMode.VERTICAL)
    slant = SlantModel(
        mode,
        cant_rad={PRIMARY_ALTIMETER: est.get("primary_cant_rad", 0.0),
                  SHORT_RANGE_ALTIMETER: est.get("short_range_cant_rad", 0.0)},
        divergence_rad={PRIMARY_ALTIMETER: est.get("primary_divergence_rad", 1e-3),
                        SHORT_RANGE_ALTIMETER: est.get("short_range_divergence_rad", 3.5e-3)},
        max_tilt_rad=est.get("max_tilt_rad", 0.785), near_m=est.get("near_footprint_m", 100.0),
        agree_beyond_m=est.get("agree_beyond_m", 20.0),
        slope=float(filt.config()["terrain_gradient"]))  # type: ignore[arg-type]
    terrain_map = None
    if est.get("terrain_map"):
        try:
            terrain_map = TerrainMap.from_csv(est["terrain_map"])
        except TerrainMapError as exc:
            raise ConfigError(f"{source}: [estimator] terrain_map: {exc}") from None
    profile = TerrainProfile(est.get("profile_cell_m", 100.0)) if mode == SlantMode.PROFILE else None
    return EstimationTask(filt, devices.imu, devices.altimeters, flight_time, events, attitude,
                          horizontal_speed_mps=est.get("horizontal_speed_mps", 0.0),
                          downrange_m=est.get("initial_downrange_m", 0.0), gap=gap, slant=slant,
                          profile=profile, terrain_map=terrain_map)


def _build_tasks(config: dict, devices: Devices, clock: Clock, flight_time: FlightTime, tick_hz: int,
                 schedule: dict[str, tuple[int, int, float]], encoder: TelemetryEncoder, downlink: Downlink,
                 events: EventService, source: str) -> FlightSystem:
    fdir_sec = dict(config.get("fdir", {}))
    health_cfg = _dataclass(HealthConfig, fdir_sec.pop("health", {}), "fdir.health", source)
    fdir_config = _dataclass(FdirConfig, {**fdir_sec, "health": health_cfg}, "fdir", source)
    if "expected_below_m" in fdir_sec:  # a partial table keeps the other sensors' defaults
        fdir_config.expected_below_m = {**FdirConfig().expected_below_m, **fdir_sec["expected_below_m"]}
    guidance_config = _dataclass(GuidanceConfig, config.get("guidance", {}), "guidance", source)
    policy = Policy.parse(config.get("estimator", {}).get("policy", "terrain-aware"))
    if policy == Policy.M1_BASELINE:  # the whole altitude-trust policy of M1, for campaigns:
        fdir_config.zero_trap_enabled = False  # no "zero altitude but no touchdown" check
        guidance_config.blind_mode = False  # guidance believes the estimate whatever FDIR says
        guidance_config.pessimism_sigma = 0.0  # ... and flies its mean, not a pessimistic bound
    estimation = _estimation(config, devices, flight_time, events, guidance_config, fdir_config, source)
    # guidance is bound below; FDIR only asks once the executive runs
    fdir = FdirTask(estimation, events, flight_time, fdir_config, touched_down=lambda: guidance.touched_down())

    def nav() -> tuple[float, float, float, bool]:
        est = estimation.output.estimate
        return ((est.vertical_velocity_mps, estimation.vx, est.altitude_m, not fdir.summary.imu_lost) if est
                else (0.0, estimation.vx, 0.0, False))

    guard = EngineGuard(devices.engine, events, flight_time, nav, guidance_config.arrest_law(),
                        guidance_config.max_pitch_rad, guidance_config.full_flow_kg_per_s,
                        guidance_config.dry_mass_kg, guidance_config.command_deadline_s,
                        guidance_config.release_after_valid)
    guidance = GuidanceTask(estimation, fdir, guard, events, guidance_config, devices.contact,
                            period_s=schedule["guidance"][0] / tick_hz)
    estimation.commanded_force = guidance.commanded_force_while_imu_lost

    key_file = config.get("commands", {}).get("key_file")
    try:
        key = load_key(key_file) if key_file else None
    except KeyFileError as exc:
        raise ConfigError(f"{source}: [commands] {exc}") from None
    gate = CommandGate(key)  # no key file: every command is refused as unauthenticated
    targets = {"guidance": guidance.config, "fdir": fdir.config}

    def set_param(index: int, value: float) -> str | None:
        params = encoder.d.parameters
        if index >= len(params):
            return f"no parameter {index}"
        p = params[index]
        try:
            checked = check_value(p.section, p.name, value)
        except ConfigError as exc:
            return str(exc)
        setattr(targets[p.section], p.name, checked)
        return None

    link = downlink.link
    def arm() -> str | None:
        reason = arm_refusal(devices)
        return reason if reason is not None else guidance.arm()

    handlers = {"PING": lambda: downlink(encoder.ping_reply(flight_time())) or None, "ARM": arm,
                "START_DESCENT": guidance.start_descent, "ABORT": guidance.abort, "SET_PARAM": set_param}
    commands = CommandService(gate, handlers, encoder, downlink, events, flight_time,
                              receive=link.receive if link is not None else list)
    watchdog = _build_watchdog(config.get("watchdog", {}), source)
    exe_cfg = config.get("executive", {})
    executive = Executive(clock, tick_hz, [], events, exe_cfg.get("max_behind_slots", 10),
                          exe_cfg.get("max_slots_per_wake", 3), flight_time=flight_time)
    health = HealthMonitor(executive, watchdog)
    system: FlightSystem  # bound below, before the executive first runs

    link_state = {name: True for name, _ in devices.links}

    def housekeeping_task(_deadline: int) -> None:
        events.tick()  # a suppressed event is reported even when no new one comes
        for name, health in devices.links:  # real devices: a link that went or came back
            if health.ok != link_state[name]:
                link_state[name] = health.ok
                events.emit("DEVICE_LINK", DEVICE_IDS[name], int(health.ok))
        if log is not None and log.write_errors != system_state["log_errors"]:
            system_state["log_errors"] = log.write_errors
            events.emit("LOG_WRITE_FAILED", log.write_errors)
        downlink(encoder.housekeeping(flight_time(), housekeeping(system)))

    log = downlink.log
    system_state = {"log_errors": 0}
    runs: dict[str, Callable[[int], None]] = {
        "estimation": estimation.run, "fdir": fdir.run, "guidance": guidance.run, "engine_guard": guard.run,
        "commands": commands.run, "health": health.run, "housekeeping": housekeeping_task,
    }
    for name, (divisor, offset, budget) in schedule.items():
        executive.add_task(ScheduledTask(name, runs[name], divisor, offset, budget))
    world = devices.world
    if world is not None and not isinstance(clock, LockstepClock):
        # a simulated world under the real-time clock: step it first in every slot, to the
        # slot's deadline (a lockstep clock steps it itself)
        executive.add_task(ScheduledTask("world", lambda deadline: world.advance_to(deadline - (executive.start_ns or 0)),
                                         1, 0, 500.0), index=0)
    system = FlightSystem(executive, clock, flight_time, devices, estimation, fdir, guidance, guard, events,
                          commands, health, watchdog, downlink, encoder, config)
    return system


def _build_link(sec: dict, source: str):
    kind = sec.get("kind", "none")
    if kind == "none":
        return None
    if kind == "udp":
        bind = (sec.get("bind_host", "127.0.0.1"), sec.get("bind_port", 0))
        try:
            return UdpLink(bind, (sec.get("remote_host", "127.0.0.1"), sec.get("remote_port", 10015)))
        except OSError as exc:
            raise ConfigError(f"{source}: [link] cannot bind UDP {bind[0]}:{bind[1]}: {exc.strerror or exc}") from None
    if "device" not in sec:
        raise ConfigError(f"{source}: [link] kind = 'serial' needs device = '/dev/...'")
    try:
        return SerialLink.open(sec["device"], sec.get("baudrate", 921600))
    except Exception as exc:  # noqa: BLE001 - SerialException, OSError: the device is not there
        raise ConfigError(f"{source}: [link] cannot open {sec['device']}: {exc}") from None


def _build_watchdog(sec: dict, source: str) -> Watchdog:
    kind = sec.get("kind", "none")
    try:
        if kind == "linux":
            return LinuxWatchdog(sec.get("device", "/dev/watchdog"))
        if kind == "systemd":
            return SystemdWatchdog()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: [watchdog] {kind}: {exc}") from None
    return NoWatchdog()


def _close_all(closers: list[Callable[[], None]]) -> None:
    """Close what a failed build opened, newest first; a closer that fails does not stop the rest."""
    for close in reversed(closers):
        try:
            close()
        except Exception:  # noqa: BLE001, S110 - the build's own error is the one to report
            pass


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def housekeeping(s: FlightSystem) -> dict[str, float | int | str]:
    est = s.estimation.output.estimate
    out = s.estimation.output
    health = s.fdir.summary.health
    log = s.log
    return {
        "time_s": s.time(),
        "altitude_m": est.altitude_m if est else 0.0,
        "vertical_velocity_mps": est.vertical_velocity_mps if est else 0.0,
        "terrain_m": est.terrain_elevation_m if est else 0.0,
        "hat_m": est.height_above_terrain_m if est else 0.0,
        "hat_sigma_m": est.height_above_terrain_sigma_m if est else 0.0,
        "horizontal_speed_mps": s.estimation.vx,
        "primary_health": int(health.get(PRIMARY_ALTIMETER, 0)),
        "short_range_health": int(health.get(SHORT_RANGE_ALTIMETER, 0)),
        "phase": int(s.guidance.phase),
        "throttle": _finite(s.guidance.throttle),
        "pitch_rad": _finite(s.guidance.pitch_rad),
        "mass_kg": _finite(s.guidance.mass_kg),
        "cycle_slips": s.executive.stats.total_slips,
        "max_tick_us": max((t.max_us for t in s.executive.task_stats.values()), default=0.0),
        "commands_rejected": s.commands.gate.rejected,
        "command_epoch": s.commands.gate.epoch,
        "imu_health": int(s.fdir.summary.imu_lost),
        "imu_gaps": out.imu_gaps,
        "pitch_sigma_rad": out.pitch_sigma_rad,
        "engine_guard": int(s.guard.safed),
        "task_failures": s.executive.failures,
        "last_failed_task": s.executive.last_failed_task,
        "events_suppressed": s.events.suppressed_total,
        "log_write_errors": log.write_errors if log else 0,
        "log_records_lost": (log.dropped + log.lost) if log else 0,
        "link_errors": s.downlink.link_errors,
        "realtime": s.realtime_flags,
    }


def config_fields(cls) -> set[str]:
    """The keys a config dataclass takes (for the schema's tests)."""
    return {f.name for f in fields(cls)}
