"""Descent guidance: IDLE -> ARMED -> BRAKING -> APPROACH -> TERMINAL -> TOUCHDOWN -> SAFE,
plus ABORT_HOLD (hover and hold).

The approach is flown against a pessimistic height (estimate - k sigma), so late, missing or
doubted altimetry costs propellant, not the vehicle. The control law is pure: `command()`
maps (phase, estimate, FDIR summary, mass) to throttle and thrust pitch; the task class
keeps the phase, the propellant book and the pitch-rate limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from flight.devices.interfaces import ContactSwitch
from flight.estimation.task import EstimationTask
from flight.executive.scheduler import EventSink
from flight.fdir.monitor import FdirTask
from flight.guidance.safe import ArrestLaw, EngineGuard

STANDARD_GRAVITY = 9.80665


class Phase(IntEnum):
    IDLE = 0
    ARMED = 1
    BRAKING = 2
    APPROACH = 3
    TERMINAL = 4
    TOUCHDOWN = 5
    SAFE = 6
    ABORT_HOLD = 7


POWERED = (Phase.BRAKING, Phase.APPROACH, Phase.TERMINAL, Phase.ABORT_HOLD)


@dataclass
class GuidanceConfig:
    max_thrust_n: float = 2500.0
    min_throttle: float = 0.2
    isp_s: float = 320.0
    initial_mass_kg: float = 650.0
    dry_mass_kg: float = 340.0
    propellant_reserve_kg: float = 8.0
    pitch_rate_limit_radps: float = 0.35
    max_pitch_rad: float = 1.65  # past horizontal: braking from orbit thrusts slightly up-range
    gravity_mps2: float = 1.62
    body_radius_m: float = 1737.4e3
    pessimism_sigma: float = 3.0
    braking_end_speed_mps: float = 3.0  # |vx| below this ends braking
    high_gate_hat_m: float = 2000.0  # braking aims to end this high above terrain (pessimistic)
    max_climb_speed_mps: float = 10.0  # braking may climb toward the gate when terrain rises
    horizontal_time_constant_s: float = 8.0
    vertical_time_constant_s: float = 2.0
    approach_decel_mps2: float = 0.6  # the profile: |v| = sqrt(2 a (h_p - terminal_height)) + terminal speed
    max_descent_speed_mps: float = 60.0
    terminal_height_m: float = 25.0
    terminal_speed_mps: float = 0.8
    blind_descent_speed_mps: float = 15.0  # while no altimeter is usable (IM-1, M2): see target_vertical_speed
    blind_mode: bool = True  # False: trust the estimate whatever FDIR says (M1's logic, for campaigns)
    touchdown_shock_mps2: float = 6.0  # specific force beyond what the engine was commanded to give
    terminal_exit_hat_m: float = 60.0  # a terminal phase entered on a wrong estimate is left above this
    touchdown_hat_m: float = 3.0
    site_downrange_m: float | None = None  # the landing site along the ground track; None: land where braking ends
    approach_distance_m: float = 3000.0  # the high gate's distance short of the site
    approach_horizontal_decel_mps2: float = 0.5  # sizes the high gate's speed: this over approach_distance_m
    max_approach_speed_mps: float = 80.0
    low_gate_distance_m: float = 20.0  # the approach ends this far short of the site ...
    low_gate_height_m: float = 30.0  # ... this high above the site's ground ...
    low_gate_speed_mps: float = 1.0  # ... moving toward it at this ...
    low_gate_descent_mps: float = 1.0  # ... and down at this
    min_time_to_go_s: float = 5.0  # the approach's time to go never falls below this
    braking_margin_m: float = 500.0  # braking aims this far short of the high gate
    glide_time_constant_s: float = 4.0  # the approach climbs back above its terrain floor at 1/this
    terminal_distance_m: float = 150.0  # this close to the site, its ground is the ground below
    terrain_clearance_slope: float = 0.1  # approach: keep h_p above terminal height + this x distance to the site
    max_approach_pitch_rad: float = 0.7  # approach: enough to slow 1.5 g-lunar horizontally
    max_low_pitch_rad: float = 0.45  # below low_pitch_below_hat_m: the short-range altimeter keeps the ground below
    low_pitch_below_hat_m: float = 250.0
    terminal_translate_mps: float = 0.5  # the terminal descent closes the last distance to the site at most this fast
    terminal_translate_floor_m: float = 15.0  # ... and stops translating below this height ...
    touchdown_max_horizontal_mps: float = 1.0  # ... where it descends no further while moving this fast ...
    touchdown_slow_horizontal_mps: float = 0.3  # ... and at full terminal speed once below this
    terminal_horizontal_time_constant_s: float = 3.0  # the terminal descent nulls the horizontal speed at 1/this
    imu_loss_hold_s: float = 2.0  # IMU lost: hold the last command this long, then arrest the descent
    arrest_time_constant_s: float = 4.0  # the safe and IMU-lost commands cancel the descent speed at 1/this
    command_deadline_s: float = 0.35  # no valid command for this long: the engine guard commands alone
    release_after_valid: int = 3  # valid commands in a row that give the engine back to guidance

    def __post_init__(self) -> None:
        """Relations between keys (each key's own range is in the dictionary's schema)."""
        if not self.dry_mass_kg < self.initial_mass_kg:
            raise ValueError(f"dry_mass_kg {self.dry_mass_kg} must be below initial_mass_kg {self.initial_mass_kg}")
        if self.propellant_reserve_kg >= self.initial_mass_kg - self.dry_mass_kg:
            raise ValueError(f"propellant_reserve_kg {self.propellant_reserve_kg} must be below the propellant "
                             f"{self.initial_mass_kg - self.dry_mass_kg}")
        if not self.terminal_height_m < self.high_gate_hat_m:
            raise ValueError(f"terminal_height_m {self.terminal_height_m} must be below high_gate_hat_m "
                             f"{self.high_gate_hat_m}")
        if self.max_thrust_n <= self.initial_mass_kg * self.gravity_mps2:
            raise ValueError(f"max_thrust_n {self.max_thrust_n} cannot hold initial_mass_kg {self.initial_mass_kg} "
                             f"against gravity_mps2 {self.gravity_mps2}")

    def arrest_law(self) -> ArrestLaw:
        return ArrestLaw(self.max_thrust_n, self.min_throttle, self.gravity_mps2, self.body_radius_m,
                         self.arrest_time_constant_s)

    @property
    def full_flow_kg_per_s(self) -> float:
        return self.max_thrust_n / (self.isp_s * STANDARD_GRAVITY)


@dataclass(frozen=True)
class NavState:
    """What guidance needs to know, in one place."""

    hat_m: float
    hat_sigma_m: float
    vertical_speed_mps: float
    horizontal_speed_mps: float
    altitude_m: float
    altimetry_missing: bool
    downrange_m: float = 0.0
    site_height_m: float = math.nan  # altitude above the landing site's ground (nan: no site)


@dataclass(frozen=True)
class Command:
    throttle: float
    pitch_rad: float
    target_vertical_speed_mps: float
    pessimistic_hat_m: float


def blind(nav: NavState, c: GuidanceConfig) -> bool:
    return c.blind_mode and nav.altimetry_missing


def site_distance(nav: NavState, c: GuidanceConfig) -> float | None:
    """Downrange still to go to the landing site (+ ahead), or None when there is none."""
    return None if c.site_downrange_m is None else c.site_downrange_m - nav.downrange_m


def high_gate_speed(c: GuidanceConfig) -> float:
    """The horizontal speed the approach starts with: a constant deceleration over its distance."""
    return min(c.max_approach_speed_mps, math.sqrt(2.0 * c.approach_horizontal_decel_mps2 * c.approach_distance_m))


def approach_time_to_go(nav: NavState, c: GuidanceConfig) -> float:
    """At the start of the approach: the time to the low gate at a constant deceleration."""
    d = site_distance(nav, c)
    if d is None:
        return c.min_time_to_go_s
    return max(2.0 * abs(d) / (abs(nav.horizontal_speed_mps) + c.low_gate_speed_mps), c.min_time_to_go_s)


def approach_profile_speed(h_p: float, c: GuidanceConfig) -> float:
    """The fastest descent the pessimistic height allows: sqrt(2 a (h_p - h_terminal)) + v_terminal."""
    above = max(h_p - c.terminal_height_m, 0.0)
    return min(c.max_descent_speed_mps, math.sqrt(2.0 * c.approach_decel_mps2 * above) + c.terminal_speed_mps)


def polynomial_acceleration(to_go_m: float, speed_mps: float, target_speed_mps: float, t_go_s: float) -> float:
    """The acceleration now of the linear-in-time profile (Apollo's explicit guidance, E-guidance)
    that arrives `to_go_m` away at `target_speed_mps` in `t_go_s`:
    a = 6 Δ/T² − (4 v + 2 v_T)/T.

    >>> round(polynomial_acceleration(100.0, 10.0, 0.0, 20.0), 3)  # 10 m/s and 100 m: brake at 0.5
    -0.5
    """
    return 6.0 * to_go_m / (t_go_s * t_go_s) - (4.0 * speed_mps + 2.0 * target_speed_mps) / t_go_s


def target_vertical_speed(phase: Phase, nav: NavState, c: GuidanceConfig, horizontal_accel_mps2: float = 0.0) -> float:
    """Up-positive vertical speed to fly, for the phases flown on a speed target.

    Approach without a site (or blind): the profile |v| = sqrt(2 a (h_p - h_terminal)) + v_terminal
    against the pessimistic height h_p = HAT - k sigma, so doubt costs time, not the vehicle.
    Blind (no altimeter has given a good sample lately): never slower than the blind speed -
    hovering on a pessimistic guess burns the propellant (M1's end), and from the blind speed the
    short-range altimeter's ~180 m acquisition leaves room to stop. Braking: reach the high gate
    (pessimistic) when the braking ends.
    """
    if phase == Phase.ABORT_HOLD:
        return 0.0
    h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
    if phase == Phase.TERMINAL:
        # the last metres wait for the horizontal speed to be gone: legs take ~1 m/s sideways
        if h_p < c.terminal_translate_floor_m:
            return -c.terminal_speed_mps * min(1.0, max(0.0, (c.touchdown_max_horizontal_mps - abs(
                nav.horizontal_speed_mps)) / (c.touchdown_max_horizontal_mps - c.touchdown_slow_horizontal_mps)))
        return -c.terminal_speed_mps
    speed = approach_profile_speed(h_p, c)
    if phase == Phase.BRAKING and horizontal_accel_mps2 > 0.0:
        d = site_distance(nav, c)
        if d is None:
            t_go = abs(nav.horizontal_speed_mps) / horizontal_accel_mps2
        else:  # to the high gate, at the mean of the speeds now and there
            t_go = 2.0 * max(d - c.approach_distance_m, 0.0) / (abs(nav.horizontal_speed_mps) + high_gate_speed(c))
        v = -(h_p - c.high_gate_hat_m) / max(t_go, 10.0)
        return max(-speed, min(c.max_climb_speed_mps, v))  # never faster down than the approach profile
    if blind(nav, c):
        speed = max(speed, c.blind_descent_speed_mps)
    return -speed


def approach_accelerations(nav: NavState, c: GuidanceConfig, t_go_s: float) -> tuple[float, float]:
    """(downrange, up) accelerations of the approach to a site, gravity not included.

    Both axes fly Apollo's explicit guidance to the low gate (low_gate_height_m above the site's
    ground, moving toward it at low_gate_speed_mps and down at low_gate_descent_mps) in the same
    time to go, so they arrive together. Inside that, the vehicle's own ground is kept safe: never
    faster down than the pessimistic-height profile allows, and never below a floor that shrinks
    toward the site (terminal height + terrain_clearance_slope x the distance left): rising ground
    (a slope, a rim) pushes the vehicle up before it gets there."""
    d = site_distance(nav, c)
    assert d is not None
    vx, vz = nav.horizontal_speed_mps, nav.vertical_speed_mps
    toward = 1.0 if d >= 0.0 else -1.0
    to_go_x = d - toward * c.low_gate_distance_m
    a_x = polynomial_acceleration(to_go_x, vx, toward * c.low_gate_speed_mps, t_go_s)
    a_z = polynomial_acceleration(c.low_gate_height_m - nav.site_height_m, vz, -c.low_gate_descent_mps, t_go_s)
    h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
    fastest = -approach_profile_speed(h_p, c)
    if vz + a_z * c.vertical_time_constant_s < fastest:
        a_z = (fastest - vz) / c.vertical_time_constant_s
    floor = c.terminal_height_m + max(abs(d) - c.terminal_distance_m, 0.0) * c.terrain_clearance_slope
    if h_p < floor:
        climb = min(c.max_climb_speed_mps, (floor - h_p) / c.glide_time_constant_s)
        a_z = max(a_z, (climb - vz) / c.vertical_time_constant_s)
    return a_x, a_z


def terminal_horizontal_speed(nav: NavState, c: GuidanceConfig) -> float:
    """The terminal descent closes what is left to the site at a walking pace and stops
    translating in its last metres; with no site it just stops."""
    d = site_distance(nav, c)
    h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
    if d is None or h_p < c.terminal_translate_floor_m:
        return 0.0
    return max(-c.terminal_translate_mps, min(c.terminal_translate_mps, d / c.horizontal_time_constant_s))


def command(phase: Phase, nav: NavState, mass_kg: float, c: GuidanceConfig, t_go_s: float | None = None) -> Command:
    """Thrust vector for the phase: vertical first, then what is left for horizontal.
    t_go_s: the approach's time to go to the low gate (a site's approach flies on it)."""
    h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
    if phase not in POWERED:
        return Command(0.0, 0.0, 0.0, h_p)
    accel_max = c.max_thrust_n / mass_kg
    net_gravity = c.gravity_mps2 - nav.horizontal_speed_mps**2 / (c.body_radius_m + nav.altitude_m)
    room = math.sqrt(max(accel_max**2 - max(net_gravity, 0.0) ** 2, 0.0))
    vx = nav.horizontal_speed_mps
    max_pitch = c.max_pitch_rad
    guided = (phase == Phase.APPROACH and t_go_s is not None and c.site_downrange_m is not None
              and math.isfinite(nav.site_height_m) and t_go_s > c.min_time_to_go_s)
    a_x, a_z = 0.0, 0.0
    if guided:
        a_x, a_z = approach_accelerations(nav, c, t_go_s)  # type: ignore[arg-type]
    if guided and not blind(nav, c):
        v_target = nav.vertical_speed_mps + a_z * c.vertical_time_constant_s
        a_up = a_z + net_gravity
    else:  # blind, the vertical flies the profile with its floor: the height to the site is a guess
        v_target = target_vertical_speed(phase, nav, c, room)
        a_up = (v_target - nav.vertical_speed_mps) / c.vertical_time_constant_s + net_gravity
    a_up = min(max(a_up, 0.0), accel_max)
    a_x_room = math.sqrt(max(accel_max**2 - a_up**2, 0.0))
    if phase == Phase.BRAKING:
        d = site_distance(nav, c)
        if d is None:
            a_x = -math.copysign(a_x_room, vx)
        else:
            # just enough to meet the high gate at its speed, aiming a margin short of it
            to_gate = d - c.approach_distance_m - c.braking_margin_m
            v_gate = high_gate_speed(c)
            need = (vx * vx - v_gate * v_gate) / (2.0 * to_gate) if to_gate > 1.0 else math.inf
            a_x = -math.copysign(min(a_x_room, max(need, 0.0)), vx)
    else:
        if not guided:
            tau = c.terminal_horizontal_time_constant_s if phase == Phase.TERMINAL else c.horizontal_time_constant_s
            a_x = (terminal_horizontal_speed(nav, c) - vx) / tau
        # low down the short-range altimeter must keep seeing the ground below: a tighter limit
        low = h_p < c.low_pitch_below_hat_m
        max_pitch = min(max_pitch, c.max_low_pitch_rad if low else c.max_approach_pitch_rad)
        # |a_x| <= a_up tan(pitch): against the vertical the engine will really give (at least
        # its minimum thrust's), so a coasting vertical channel does not forbid slowing down
        a_vertical = max(a_up, c.min_throttle * accel_max * math.cos(max_pitch))
        a_x_room = min(a_x_room, a_vertical * math.tan(max_pitch))
    a_x = max(-a_x_room, min(a_x_room, a_x))
    a_min = c.min_throttle * accel_max
    if math.hypot(a_up, a_x) < a_min:
        # the engine cannot go lower: keep the horizontal demand, spend the surplus vertically
        throttle = c.min_throttle
        pitch = math.asin(max(-1.0, min(1.0, -a_x / a_min))) if a_min > 0.0 else 0.0
    else:
        throttle = min(1.0, math.hypot(a_up, a_x) * mass_kg / c.max_thrust_n)
        pitch = math.atan2(-a_x, a_up)
    pitch = max(-max_pitch, min(max_pitch, pitch))
    return Command(throttle, pitch, v_target, h_p)


class GuidanceTask:
    """The 10 Hz guidance task: phase logic, propellant book, rate limit, engine command."""

    def __init__(
        self,
        estimation: EstimationTask,
        fdir: FdirTask,
        guard: EngineGuard,
        events: EventSink,
        config: GuidanceConfig | None = None,
        contact: ContactSwitch | None = None,
        period_s: float = 0.1,
    ) -> None:
        self.estimation = estimation
        self.fdir = fdir
        self.guard = guard
        self.events = events
        self.config = config or GuidanceConfig()
        self.contact = contact
        self.period_s = period_s
        self.phase = Phase.IDLE
        self.propellant_used_kg = 0.0
        self.throttle = 0.0
        self._previous_throttle = 0.0
        self.pitch_rad = 0.0
        self.last: Command | None = None
        self.propellant_low = False
        self.touchdown_time_s: float | None = None
        self.imu_lost_since_s: float | None = None
        self._gap_force = (0.0, 0.0, 0.0)  # while the IMU is lost: ∫f_up dt, ∫f_downrange dt, seconds
        self._gap_since = math.nan  # ... since then
        self._pitch_log = ((0.0, 0.0), (0.0, 0.0))  # the last two pitch commands (flight time, pitch)
        self._pitch_at_loss = 0.0  # the pitch commanded when the IMU's last sample before a loss was taken
        self._approach_start_s = 0.0
        self._approach_t_go_s = self.config.min_time_to_go_s
        self._arrest = self.config.arrest_law()

    # -- telecommands (return None when accepted, else the reason) -------------------------
    def arm(self) -> str | None:
        if self.phase != Phase.IDLE:
            return f"ARM needs IDLE, phase is {self.phase.name}"
        self.guard.arm(True)
        self._enter(Phase.ARMED)
        return None

    def start_descent(self) -> str | None:
        if self.phase == Phase.ARMED:
            self._enter(Phase.BRAKING)
        elif self.phase == Phase.ABORT_HOLD:
            self._enter(Phase.APPROACH)
        else:
            return f"START_DESCENT needs ARMED or ABORT_HOLD, phase is {self.phase.name}"
        return None

    def abort(self) -> str | None:
        if self.phase not in (Phase.BRAKING, Phase.APPROACH, Phase.TERMINAL):
            return f"ABORT needs a powered descent phase, phase is {self.phase.name}"
        self._enter(Phase.ABORT_HOLD)
        return None

    # -- state -------------------------------------------------------------------------
    @property
    def mass_kg(self) -> float:
        return self.config.initial_mass_kg - self.propellant_used_kg

    @property
    def propellant_kg(self) -> float:
        return self.config.initial_mass_kg - self.config.dry_mass_kg - self.propellant_used_kg

    def touched_down(self) -> bool:
        return self.phase in (Phase.TOUCHDOWN, Phase.SAFE)

    def _enter(self, phase: Phase) -> None:
        if phase != self.phase:
            self.phase = phase
            self.events.emit("PHASE", int(phase))
            if phase == Phase.APPROACH:
                nav = self.nav_state()
                self._approach_start_s = self.estimation.output.time_s
                self._approach_t_go_s = approach_time_to_go(nav, self.config) if nav else self.config.min_time_to_go_s

    def time_to_go_s(self) -> float:
        """The approach's time to go to the low gate (from its start, counted down)."""
        elapsed = self.estimation.output.time_s - self._approach_start_s
        return max(self._approach_t_go_s - elapsed, self.config.min_time_to_go_s)

    def nav_state(self) -> NavState | None:
        est = self.estimation.output.estimate
        if est is None:
            return None
        site = self.config.site_downrange_m
        site_height = math.nan
        if site is not None:
            # the site's ground: over it, the ground below; farther out, what the look-ahead profile
            # (or the map) knows of it, else the ground below
            known = self.estimation.terrain_at(site) if abs(site - self.estimation.downrange_m) > \
                self.config.terminal_distance_m else None
            site_height = est.altitude_m - (known if known is not None else est.terrain_elevation_m)
        return NavState(
            hat_m=est.height_above_terrain_m,
            hat_sigma_m=est.height_above_terrain_sigma_m,
            vertical_speed_mps=est.vertical_velocity_mps,
            horizontal_speed_mps=self.estimation.vx,
            altitude_m=est.altitude_m,
            altimetry_missing=self.fdir.summary.altimetry_missing,
            downrange_m=self.estimation.downrange_m,
            site_height_m=site_height,
        )

    # -- the task ------------------------------------------------------------------------
    def run(self, _deadline_ns: int) -> None:
        c = self.config
        nav = self.nav_state()
        peak_force = self.estimation.take_peak_force()
        if nav is None:
            return
        self._book_propellant()
        if self.fdir.summary.imu_lost and self.phase in POWERED:
            self._imu_lost(nav)
        else:
            if self.imu_lost_since_s is not None:
                # estimation bridged the gap in this tick, before this task: the record is spent
                self._gap_force, self._gap_since = (0.0, 0.0, 0.0), math.nan
            self.imu_lost_since_s = None
            self._phase_logic(nav, peak_force)
            cmd = command(self.phase, nav, self.mass_kg, c,
                          self.time_to_go_s() if self.phase == Phase.APPROACH else None)
            if self.propellant_kg <= 0.0:
                cmd = Command(0.0, cmd.pitch_rad, cmd.target_vertical_speed_mps, cmd.pessimistic_hat_m)
            max_step = c.pitch_rate_limit_radps * self.period_s
            self.pitch_rad += max(-max_step, min(max_step, cmd.pitch_rad - self.pitch_rad))
            self._previous_throttle = self.throttle
            self.throttle = cmd.throttle
            self.last = cmd
            self._pitch_log = (self._pitch_log[1], (self.estimation.output.time_s, self.pitch_rad))
        self.guard.offer(self.throttle, self.pitch_rad, self.phase in POWERED, self.mass_kg)

    def _imu_lost(self, nav: NavState) -> None:
        """No IMU: the estimate is stale. Hold the last command for imu_loss_hold_s (the
        estimation bridges the gap with that force held), then arrest the descent on a model of
        the thrust commanded, attitude held. Only the contact switch can end it in a touchdown."""
        c = self.config
        now = self.estimation.output.time_s
        if self.imu_lost_since_s is None:
            self.imu_lost_since_s = self._gap_since = now
            self._arrest.model_v = None
            self._gap_force = (0.0, 0.0, 0.0)
            # the pitch commanded when the last IMU sample was taken (the attitude then)
            last_sample = self.estimation.output.imu_last_s
            (_, p0), (t1, p1) = self._pitch_log
            self._pitch_at_loss = p1 if last_sample is None or t1 <= last_sample + 1e-9 else p0
        if self.contact is not None and self.contact.closed():
            self.touchdown_time_s = now
            self._enter(Phase.TOUCHDOWN)
            self.throttle = 0.0
            return
        if now - self.imu_lost_since_s <= c.imu_loss_hold_s:
            self._book_gap_force()
            return  # the last command stands
        if self._arrest.model_v is None:
            # the last estimate is from the last IMU sample; the held command has acted since
            last = self.estimation.output.imu_last_s or now
            g_eff = c.gravity_mps2 - nav.horizontal_speed_mps ** 2 / (c.body_radius_m + nav.altitude_m)
            held = self.throttle * c.max_thrust_n * math.cos(self.pitch_rad) / self.mass_kg - g_eff
            self._arrest.model_v = nav.vertical_speed_mps + held * (now - last)
        self._previous_throttle = self.throttle
        self.throttle = 0.0 if self.propellant_kg <= 0.0 else self._arrest.open_loop(
            self.mass_kg, self.pitch_rad, nav.horizontal_speed_mps, nav.altitude_m, self.period_s)
        self._book_gap_force()

    def _book_gap_force(self) -> None:
        """The specific force this cycle's command gives (thrust along body z: up cos θ, downrange
        −sin θ), summed while the IMU is lost: estimation bridges the horizontal speed with it."""
        a = self.throttle * self.config.max_thrust_n / self.mass_kg
        up, down, secs = self._gap_force
        dt = self.period_s
        self._gap_force = (up + a * math.cos(self.pitch_rad) * dt, down - a * math.sin(self.pitch_rad) * dt, secs + dt)

    def commanded_force_while_imu_lost(self) -> tuple[float, float, float, float, float]:
        """(∫f_up dt, ∫f_downrange dt, seconds, since, turn) of the thrust commanded since the
        IMU was last lost (flight time `since`; nan before any loss), and how far the pitch
        commanded turned since the IMU's last sample (the attitude controller turned with it)."""
        since = self.imu_lost_since_s if self.imu_lost_since_s is not None else self._gap_since
        return (*self._gap_force, since, self.pitch_rad - self._pitch_at_loss)

    def _book_propellant(self) -> None:
        c = self.config
        flow = self.throttle * c.max_thrust_n / (c.isp_s * STANDARD_GRAVITY)
        self.propellant_used_kg = min(self.propellant_used_kg + flow * self.period_s,
                                      c.initial_mass_kg - c.dry_mass_kg)

    def _phase_logic(self, nav: NavState, peak_force: float) -> None:
        c = self.config
        if self.phase in POWERED and not self.propellant_low and self.propellant_kg <= c.propellant_reserve_kg:
            self.propellant_low = True
            self.events.emit("PROPELLANT_LOW", self.propellant_kg)
            if self.phase == Phase.ABORT_HOLD:
                self._enter(Phase.TERMINAL)  # no propellant to hold with: commit to landing
        if self.phase == Phase.BRAKING:
            d = site_distance(nav, c)
            if (abs(nav.horizontal_speed_mps) < c.braking_end_speed_mps if d is None else
                    d <= c.approach_distance_m or abs(nav.horizontal_speed_mps) <= high_gate_speed(c)):
                self._enter(Phase.APPROACH)
        h_p = nav.hat_m - c.pessimism_sigma * nav.hat_sigma_m
        at_low_gate = c.site_downrange_m is not None and self.time_to_go_s() <= c.min_time_to_go_s \
            and h_p <= c.terminal_exit_hat_m
        if self.phase == Phase.APPROACH and not blind(nav, c) and (h_p <= c.terminal_height_m or at_low_gate):
            self._enter(Phase.TERMINAL)  # at the low gate (its time is up), or lower over rising ground
        elif self.phase == Phase.TERMINAL and h_p > c.terminal_exit_hat_m and not self.propellant_low:
            self._enter(Phase.APPROACH)  # the estimate moved up (a late altimeter): 0.8 m/s from here would
            #                              burn the propellant long before the ground
        if self.phase == Phase.TOUCHDOWN:
            self.guard.arm(False)
            self._enter(Phase.SAFE)
        elif self.phase in (Phase.TERMINAL, Phase.APPROACH, Phase.ABORT_HOLD) and self._touchdown(nav, peak_force):
            self.touchdown_time_s = self.estimation.output.time_s
            self._enter(Phase.TOUCHDOWN)

    def _touchdown(self, nav: NavState, peak_force: float) -> bool:
        c = self.config
        if self.contact is not None and self.contact.closed():
            return True
        near = nav.hat_m <= c.touchdown_hat_m + c.pessimism_sigma * nav.hat_sigma_m
        # the engine's own push (this cycle's or the last one's command) is not a shock
        thrust = max(self.throttle, self._previous_throttle) * c.max_thrust_n / self.mass_kg
        return near and peak_force - thrust >= c.touchdown_shock_mps2
