"""Software-in-the-loop: the real flight executive flies inside the ground simulator.

The flight side is built by `flight.wiring.build` exactly as on the board; only the devices
(the simulator's feed queues, engine and contact switch) and the clock (lockstep: time moves
when the executive waits, and the world is stepped to that instant first) differ. Nothing
of the flight code is replaced or patched; the runner only reads what the flight publishes
(its estimate, FDIR's last outcomes, guidance's command, events) to score and record.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flight import wiring
from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER
from flight.estimation.altitude_filter import Policy
from flight.executive.clock import LockstepClock
from ground.scenarios import Scenario
from ground.sim.terrain import Terrain
from ground.sim.world import World

TRACE_COLUMNS = (
    "time_s", "downrange_m", "altitude_m", "terrain_m", "hat_m", "vz_mps", "vx_mps",
    "est_altitude_m", "est_vz_mps", "est_terrain_m", "est_hat_m", "est_hat_sigma_m", "est_vx_mps",
    "primary_range_m", "primary_status", "short_range_m", "short_status",
    "phase", "throttle_cmd", "pitch_cmd_rad", "throttle", "pitch_rad", "mass_kg", "propellant_kg",
)
ESTIMATE_ZERO_M = 0.5  # "estimated height <= 0.5 m"
AT_TOUCHDOWN_M = 3.0  # ... counts as at touchdown when the true height is within a leg's length
HAT_ERROR_BELOW_M = 2000.0
SEEN_WITHIN_S = 1.0  # a working altimeter's valid sample this recent: it sees the ground
SEEN_SETTLE_S = 3.0  # ... and has for this long
STEP_M = 20.0  # the ground below changing this much in one 10 ms step: a step crossed
STEP_WINDOW_S = 1.0  # errors this close to crossing a step are the step's, not the estimate's ...
STEP_WINDOW_M = 100.0  # ... as are those this close to it downrange (one profile cell: where a step
# seen ahead is taken in, issue's bar "reflected within one profile cell of crossing it")
BIAS_WALK_MARGIN = 10.0  # the flight's bias random walk: the IMU's instability with a 10x margin



@dataclass
class SilResult:
    summary: dict[str, Any]
    trace: list[tuple] = field(default_factory=list)
    events: list[tuple[float, str, tuple[float, ...]]] = field(default_factory=list)
    terrain: Terrain | None = None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def flight_config(scenario: Scenario, estimator: str, terrain: Terrain, seed: int) -> dict[str, Any]:
    """The flight's configuration for this run: what the board would be told at descent
    start (orbit determination with its errors drawn from the seed, the onboard terrain
    prior), plus the vehicle's numbers for guidance."""
    ini, nav, v = scenario.initial, scenario.navigation, scenario.vehicle
    rng = np.random.default_rng([seed, 0x5EED])
    e = rng.standard_normal(6)
    prior = nav.terrain_prior_m
    if prior is None:
        prior = terrain.elevation(ini.downrange_m) + nav.terrain_prior_sigma_m * float(e[3])
    config: dict[str, Any] = {
        "executive": {"clock": "lockstep"},
        "estimator": {
            "policy": estimator,
            "initial_altitude_m": ini.altitude_m + nav.altitude_sigma_m * float(e[0]),
            "initial_altitude_sigma_m": nav.altitude_sigma_m,
            "initial_vertical_speed_mps": ini.vertical_speed_mps + nav.vertical_speed_sigma_mps * float(e[1]),
            "initial_vertical_speed_sigma_mps": max(nav.vertical_speed_sigma_mps, 0.01),
            "horizontal_speed_mps": ini.horizontal_speed_mps + nav.horizontal_speed_sigma_mps * float(e[2]),
            "initial_terrain_m": prior,
            "initial_terrain_sigma_m": nav.terrain_prior_sigma_m,
            "initial_bias_sigma_mps2": max(2.0 * scenario.imu.bias_sigma_mps2, 1e-5),
            "initial_downrange_m": ini.downrange_m + nav.downrange_sigma_m * float(e[4]),
            # the star tracker's hand-over: the body starts upright in the simulator
            "initial_pitch_rad": nav.attitude_sigma_rad * float(e[5]),
            "initial_pitch_sigma_rad": max(nav.attitude_sigma_rad, 1e-6),
            "gyro_noise_density_radps_per_rthz": scenario.imu.gyro_noise_density_radps_per_rthz,
            "gyro_bias_sigma_radps": max(scenario.imu.gyro_bias_sigma_radps, 1e-9),
            # the mounts and beams as the board is built: the flight is told these
            "primary_cant_rad": scenario.primary.cant_rad,
            "short_range_cant_rad": scenario.short_range.cant_rad,
            "primary_divergence_rad": scenario.primary.divergence_rad,
            **({"terrain_map": nav.terrain_map} if nav.terrain_map else {}),
            "short_range_divergence_rad": scenario.short_range.divergence_rad,
            # tuned to the vehicle's IMU (calibrated in the coast): its bias instability with a
            # 10x margin in sigma. The kernel's generic default (1e-6) would let the height
            # sigma grow to kilometres in a 10-minute blind descent.
            "parameters": {"bias_walk_psd": (BIAS_WALK_MARGIN * scenario.imu.bias_walk_mps2_per_rts) ** 2},
        },
        "guidance": {
            "max_thrust_n": v.max_thrust_n * v.max_throttle,
            "min_throttle": v.min_throttle / v.max_throttle,
            "isp_s": v.isp_s,
            "initial_mass_kg": v.wet_mass_kg,
            "dry_mass_kg": v.dry_mass_kg,
        },
    }
    if scenario.site is not None:
        config["guidance"]["site_downrange_m"] = scenario.site.downrange_m
    return _merge(config, scenario.flight)


def make_world(scenario: Scenario, terrain: Terrain, seed: int) -> World:
    ini = scenario.initial
    return World(scenario.vehicle, terrain, altitude_m=ini.altitude_m, horizontal_speed_mps=ini.horizontal_speed_mps,
                 vertical_speed_mps=ini.vertical_speed_mps, downrange_m=ini.downrange_m,
                 primary=scenario.primary, short_range=scenario.short_range, imu=scenario.imu,
                 faults=scenario.make_faults(), seed=seed)


class _Recorder:
    """Steps the world, then looks at truth and the flight's published state once per slot."""

    def __init__(self, world: World, record_every: int) -> None:
        self.world = world
        self.system: wiring.FlightSystem | None = None
        self.record_every = record_every
        self.slot = 0
        self.max_hat_error = 0.0
        self.seen_errors: list[tuple[float, float, float]] = []  # (time, downrange, error)
        self.step_times: list[tuple[float, float]] = []  # (time, downrange) of each step crossed
        self.last_below = world.terrain_below_m
        self.seen_since: float | None = None
        self.zero_true_hat: float | None = None
        self.zero_time: float | None = None
        self.propellant_out_s: float | None = None
        self.trace: list[tuple] = []
        self.last_seen = {PRIMARY_ALTIMETER: -1.0, SHORT_RANGE_ALTIMETER: -1.0}
        self.world_wall_s = 0.0  # wall time spent stepping the simulated world (the rest is flight + recording)

    def __call__(self, t_ns: int) -> None:
        world = self.world
        t0 = time.perf_counter()
        world.advance_to(t_ns)
        self.world_wall_s += time.perf_counter() - t0
        system = self.system
        if system is None:
            return
        est = system.estimation.output.estimate
        true_hat = world.hat_m
        if est is not None and world.touchdown is None:
            # "seen": a working altimeter has been giving valid samples for SEEN_SETTLE_S (the
            # filter's time to take them in), and the IMU is talking (the estimate is current)
            seen = world.time_s - world.ground_seen_s <= SEEN_WITHIN_S and not world.imu_silent
            if not seen:
                self.seen_since = None
            elif self.seen_since is None:
                self.seen_since = world.time_s
            if true_hat < HAT_ERROR_BELOW_M:
                err = abs(est.height_above_terrain_m - true_hat)
                self.max_hat_error = max(self.max_hat_error, err)
                if seen and world.time_s - self.seen_since >= SEEN_SETTLE_S and err > 1.0:  # type: ignore[operator]
                    self.seen_errors.append((world.time_s, world.body.state.downrange_m, err))
            if self.zero_time is None and est.height_above_terrain_m <= ESTIMATE_ZERO_M:
                self.zero_time, self.zero_true_hat = world.time_s, true_hat
        below = world.terrain_below_m
        if abs(below - self.last_below) > STEP_M and world.touchdown is None:
            self.step_times.append((world.time_s, world.body.state.downrange_m))  # crossed a step in the ground
        self.last_below = below
        if self.propellant_out_s is None and world.body.propellant_kg <= 0.0:
            self.propellant_out_s = world.time_s
        self.slot += 1
        if self.record_every and self.slot % self.record_every == 0:
            self._record(system, est)

    def _range(self, system: wiring.FlightSystem, sensor: int) -> tuple[float | str, str]:
        o = system.fdir.last_outcome.get(sensor)
        if o is None or o.time_s <= self.last_seen[sensor]:
            return "", ""
        self.last_seen[sensor] = o.time_s
        if o.status is not None:
            status = o.status.name
        elif o.profile is not None:
            status = "PROFILE_" + o.profile.name  # into the look-ahead profile
        elif not o.fused:
            status = "NOT_FUSED"
        else:
            status = "INVALID" if o.error == "device flagged invalid" else "ERROR"
        return round(o.range_m, 2), status

    def _record(self, system: wiring.FlightSystem, est) -> None:
        w, s, g = self.world, self.world.state, system.guidance
        pr, ps = self._range(system, PRIMARY_ALTIMETER)
        sr, ss = self._range(system, SHORT_RANGE_ALTIMETER)
        nan = math.nan
        self.trace.append((
            round(w.time_s, 3), round(s.downrange_m, 2), round(s.altitude_m, 2), round(w.terrain_below_m, 2),
            round(w.hat_m, 2), round(s.vertical_speed_mps, 3), round(s.horizontal_speed_mps, 3),
            round(est.altitude_m, 2) if est else nan, round(est.vertical_velocity_mps, 3) if est else nan,
            round(est.terrain_elevation_m, 2) if est else nan, round(est.height_above_terrain_m, 2) if est else nan,
            round(est.height_above_terrain_sigma_m, 3) if est else nan, round(system.estimation.vx, 3),
            pr, ps, sr, ss, g.phase.name, round(g.throttle, 4), round(g.pitch_rad, 4),
            round(w.body.throttle, 4), round(w.body.pitch_rad, 4), round(w.body.mass_kg, 3),
            round(w.body.propellant_kg, 3),
        ))


def run(scenario: Scenario, estimator: str = "terrain-aware", seed: int = 0, terrain: Terrain | None = None,
        record: bool = True, trace_hz: float = 10.0) -> SilResult:
    """Fly one scenario once. Deterministic for (scenario, estimator, seed, terrain)."""
    policy = Policy.parse(estimator)
    terrain = terrain if terrain is not None else scenario.terrain(seed)
    world = make_world(scenario, terrain, seed)
    tick_hz = 100
    recorder = _Recorder(world, round(tick_hz / trace_hz) if record else 0)
    config = flight_config(scenario, policy.label, terrain, seed)
    system = wiring.build(config, wiring.Devices(world.imu, [world.primary, world.short_range], world.engine,
                                                 world.contact, world=world),
                          clock=LockstepClock(on_advance=recorder))
    recorder.system = system
    events: list[tuple[float, str, tuple[float, ...]]] = []
    system.events.listeners.append(lambda t, name, args: events.append((t, name, args)))
    system.guidance.arm()
    system.guidance.start_descent()
    limit = scenario.criteria.time_limit_s
    wall0 = time.perf_counter()
    try:
        system.executive.run(until=lambda: world.finished() or world.time_s >= limit)
    finally:
        system.close()
    wall = time.perf_counter() - wall0
    summary = summarise(scenario, policy.label, seed, world, system, recorder, wall)
    return SilResult(summary, recorder.trace, events, terrain)


def summarise(scenario: Scenario, estimator: str, seed: int, world: World, system: wiring.FlightSystem,
              rec: _Recorder, wall_s: float) -> dict[str, Any]:
    crit = scenario.criteria
    td = world.touchdown
    filt = system.estimation.filter
    counts = [filt.sensor_counts(i) for i in (PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER)]
    if td is None:
        outcome = "timeout"
    elif td.vertical_speed_mps <= crit.max_vertical_speed_mps and td.horizontal_speed_mps <= crit.max_horizontal_speed_mps \
            and not td.slope_contact:
        outcome = "landed"
    else:
        outcome = "crashed"
    zero = rec.zero_true_hat if rec.zero_true_hat is not None and rec.zero_true_hat > AT_TOUCHDOWN_M else None
    flight_time = td.time_s if td else world.time_s

    def r(x: float | None, n: int = 2) -> float | None:
        return None if x is None else round(float(x), n)

    return {
        "scenario": scenario.name,
        "estimator": estimator,
        "seed": seed,
        "outcome": outcome,
        "touchdown_vertical_speed_mps": r(td.vertical_speed_mps, 3) if td else None,
        "touchdown_horizontal_speed_mps": r(td.horizontal_speed_mps, 3) if td else None,
        "touchdown_downrange_m": r(td.downrange_m, 1) if td else None,
        "touchdown_on_step_face": td.slope_contact if td else None,
        "site_downrange_m": scenario.site.downrange_m if scenario.site else None,
        "site_miss_m": r(abs(td.downrange_m - scenario.site.downrange_m), 1) if td and scenario.site else None,
        "initial_propellant_kg": r(scenario.vehicle.propellant_kg, 2),
        "propellant_remaining_kg": r(world.body.propellant_kg, 2),
        "flight_time_s": r(flight_time, 2),
        "max_hat_error_m_below_2km": r(rec.max_hat_error, 2),
        "max_hat_error_m_below_2km_seen": r(max((e for t, x, e in rec.seen_errors
                                                 if all(abs(t - ts) > STEP_WINDOW_S and abs(x - xs) > STEP_WINDOW_M
                                                        for ts, xs in rec.step_times)),
                                                default=0.0), 2),
        "estimate_zero_true_height_m": r(zero, 1),
        "estimate_zero_time_s": r(rec.zero_time, 2) if zero is not None else None,
        "propellant_exhausted_s": r(rec.propellant_out_s, 2),
        "terrain_steps_absorbed": sum(c["steps"] for c in counts),
        "sensor_faults_rejected": sum(c["rejected"] + c["stuck"] for c in counts),
        "primary_locked_out": counts[0]["locked_out"],
        "flight_phase_at_end": system.guidance.phase.name,
        "flight_detected_touchdown": system.guidance.touchdown_time_s is not None,
        "zero_trap_events": system.fdir.summary.zero_trap_events,
        "events": dict(sorted(system.events.counts.items())),
        "cycle_slips": system.executive.stats.total_slips,
        "task_failures": sum(s.failures for s in system.executive.task_stats.values()),
        "criteria": {"max_vertical_speed_mps": crit.max_vertical_speed_mps,
                     "max_horizontal_speed_mps": crit.max_horizontal_speed_mps},
        "wall_time_s": r(wall_s, 3),
        "wall_time_world_s": r(rec.world_wall_s, 3),
        "sim_speed_x_realtime": r(world.time_s / wall_s if wall_s > 0 else math.inf, 1),
    }


def run_to_dir(scenario: Scenario, out_dir: Path, estimator: str = "terrain-aware", seed: int = 0,
               terrain: Terrain | None = None, plot: bool = True) -> dict[str, Any]:
    """Fly once and leave summary.json, trace.csv and (unless plot=False) plot.png in out_dir.
    The folder is made first: a path that cannot be written fails before the flight, not after."""
    from ground import report

    out_dir.mkdir(parents=True, exist_ok=True)
    result = run(scenario, estimator, seed, terrain)
    report.write_summary(out_dir / "summary.json", result.summary)
    report.write_trace(out_dir / "trace.csv", TRACE_COLUMNS, result.trace)
    if plot:
        report.plot(out_dir / "plot.png", TRACE_COLUMNS, result.trace, result.events, result.summary)
    return result.summary
