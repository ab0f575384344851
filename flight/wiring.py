"""The one place that builds the flight executive: devices, clock, tasks, schedule, links.

Everything else talks to protocols; only this module chooses implementations (simulated
or real devices, real-time or lockstep clock, UDP or serial link, which watchdog). The SIL
runner and `lander-flight` both call `build()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    Altimeter,
    ContactSwitch,
    EngineCommand,
    Imu,
)
from flight.devices.simulated import SimulatedBench
from flight.estimation.altitude_filter import AltitudeFilter, Policy
from flight.estimation.task import EstimationTask
from flight.executive.clock import Clock, FlightTime, LockstepClock, MonotonicClock
from flight.executive.health import (
    HealthMonitor,
    LinuxWatchdog,
    NoWatchdog,
    SystemdWatchdog,
    Watchdog,
)
from flight.executive.scheduler import Executive, ScheduledTask
from flight.fdir.monitor import FdirConfig, FdirTask
from flight.guidance.descent import GuidanceConfig, GuidanceTask
from flight.telemetry.commands import CommandGate, load_key
from flight.telemetry.flightlog import FlightLogWriter
from flight.telemetry.links import SerialLink, UdpLink
from flight.telemetry.packets import TelemetryEncoder
from flight.telemetry.service import CommandService, Downlink, EventService
from flight.tomlio import check_table, read_toml


class ConfigError(ValueError):
    pass


DEFAULT_SCHEDULE = {  # name: (rate divisor at 100 Hz, offset, budget in us)
    "estimation": (1, 0, 400.0),
    "fdir": (1, 0, 200.0),
    "guidance": (10, 0, 400.0),
    "housekeeping": (10, 0, 600.0),
    "commands": (10, 0, 600.0),
    "health": (100, 0, 200.0),
}

SECTIONS = {"executive", "schedule", "estimator", "devices", "guidance", "fdir", "link", "log",
            "watchdog", "commands", "run"}


@dataclass
class Devices:
    imu: Imu
    altimeters: list[Altimeter]
    engine: EngineCommand
    contact: ContactSwitch | None = None
    world: Any = None  # the simulated world, when there is one (stepped by a lockstep clock)


@dataclass
class FlightSystem:
    executive: Executive
    clock: Clock
    devices: Devices
    estimation: EstimationTask
    fdir: FdirTask
    guidance: GuidanceTask
    events: EventService
    commands: CommandService
    health: HealthMonitor
    watchdog: Watchdog
    downlink: Downlink
    encoder: TelemetryEncoder
    closers: list = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def load_config(path: str) -> dict[str, Any]:
    config = read_toml(path, ConfigError, "config file")
    unknown = set(config) - SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SECTIONS))}")
    return config


def _section(config: dict, name: str, allowed: set[str]) -> dict:
    return check_table(config.get(name, {}), f"[{name}]", allowed, ConfigError)


def _dataclass_overrides(cls, config: dict, name: str):
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    sec = _section(config, name, names)
    try:
        return cls(**sec)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def simulated_devices(config: dict) -> Devices:
    sec = _section(config, "devices", {"kind", "altitude_m", "vertical_speed_mps", "seed"})
    kind = sec.get("kind", "simulated")
    if kind != "simulated":
        raise ConfigError(f"[devices] kind = {kind!r}: only 'simulated' is available in this build")
    bench = SimulatedBench(altitude_m=float(sec.get("altitude_m", 2000.0)),
                           vertical_speed_mps=float(sec.get("vertical_speed_mps", -20.0)),
                           seed=int(sec.get("seed", 0)))
    return Devices(bench.imu, [bench.primary, bench.short_range], bench.engine, bench.contact, world=bench)


def build(config: dict, devices: Devices | None = None, clock: Clock | None = None) -> FlightSystem:
    exe_cfg = _section(config, "executive", {"tick_hz", "max_behind_slots", "max_slots_per_wake", "clock"})
    tick_hz = int(exe_cfg.get("tick_hz", 100))
    devices = devices or simulated_devices(config)
    if clock is None:
        kind = exe_cfg.get("clock", "realtime")
        if kind == "lockstep":
            world = devices.world
            clock = LockstepClock(on_advance=world.advance_to if world is not None else None)
        elif kind == "realtime":
            clock = MonotonicClock()
        else:
            raise ConfigError(f"[executive] clock = {kind!r}: choose 'realtime' or 'lockstep'")

    est_cfg = _section(config, "estimator", {"policy", "initial_altitude_m", "initial_vertical_speed_mps",
                                             "initial_altitude_sigma_m", "initial_vertical_speed_sigma_mps",
                                             "initial_terrain_m", "initial_terrain_sigma_m",
                                             "initial_bias_sigma_mps2",
                                             "horizontal_speed_mps", "parameters"})
    try:
        policy = Policy.parse(est_cfg.get("policy", "terrain-aware"))
        h0 = float(est_cfg.get("initial_altitude_m", 2000.0))
        v0 = float(est_cfg.get("initial_vertical_speed_mps", -20.0))
        sig0 = float(est_cfg.get("initial_altitude_sigma_m", 100.0))
        sig_v = float(est_cfg.get("initial_vertical_speed_sigma_mps", 1.0))
        t0 = float(est_cfg.get("initial_terrain_m", 0.0))  # the onboard map's elevation below
        sig_t = float(est_cfg.get("initial_terrain_sigma_m", sig0))
        sig_b = float(est_cfg.get("initial_bias_sigma_mps2", 0.01))  # accelerometer bias left after calibration
        filt = AltitudeFilter(policy, x0=(h0, v0, 0.0, t0), var0=(sig0**2, sig_v**2, sig_b**2, sig_t**2),
                              **est_cfg.get("parameters", {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[estimator]: {exc}") from None

    encoder = TelemetryEncoder()
    log_cfg = _section(config, "log", {"path", "flush_period_s", "fsync"})
    log = None
    if log_cfg.get("path"):
        log = FlightLogWriter(log_cfg["path"], float(log_cfg.get("flush_period_s", 1.0)), bool(log_cfg.get("fsync", False)))
    link = _build_link(_section(config, "link", {"kind", "bind_host", "bind_port", "remote_host", "remote_port",
                                                 "device", "baudrate"}))
    downlink = Downlink(link, log)
    time_s = FlightTime(clock)
    events = EventService(encoder, downlink, time_s)
    estimation = EstimationTask(filt, devices.imu, devices.altimeters, time_s, events,
                                horizontal_speed_mps=float(est_cfg.get("horizontal_speed_mps", 0.0)))

    fdir_config = _dataclass_overrides(FdirConfig, config, "fdir")
    guidance_config = _dataclass_overrides(GuidanceConfig, config, "guidance")
    if policy == Policy.M1_BASELINE:  # the whole altitude-trust policy of M1, for campaigns:
        fdir_config.zero_trap_enabled = False  # no "zero altitude but no touchdown" check
        guidance_config.blind_mode = False  # guidance believes the estimate whatever FDIR says
        guidance_config.pessimism_sigma = 0.0  # ... and flies its mean, not a pessimistic bound
    # guidance is bound below; FDIR only asks once the executive runs
    fdir = FdirTask(estimation, events, time_s, fdir_config, touched_down=lambda: guidance.touched_down())
    guidance = GuidanceTask(estimation, fdir, devices.engine, events, guidance_config, devices.contact,
                            period_s=DEFAULT_SCHEDULE["guidance"][0] / tick_hz)

    cmd_cfg = _section(config, "commands", {"key_file"})
    key = load_key(cmd_cfg["key_file"]) if cmd_cfg.get("key_file") else None
    gate = CommandGate(key)  # no key file: every command is refused as unauthenticated
    params = encoder.d.parameters

    def set_param(index: int, value: float) -> str | None:
        if index >= len(params):
            return f"no parameter {index}"
        try:
            guidance.config.set(params[index], value)
        except (KeyError, ValueError) as exc:
            return str(exc)
        return None

    handlers = {"PING": lambda: downlink(encoder.ping_reply(time_s())) or None, "ARM": guidance.arm,
                "START_DESCENT": guidance.start_descent, "ABORT": guidance.abort, "SET_PARAM": set_param}
    commands = CommandService(gate, handlers, encoder, downlink, events, time_s,
                              receive=link.receive if link is not None else (list))

    wd_cfg = _section(config, "watchdog", {"kind", "device"})
    watchdog = _build_watchdog(wd_cfg)

    schedule_cfg = _section(config, "schedule", set(DEFAULT_SCHEDULE))
    executive = Executive(clock, tick_hz, [], events, int(exe_cfg.get("max_behind_slots", 10)),
                          int(exe_cfg.get("max_slots_per_wake", 3)), flight_time=time_s)
    health = HealthMonitor(executive, watchdog)
    runs: dict[str, Callable[[int], None]] = {
        "estimation": estimation.run, "fdir": fdir.run, "guidance": guidance.run, "commands": commands.run,
        "health": health.run,
        # `system` is bound below, before the executive first runs
        "housekeeping": lambda _d: downlink(encoder.housekeeping(time_s(), housekeeping(system))),
    }
    for name, (divisor, offset, budget) in DEFAULT_SCHEDULE.items():
        over = schedule_cfg.get(name, {})
        executive.add_task(ScheduledTask(name, runs[name], int(over.get("divisor", divisor)),
                                         int(over.get("offset", offset)), float(over.get("budget_us", budget))))
    world = devices.world
    if world is not None and not isinstance(clock, LockstepClock):
        # a simulated world under the real-time clock: step it first in every slot, to the
        # slot's deadline (a lockstep clock steps it itself)
        executive.add_task(ScheduledTask("world", lambda deadline: world.advance_to(deadline - (executive.start_ns or 0)),
                                         1, 0, 500.0), index=0)
    system = FlightSystem(executive, clock, devices, estimation, fdir, guidance, events, commands, health,
                          watchdog, downlink, encoder)
    system.closers += [watchdog.close] + ([log.close] if log else []) + ([link.close] if link else [])
    return system


def _build_link(sec: dict):
    kind = sec.get("kind", "none")
    if kind == "none":
        return None
    if kind == "udp":
        return UdpLink((sec.get("bind_host", "127.0.0.1"), int(sec.get("bind_port", 0))),
                       (sec.get("remote_host", "127.0.0.1"), int(sec.get("remote_port", 10015))))
    if kind == "serial":
        if "device" not in sec:
            raise ConfigError("[link] kind = 'serial' needs device = '/dev/...'")
        try:
            return SerialLink.open(sec["device"], int(sec.get("baudrate", 921600)))
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"[link] cannot open {sec['device']}: {exc}") from None
    raise ConfigError(f"[link] kind = {kind!r}: choose 'none', 'udp' or 'serial'")


def _build_watchdog(sec: dict) -> Watchdog:
    kind = sec.get("kind", "none")
    try:
        if kind == "none":
            return NoWatchdog()
        if kind == "linux":
            return LinuxWatchdog(sec.get("device", "/dev/watchdog"))
        if kind == "systemd":
            return SystemdWatchdog()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[watchdog] {kind}: {exc}") from None
    raise ConfigError(f"[watchdog] kind = {kind!r}: choose 'none', 'linux' or 'systemd'")


def housekeeping(s: FlightSystem) -> dict[str, float | int]:
    est = s.estimation.output.estimate
    health = s.fdir.summary.health
    return {
        "time_s": s.estimation.output.time_s,
        "altitude_m": est.altitude_m if est else 0.0,
        "vertical_velocity_mps": est.vertical_velocity_mps if est else 0.0,
        "terrain_m": est.terrain_elevation_m if est else 0.0,
        "hat_m": est.height_above_terrain_m if est else 0.0,
        "hat_sigma_m": est.height_above_terrain_sigma_m if est else 0.0,
        "horizontal_speed_mps": s.estimation.vx,
        "primary_health": int(health.get(PRIMARY_ALTIMETER, 0)),
        "short_range_health": int(health.get(SHORT_RANGE_ALTIMETER, 0)),
        "phase": int(s.guidance.phase),
        "throttle": s.guidance.throttle,
        "pitch_rad": s.guidance.pitch_rad,
        "mass_kg": s.guidance.mass_kg,
        "cycle_slips": s.executive.stats.total_slips,
        "max_tick_us": max((t.max_us for t in s.executive.task_stats.values()), default=0.0),
        "commands_rejected": s.commands.gate.rejected,
    }
