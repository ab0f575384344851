"""The 100 Hz estimation task: IMU -> predict, altimeters -> attitude-corrected updates.

It reads devices through their protocols, runs the kernel, and hands on what happened
(an `EstimationOutput` per tick) to FDIR and guidance. Horizontal velocity and downrange
are integrated from the IMU (the altitude filter needs horizontal speed for curvature
relief and terrain growth). It never decides whether a sensor is healthy: FDIR does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from flight.devices.interfaces import (
    PRIMARY_ALTIMETER,
    SHORT_RANGE_ALTIMETER,
    Altimeter,
    DeviceError,
    Imu,
    LocalImuSample,
    RangeSample,
)
from flight.estimation.altitude_filter import AltitudeFilter, Estimate, Status


class RangeOutcome(NamedTuple):
    sensor_id: int
    time_s: float
    status: Status | None  # None: the driver reported an error, or the sample was not fused
    range_m: float
    sigma_m: float = math.nan
    error: str = ""
    fused: bool = True  # False: set aside because the short-range altimeter has the ground

NOT_FUSED = "not fused: the short-range altimeter has the ground"


@dataclass
class EstimationOutput:
    time_s: float = 0.0
    estimate: Estimate | None = None
    horizontal_speed_mps: float = 0.0
    downrange_m: float = 0.0
    pitch_rad: float = 0.0
    peak_specific_force_mps2: float = 0.0  # since the last guidance cycle (touchdown shock)
    outcomes: list[RangeOutcome] = field(default_factory=list)
    imu_errors: int = 0
    invalid_imu: int = 0


LUNAR_GM_M3PS2 = 4.9028e12


class EstimationTask:
    def __init__(
        self,
        filt: AltitudeFilter,
        imu: Imu,
        altimeters: list[Altimeter],
        horizontal_speed_mps: float = 0.0,
        downrange_m: float = 0.0,
        gm_m3ps2: float = LUNAR_GM_M3PS2,
        authority_window_s: float = 0.2,
    ) -> None:
        self.filter = filt
        self.imu = imu
        self.altimeters = altimeters
        self.vx = horizontal_speed_mps
        self.downrange_m = downrange_m
        cfg = filt.config()
        # the kernel's gravity is a constant; the task adds the inverse-square difference
        self.kernel_gravity = float(cfg["gravity_mps2"])  # type: ignore[arg-type]
        self.radius_m = float(cfg["body_radius_m"])  # type: ignore[arg-type]
        self.gm = gm_m3ps2
        # near the ground the short-range altimeter is the authority: while it has had a sample
        # accepted within this window, the primary's samples are not fused (a noisy or biased
        # km-class unit would otherwise fight a precise one at 20 m)
        self.authority_window_s = authority_window_s
        self.last_accepted_s: dict[int, float] = {}
        self._read_order = sorted(altimeters, key=lambda a: a.sensor_id != SHORT_RANGE_ALTIMETER)  # short-range first
        self.pitch_rad = 0.0
        self._last_imu_time: float | None = None
        self.output = EstimationOutput()

    def run(self, _deadline_ns: int) -> None:
        out = self.output
        while (sample := self.imu.read()) is not None:
            if isinstance(sample, DeviceError):
                out.imu_errors += 1
                continue
            self._propagate(sample)
        for alt in self._read_order:
            while (reading := alt.read()) is not None:
                out.outcomes.append(self._fuse(alt.sensor_id, reading))
        out.estimate = self.filter.estimate()
        out.horizontal_speed_mps = self.vx
        out.downrange_m = self.downrange_m
        out.pitch_rad = self.pitch_rad

    def _propagate(self, s: LocalImuSample) -> None:
        out = self.output
        if self._last_imu_time is None:
            self._last_imu_time = s.time_s
            self.pitch_rad = s.pitch_rad
            return
        dt = s.time_s - self._last_imu_time
        est = out.estimate
        r = self.radius_m + (est.altitude_m if est is not None else 0.0)
        # inverse-square gravity (the kernel uses a constant): 1.6 % less at 20 km
        gravity_fix = self.kernel_gravity - self.gm / (r * r) if self.gm > 0.0 else 0.0
        if not self.filter.predict(dt, s.specific_force_up_mps2 + gravity_fix, abs(self.vx)):
            out.invalid_imu += 1  # the filter is untouched; keep the old timestamp
            return
        self._last_imu_time = s.time_s
        # the local horizontal turns as the vehicle moves over the sphere: transport rate
        vz = est.vertical_velocity_mps if est is not None else 0.0
        self.vx += (s.specific_force_downrange_mps2 - self.vx * vz / r) * dt
        self.downrange_m += self.vx * dt
        self.pitch_rad = s.pitch_rad
        out.time_s = s.time_s
        out.peak_specific_force_mps2 = max(
            out.peak_specific_force_mps2, math.hypot(s.specific_force_up_mps2, s.specific_force_downrange_mps2)
        )

    def _fuse(self, sensor_id: int, reading: RangeSample | DeviceError) -> RangeOutcome:
        if isinstance(reading, DeviceError):
            return RangeOutcome(sensor_id, reading.time_s, None, math.nan, error=reading.reason)
        if not reading.valid:
            return RangeOutcome(sensor_id, reading.time_s, None, reading.range_m, error="device flagged invalid")
        if sensor_id == PRIMARY_ALTIMETER:
            near = self.last_accepted_s.get(SHORT_RANGE_ALTIMETER)
            if near is not None and reading.time_s - near <= self.authority_window_s:
                return RangeOutcome(sensor_id, reading.time_s, None, reading.range_m, reading.sigma_m,
                                    error=NOT_FUSED, fused=False)
        cos_tilt = math.cos(self.pitch_rad)
        range_m = reading.range_m
        if cos_tilt > 0.0:
            # the ground falls away from a tilted beam: height = r cos - (r sin)^2 / 2(R+h)
            est = self.output.estimate
            r = self.radius_m + (est.altitude_m if est is not None else 0.0)
            horizontal = range_m * math.sin(self.pitch_rad)
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
