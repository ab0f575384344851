"""The safe engine: one writer to the engine, and a defined command when guidance cannot give one.

`EngineGuard` owns the engine device. Guidance offers each command; the guard forwards it if it
is finite and within the engine's limits. When guidance has produced no valid command for
`command_deadline_s` of flight time (it raised K times in a row, stalled, or offered non-finite
or out-of-range values), the guard commands the safe command itself with an `ENGINE_GUARD`
event, and gives the engine back after `release_after_valid` valid offers in a row.

The safe command (justified in the guidance README): before powered flight or after touchdown,
the engine stays off. In powered flight: hold the last valid attitude, and the throttle that
arrests the descent against the estimated mass, `a_up = g_eff + clamp(-v/τ, 0, a_max)`, never
below the engine's minimum (never a cut above the ground), never pushing a climb. The vertical
speed comes from the estimate while the IMU is current, else from `ArrestLaw`'s own model (the
thrust it commanded, integrated from the last known speed). The mass is booked on from the last
valid offer at the commanded throttle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from flight.devices.interfaces import EngineCommand
from flight.executive.scheduler import EventSink


class ArrestLaw:
    """Throttle that cancels a descent at 1/τ, for a mass and a held attitude. Pure, apart from
    the open-loop speed model it keeps when no estimate is current."""

    __slots__ = ("gravity_mps2", "max_thrust_n", "min_throttle", "model_v", "radius_m", "tau_s")

    def __init__(self, max_thrust_n: float, min_throttle: float, gravity_mps2: float, body_radius_m: float,
                 tau_s: float) -> None:
        self.max_thrust_n = max_thrust_n
        self.min_throttle = min_throttle
        self.gravity_mps2 = gravity_mps2
        self.radius_m = body_radius_m
        self.tau_s = tau_s
        self.model_v: float | None = None  # open-loop vertical speed, up +

    def throttle(self, mass_kg: float, pitch_rad: float, vertical_speed_mps: float, horizontal_speed_mps: float,
                 altitude_m: float) -> float:
        g_eff = self.gravity_mps2 - horizontal_speed_mps ** 2 / (self.radius_m + max(altitude_m, 0.0))
        a_max = self.max_thrust_n / mass_kg
        a_up = g_eff + min(max(-vertical_speed_mps / self.tau_s, 0.0), a_max)
        c = math.cos(pitch_rad)
        throttle = 1.0 if c < 1e-3 else a_up * mass_kg / (self.max_thrust_n * c)
        return min(1.0, max(self.min_throttle, throttle))

    def open_loop(self, mass_kg: float, pitch_rad: float, horizontal_speed_mps: float, altitude_m: float,
                  dt_s: float) -> float:
        """The arrest throttle from the model speed, then the model advanced by what it commands."""
        v = self.model_v if self.model_v is not None else 0.0
        throttle = self.throttle(mass_kg, pitch_rad, v, horizontal_speed_mps, altitude_m)
        g_eff = self.gravity_mps2 - horizontal_speed_mps ** 2 / (self.radius_m + max(altitude_m, 0.0))
        self.model_v = v + (throttle * self.max_thrust_n * math.cos(pitch_rad) / mass_kg - g_eff) * dt_s
        return throttle


class EngineGuard:
    def __init__(self, engine: EngineCommand, events: EventSink, clock_s: Callable[[], float],
                 nav: Callable[[], tuple[float, float, float, bool]], law: ArrestLaw, max_pitch_rad: float,
                 full_flow_kg_per_s: float, dry_mass_kg: float, command_deadline_s: float = 0.35,
                 release_after_valid: int = 3) -> None:
        """nav() -> (vertical speed up +, horizontal speed, altitude, the IMU is current): what
        the guard reads of the navigation when it commands alone. full_flow_kg_per_s: propellant
        flow at full throttle, to keep the mass booked while guidance is out."""
        self.engine = engine
        self.events = events
        self.clock_s = clock_s
        self.nav = nav
        self.law = law
        self.max_pitch_rad = max_pitch_rad
        self.full_flow_kg_per_s = full_flow_kg_per_s
        self.dry_mass_kg = dry_mass_kg
        self.command_deadline_s = command_deadline_s
        self.release_after_valid = release_after_valid
        self.last_valid_s: float | None = None
        self.last_throttle = 0.0
        self.last_pitch_rad = 0.0
        self.last_mass_kg = 1.0
        self.powered = False  # the last valid offer was for powered flight
        self.safed = False
        self.valid_run = 0
        self.refused = 0  # offers refused (non-finite or out of range)
        self.safe_commands = 0
        self._last_run_s: float | None = None

    def arm(self, armed: bool) -> None:
        try:
            self.engine.arm(armed)
        except Exception:  # noqa: BLE001 - a driver that raises is counted; the link's health says why
            self.refused += 1

    def offer(self, throttle: float, pitch_rad: float, powered: bool, mass_kg: float) -> bool:
        """Guidance's command: forwarded when valid (unless the guard holds the engine)."""
        ok = (math.isfinite(throttle) and math.isfinite(pitch_rad) and math.isfinite(mass_kg) and mass_kg > 0.0
              and abs(pitch_rad) <= self.max_pitch_rad + 1e-9
              and (throttle == 0.0 or self.law.min_throttle - 1e-9 <= throttle <= 1.0 + 1e-9)
              and (powered or throttle == 0.0))
        if not ok:
            self.refused += 1
            self.valid_run = 0
            return False
        self.last_valid_s = self.clock_s()
        self.last_throttle, self.last_pitch_rad, self.last_mass_kg, self.powered = throttle, pitch_rad, mass_kg, powered
        if self.safed:
            self.valid_run += 1
            if self.valid_run < self.release_after_valid:
                return True
            self.safed = False
            self.law.model_v = None
            self.events.emit("ENGINE_GUARD", 0)
        self.engine.command(throttle, pitch_rad)
        return True

    def run(self, _deadline_ns: int) -> None:
        now = self.clock_s()
        dt = now - self._last_run_s if self._last_run_s is not None else 0.0
        self._last_run_s = now
        if not self.safed:
            started = self.last_valid_s if self.last_valid_s is not None else 0.0
            if now - started <= self.command_deadline_s:
                return
            self.safed = True
            self.valid_run = 0
            self.law.model_v = None
            self.events.emit("ENGINE_GUARD", 1)
        self._command_safe(dt)

    def _command_safe(self, dt_s: float) -> None:
        self.safe_commands += 1
        if not self.powered:
            self.engine.command(0.0, self.last_pitch_rad)
            return
        v, vx, altitude, imu_current = self.nav()
        pitch = self.last_pitch_rad
        if imu_current:
            self.law.model_v = v  # the model starts from the last known speed if the IMU goes
            throttle = self.law.throttle(self.last_mass_kg, pitch, v, vx, altitude)
        else:
            if self.law.model_v is None:
                self.law.model_v = v
            throttle = self.law.open_loop(self.last_mass_kg, pitch, vx, altitude, dt_s)
        self.engine.command(throttle, pitch)
        self.last_mass_kg = max(self.dry_mass_kg, self.last_mass_kg - throttle * self.full_flow_kg_per_s * dt_s)
