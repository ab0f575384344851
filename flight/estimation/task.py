"""The 100 Hz estimation task: IMU -> attitude and predict, altimeters -> attitude-corrected updates.

It reads devices through their protocols, turns the IMU's body axes into the local frame with
the attitude propagated from the gyro (attitude.py), runs the kernel, and hands on what
happened (an `EstimationOutput` per tick) to FDIR and guidance. Horizontal velocity and
downrange are integrated from the IMU (the altitude filter needs horizontal speed for
curvature relief and terrain growth). It never decides whether a sensor is healthy: FDIR does.

Time: the flight's one time base is the executive's (`clock_s`, seconds of flight); sample
timestamps are data. An IMU gap of any length never freezes the filter: when samples come
back, the gap is bridged in one step with the specific force held over it and the gap's
uncertainty added (`AltitudeFilter.predict_gap`), and an `IMU_GAP` event says how long it was.
While the IMU is silent the state is stale, so range samples are set aside (not fused, no
verdict) rather than compared with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    Altimeter,
    DeviceError,
    Imu,
    ImuSample,
    RangeSample,
)
from flight.estimation.altitude_filter import MAX_GAP_S, AltitudeFilter, Estimate, Status
from flight.estimation.attitude import Attitude
from flight.executive.scheduler import EventSink


class RangeOutcome(NamedTuple):
    sensor_id: int
    time_s: float
    status: Status | None  # None: the driver reported an error, or the sample was not fused
    range_m: float
    sigma_m: float = math.nan
    error: str = ""
    fused: bool = True  # False: set aside (the short-range altimeter has the ground, or an IMU gap)


NOT_FUSED = "not fused: the short-range altimeter has the ground"
NOT_FUSED_IMU_GAP = "not fused: no IMU, the state is stale"


@dataclass
class GapModel:
    """How an IMU gap is bridged. Guidance holds its last command for `hold_s` of a gap (so the
    specific force held over it is right to `hold_accel_sigma_mps2`: mass flow, engine and
    attitude-hold variation), then arrests the descent on its own model, which changes the
    force by up to the engine's authority (`arrest_accel_sigma_mps2`). See the guidance README."""

    gap_after_s: float = 0.05  # a sample more than this after the previous one ends a gap
    lost_after_s: float = 0.05  # no sample for this long: the IMU is lost (the state is stale)
    hold_s: float = 2.0
    hold_accel_sigma_mps2: float = 0.3
    arrest_accel_sigma_mps2: float = 3.0

    def accel_sigma(self, gap_s: float) -> float:
        return self.hold_accel_sigma_mps2 if gap_s <= self.hold_s else self.arrest_accel_sigma_mps2


@dataclass
class EstimationOutput:
    time_s: float = 0.0  # flight time (the executive's) of this output
    estimate: Estimate | None = None
    horizontal_speed_mps: float = 0.0
    downrange_m: float = 0.0
    pitch_rad: float = 0.0
    pitch_sigma_rad: float = 0.0
    peak_specific_force_mps2: float = 0.0  # since the last guidance cycle (touchdown shock)
    outcomes: list[RangeOutcome] = field(default_factory=list)
    imu_last_s: float | None = None  # the time the state is at: the last IMU sample taken in
    imu_errors: int = 0  # the driver reported an error
    invalid_imu: int = 0  # a sample with a non-finite value, or one the filter refused
    stale_imu: int = 0  # a sample not after the previous one (duplicate, out of order)
    imu_gaps: int = 0
    longest_imu_gap_s: float = 0.0


LUNAR_GM_M3PS2 = 4.9028e12


class EstimationTask:
    def __init__(
        self,
        filt: AltitudeFilter,
        imu: Imu,
        altimeters: list[Altimeter],
        clock_s: Callable[[], float],
        events: EventSink,
        attitude: Attitude | None = None,
        horizontal_speed_mps: float = 0.0,
        downrange_m: float = 0.0,
        gm_m3ps2: float = LUNAR_GM_M3PS2,
        authority_window_s: float = 0.2,
        gap: GapModel | None = None,
    ) -> None:
        self.filter = filt
        self.imu = imu
        self.altimeters = altimeters
        self.clock_s = clock_s
        self.events = events
        cfg = filt.config()
        # the kernel's gravity is a constant; the task adds the inverse-square difference
        self.kernel_gravity = float(cfg["gravity_mps2"])  # type: ignore[arg-type]
        self.radius_m = float(cfg["body_radius_m"])  # type: ignore[arg-type]
        self.attitude = attitude or Attitude(body_radius_m=self.radius_m)
        self.vx = horizontal_speed_mps
        self.downrange_m = downrange_m
        self.gm = gm_m3ps2
        self.gap = gap or GapModel()
        # near the ground the short-range altimeter is the authority: while it has had a sample
        # accepted within this window, the primary's samples are not fused (a noisy or biased
        # km-class unit would otherwise fight a precise one at 20 m)
        self.authority_window_s = authority_window_s
        self.last_accepted_s: dict[int, float] = {}
        self._read_order = sorted(altimeters, key=lambda a: a.sensor_id != SHORT_RANGE_ALTIMETER)  # short-range first
        self._held_force = (0.0, 0.0)  # (up, downrange) of the last good IMU sample
        self.output = EstimationOutput()

    @property
    def pitch_rad(self) -> float:
        return self.attitude.pitch_rad

    def run(self, _deadline_ns: int) -> None:
        out = self.output
        out.time_s = now = self.clock_s()
        if out.imu_last_s is None:
            # the initial state and attitude are the hand-over's, at the first run: the first
            # sample propagates from here
            out.imu_last_s = now
        while (sample := self.imu.read()) is not None:
            if isinstance(sample, DeviceError):
                out.imu_errors += 1
                continue
            self._take(sample)
        imu_current = out.imu_last_s is not None and now - out.imu_last_s <= self.gap.lost_after_s
        for alt in self._read_order:
            while (reading := alt.read()) is not None:
                out.outcomes.append(self._fuse(alt.sensor_id, reading, imu_current))
        out.estimate = self.filter.estimate()
        out.horizontal_speed_mps = self.vx
        out.downrange_m = self.downrange_m
        out.pitch_rad = self.attitude.pitch_rad
        out.pitch_sigma_rad = self.attitude.sigma_rad

    def _take(self, s: ImuSample) -> None:
        out = self.output
        if not math.isfinite(s.time_s + s.accel_x_mps2 + s.accel_z_mps2 + s.gyro_y_radps):
            out.invalid_imu += 1  # treated as missing: a run of them becomes a gap
            return
        dt = s.time_s - out.imu_last_s  # type: ignore[operator] - set at the first run
        if dt <= 0.0:
            out.stale_imu += 1
            return
        est = out.estimate
        altitude = est.altitude_m if est is not None else 0.0
        r = self.radius_m + altitude
        # inverse-square gravity (the kernel uses a constant): 1.6 % less at 20 km
        gravity_fix = self.kernel_gravity - self.gm / (r * r) if self.gm > 0.0 else 0.0
        vz = est.vertical_velocity_mps if est is not None else 0.0
        if dt > self.gap.gap_after_s:
            self._bridge(dt, gravity_fix, altitude, r, vz)
            out.imu_last_s = s.time_s
            self._held_force = self.attitude.to_local(s.accel_x_mps2, s.accel_z_mps2)
            return
        self.attitude.propagate(s.gyro_y_radps, dt, abs(self.vx), altitude)
        f_up, f_downrange = self.attitude.to_local(s.accel_x_mps2, s.accel_z_mps2)
        if not self.filter.predict(dt, f_up + gravity_fix, abs(self.vx)):
            out.invalid_imu += 1  # refused (e.g. beyond the kernel's force limit): missing, as above
            return
        out.imu_last_s = s.time_s
        self._held_force = (f_up, f_downrange)
        # the local horizontal turns as the vehicle moves over the sphere: transport rate
        self.vx += (f_downrange - self.vx * vz / r) * dt
        self.downrange_m += self.vx * dt
        peak = math.hypot(s.accel_x_mps2, s.accel_z_mps2)  # the magnitude needs no attitude
        out.peak_specific_force_mps2 = max(out.peak_specific_force_mps2, peak)

    def _bridge(self, gap_s: float, gravity_fix: float, altitude: float, r: float, vz: float) -> None:
        """No IMU for gap_s: propagate once over it with the last good force held (guidance held
        its command) and the gap's uncertainty; the attitude was held by the controller."""
        out = self.output
        out.imu_gaps += 1
        out.longest_imu_gap_s = max(out.longest_imu_gap_s, gap_s)
        self.events.emit("IMU_GAP", gap_s)
        f_up, f_downrange = self._held_force
        step = min(gap_s, MAX_GAP_S)
        if not self.filter.predict_gap(step, f_up + gravity_fix, abs(self.vx), self.gap.accel_sigma(gap_s)):
            out.invalid_imu += 1
        self.attitude.hold(gap_s, abs(self.vx), altitude)
        self.vx += (f_downrange - self.vx * vz / r) * gap_s
        self.downrange_m += self.vx * gap_s

    def _fuse(self, sensor_id: int, reading: RangeSample | DeviceError, imu_current: bool) -> RangeOutcome:
        if isinstance(reading, DeviceError):
            return RangeOutcome(sensor_id, reading.time_s, None, math.nan, error=reading.reason)
        if not reading.valid:
            return RangeOutcome(sensor_id, reading.time_s, None, reading.range_m, error="device flagged invalid")
        if not imu_current:
            return RangeOutcome(sensor_id, reading.time_s, None, reading.range_m, reading.sigma_m,
                                error=NOT_FUSED_IMU_GAP, fused=False)
        if sensor_id == PRIMARY_ALTIMETER:
            near = self.last_accepted_s.get(SHORT_RANGE_ALTIMETER)
            if near is not None and reading.time_s - near <= self.authority_window_s:
                return RangeOutcome(sensor_id, reading.time_s, None, reading.range_m, reading.sigma_m,
                                    error=NOT_FUSED, fused=False)
        cos_tilt = self.attitude.cos_pitch
        range_m = reading.range_m
        if cos_tilt > 0.0:
            # the ground falls away from a tilted beam: height = r cos - (r sin)^2 / 2(R+h)
            est = self.output.estimate
            r = self.radius_m + (est.altitude_m if est is not None else 0.0)
            horizontal = range_m * self.attitude.sin_pitch
            range_m -= horizontal * horizontal / (2.0 * r * cos_tilt)
        status = self.filter.update_range(range_m, cos_tilt, reading.sigma_m, sensor_id)
        if status in (Status.ACCEPTED, Status.TERRAIN_STEP):
            self.last_accepted_s[sensor_id] = reading.time_s
        return RangeOutcome(sensor_id, reading.time_s, status, reading.range_m, reading.sigma_m)

    def drain_outcomes(self) -> list[RangeOutcome]:
        """FDIR takes every range outcome since its last call."""
        outcomes, self.output.outcomes = self.output.outcomes, []
        return outcomes

    def take_peak_force(self) -> float:
        """Guidance takes the peak specific force since its last call (touchdown shock)."""
        peak, self.output.peak_specific_force_mps2 = self.output.peak_specific_force_mps2, 0.0
        return peak
