"""The FDIR task: turns kernel statuses and driver errors into sensor health, and watches
for the faults that lost landers.

- per-sensor health (sensor_health.py), with MISSING observations when a sensor that should
  be talking is silent (the M2 late rangefinder, the IM-1 dead one);
- a cross-check of the two altimeters when both are valid (dissimilar sensors disagreeing);
- the M1 trap: estimated height above terrain ~ 0 for a long time with no touchdown. The
  altimeters are re-opened and guidance is told;
- the IMU: lost when no sample came for `imu_lost_after_s` of flight time (the estimate is
  then stale; guidance holds, then arrests the descent: see the guidance README).

Time is the executive's flight time (`clock_s`), never a sensor's timestamp: a silent sensor
cannot stop the clock its silence is measured with.

It reads the estimation task's outcomes and writes an `FdirSummary` for guidance; it never
commands the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER
from flight.estimation.profile import ProfileStatus
from flight.estimation.task import EstimationTask, RangeOutcome
from flight.executive.scheduler import EventSink
from flight.fdir.sensor_health import Health, HealthConfig, Observation, SensorHealth, observe

PROFILE_GOOD = (ProfileStatus.FUSED, ProfileStatus.NEW, ProfileStatus.REPLACED)


def verdict(o: RangeOutcome) -> Observation:
    """What one range outcome says of its sensor: the kernel's verdict on a height update; for a
    sample that went into the look-ahead profile, the profile's (agreeing or new: good; held
    against its cell or outside the window: no verdict); set aside: no verdict; a driver error
    or a reading the device flagged: bad."""
    if o.status is not None:
        return observe(o.status)
    if o.profile is not None:
        return Observation.GOOD if o.profile in PROFILE_GOOD else Observation.PENDING
    return Observation.PENDING if not o.fused else Observation.BAD


@dataclass
class FdirConfig:
    health: HealthConfig = field(default_factory=HealthConfig)
    # a sensor is expected to talk below these (pessimistic) heights above terrain
    expected_below_m: dict[int, float] = field(
        default_factory=lambda: {PRIMARY_ALTIMETER: 5000.0, SHORT_RANGE_ALTIMETER: 150.0}
    )
    missing_after_s: float = 1.0
    cross_check_sigma: float = 5.0
    cross_check_margin_m: float = 1.0
    cross_check_window_s: float = 0.2
    cross_check_after: int = 5
    zero_trap_enabled: bool = True
    zero_trap_hat_m: float = 1.0
    zero_trap_after_s: float = 15.0
    pessimism_sigma: float = 3.0
    imu_lost_after_s: float = 0.05  # no IMU sample for this long: IMU lost (5 samples at 100 Hz)


@dataclass
class FdirSummary:
    health: dict[int, Health]
    primary_missing: bool = False
    altimetry_missing: bool = False  # no usable altimeter at all while one is expected
    altimeters_disagree: bool = False
    zero_trap_events: int = 0
    imu_lost: bool = False  # no IMU sample for imu_lost_after_s: the estimate is stale
    time_s: float = 0.0


class FdirTask:
    def __init__(
        self,
        estimation: EstimationTask,
        events: EventSink,
        clock_s: Callable[[], float],
        config: FdirConfig | None = None,
        touched_down: Callable[[], bool] = lambda: False,
    ) -> None:
        self.estimation = estimation
        self.clock_s = clock_s
        self.events = events
        self.config = config or FdirConfig()
        self.touched_down = touched_down
        ids = [a.sensor_id for a in estimation.altimeters]
        self.sensors = {i: SensorHealth(self.config.health) for i in ids}
        self.last_sample_s: dict[int, float | None] = {i: None for i in ids}
        self.last_missing_s: dict[int, float] = {i: -math.inf for i in ids}
        self.last_good: dict[int, tuple[float, float, float]] = {}  # id -> (time, z, sigma)
        self.disagreements = 0
        self.zero_since_s: float | None = None
        self.last_outcome: dict[int, RangeOutcome] = {}  # per sensor, for telemetry and traces
        self.summary = FdirSummary(health={i: Health.NOMINAL for i in ids})

    def run(self, _deadline_ns: int) -> None:
        now = self.clock_s()
        for outcome in self.estimation.drain_outcomes():
            self._observe(outcome)
        self._check_imu(now)
        est = self.estimation.output.estimate
        if est is None:
            return
        pessimistic = est.height_above_terrain_m - self.config.pessimism_sigma * est.height_above_terrain_sigma_m
        s = self.summary
        s.primary_missing = self._check_missing(now, pessimistic)
        self._check_zero_trap(now, est.height_above_terrain_m)
        s.time_s = now
        # no altimeter has told the height above the ground below lately (directly, through the
        # look-ahead profile, or from ground seen before), while the primary is needed
        c = self.config
        s.altimetry_missing = pessimistic < c.expected_below_m.get(PRIMARY_ALTIMETER, math.inf) and \
            now - self.estimation.output.last_height_fix_s > c.missing_after_s

    # -- pieces --------------------------------------------------------------------------
    def _check_imu(self, now: float) -> None:
        out = self.estimation.output
        last, done = out.imu_last_s, out.completed_s
        # an estimation task that keeps failing leaves the estimate as stale as a silent IMU:
        # guidance must hold, then arrest, not fly on it
        lost = last is None or now - last > self.config.imu_lost_after_s or \
            done is None or now - done > self.config.imu_lost_after_s
        if lost != self.summary.imu_lost:
            self.summary.imu_lost = lost
            self.events.emit("IMU_HEALTH", int(lost))

    def _observe(self, o: RangeOutcome) -> None:
        self.last_sample_s[o.sensor_id] = o.time_s
        self.last_outcome[o.sensor_id] = o
        obs = verdict(o)
        self._feed(o.sensor_id, obs)
        if obs == Observation.GOOD:
            # a height update gives the cross-check its height; a sample that went into the
            # look-ahead profile says the altimeter works, but not what is below
            self.last_good[o.sensor_id] = (o.time_s, o.height_m, o.sigma_m)
            if math.isfinite(o.height_m):
                self._cross_check()

    def _feed(self, sensor_id: int, obs: Observation) -> None:
        changed = self.sensors[sensor_id].update(obs)
        if changed is not None:
            self.summary.health[sensor_id] = changed
            self.events.emit("SENSOR_HEALTH", sensor_id, int(changed))

    def _missing(self, sensor_id: int, now: float, pessimistic_hat: float) -> bool:
        expected = pessimistic_hat < self.config.expected_below_m.get(sensor_id, -math.inf)
        last = self.last_sample_s.get(sensor_id)
        return expected and (last is None or now - last > self.config.missing_after_s)

    def _check_missing(self, now: float, pessimistic_hat: float) -> bool:
        """Observe MISSING (at most once per missing_after_s) for each silent sensor that is
        expected to talk; returns whether the primary is missing."""
        primary_missing = False
        for sensor_id in self.sensors:
            if not self._missing(sensor_id, now, pessimistic_hat):
                continue
            if sensor_id == PRIMARY_ALTIMETER:
                primary_missing = True
            if now - self.last_missing_s[sensor_id] >= self.config.missing_after_s:
                self.last_missing_s[sensor_id] = now
                self.events.emit("ALTIMETER_MISSING", sensor_id)
                self._feed(sensor_id, Observation.MISSING)
        return primary_missing

    def _cross_check(self) -> None:
        if PRIMARY_ALTIMETER not in self.last_good or SHORT_RANGE_ALTIMETER not in self.last_good:
            return
        t1, z1, s1 = self.last_good[PRIMARY_ALTIMETER]
        t2, z2, s2 = self.last_good[SHORT_RANGE_ALTIMETER]
        c = self.config
        if abs(t1 - t2) > c.cross_check_window_s or not (math.isfinite(z1) and math.isfinite(z2)):
            return
        v = abs(self.estimation.output.estimate.vertical_velocity_mps) if self.estimation.output.estimate else 0.0
        allowed = c.cross_check_sigma * math.hypot(s1, s2) + c.cross_check_margin_m + v * abs(t1 - t2)
        if abs(z1 - z2) > allowed:
            self.disagreements += 1
            if self.disagreements == c.cross_check_after:
                self.summary.altimeters_disagree = True
                self.events.emit("ALTIMETERS_DISAGREE", z1, z2)
        else:
            self.disagreements = 0
            self.summary.altimeters_disagree = False

    def _check_zero_trap(self, now: float, hat: float) -> None:
        c = self.config
        if not c.zero_trap_enabled or hat > c.zero_trap_hat_m or self.touched_down():
            self.zero_since_s = None
            return
        if self.zero_since_s is None:
            self.zero_since_s = now
        elif now - self.zero_since_s >= c.zero_trap_after_s:
            self.zero_since_s = now
            self.summary.zero_trap_events += 1
            self.events.emit("ZERO_ALTITUDE_TRAP", hat)
            for sensor_id in self.sensors:
                self.estimation.filter.reopen_sensor(sensor_id)
