"""Sensor models: what the devices would report, computed from the truth.

- `cast_range`: range along a boresight to the first terrain crossing, over a curved Moon.
- `Rangefinder`: the primary km-class laser rangefinder and the short-range altimeter
  (same model, different numbers): max range, noise growing with range, rate, centimetre
  resolution, dropouts, mixed returns when the beam footprint straddles a step, faults.
- `ImuModel`: specific force on two body axes and the pitch-axis rate, each with white noise,
  turn-on bias and bias random walk, saturated (+-16 g, +-2000 dps) and quantised (1/2048 g,
  1/16.4 dps), in the body frame.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from flight.devices.interfaces import ImuSample, RangeSample
from ground._truth import ffi, lib
from ground.sim.faults import Fault, Reading
from ground.sim.moon import RADIUS_M, STANDARD_GRAVITY_MPS2
from ground.sim.terrain import Terrain

BLOCK_M = 1000.0  # terrain maxima per block, to skip empty stretches of a long slant ray


class TerrainIndex:
    """A terrain plus block maxima, for fast ray casts."""

    def __init__(self, terrain: Terrain) -> None:
        self.terrain = terrain
        self.xs, self.zs = terrain.xs, terrain.zs
        self.x0 = self.xs[0]
        n = math.ceil((self.xs[-1] - self.x0) / BLOCK_M) + 1
        maxima = [-math.inf] * n
        for i in range(len(self.xs) - 1):  # a segment touches blocks from its start to its end
            b0 = int((self.xs[i] - self.x0) // BLOCK_M)
            b1 = int((self.xs[i + 1] - self.x0) // BLOCK_M)
            top = max(self.zs[i], self.zs[i + 1])
            for b in range(b0, min(b1, n - 1) + 1):
                maxima[b] = max(maxima[b], top)
        self.block_max = maxima
        self.z_first, self.z_last = self.zs[0], self.zs[-1]
        self.top = max(self.zs)
        self.elevation = terrain.elevation
        self.elevation_before = terrain.elevation_before

    def max_between(self, lo: float, hi: float) -> float:
        """An upper bound of the elevation over [lo, hi]."""
        top = -math.inf
        if lo < self.x0:
            top = self.z_first
        if hi > self.xs[-1]:
            top = max(top, self.z_last)
        b0 = max(0, int((lo - self.x0) // BLOCK_M))
        b1 = min(len(self.block_max) - 1, int((hi - self.x0) // BLOCK_M))
        if b1 >= b0:
            top = max(top, max(self.block_max[b0:b1 + 1]))
        return top


def cast_range(index: TerrainIndex, altitude_m: float, downrange_m: float, tilt_rad: float,
               max_range_m: float) -> float | None:
    """Slant range from the vehicle along a boresight tilted `tilt_rad` from the local
    vertical (+ toward downrange) to the first point where it meets the terrain, or None if
    that is beyond max_range_m (or the beam looks above the horizon).

    Exact geometry over a spherical Moon: the beam point at horizontal offset d (from the
    vehicle's vertical) is at radius sqrt(d² + (R+h - d·cot)²) and ground angle
    atan2(d, R+h - d·cot). The terrain rows are walked along the beam (whole 1 km blocks the
    beam clears are skipped); the crossing inside a segment is found by regula falsi.
    """
    c = math.cos(tilt_rad)
    if c <= 1e-6:
        return None
    h = altitude_m
    # Every point within max range of the vehicle stands at least h - max_range above the
    # datum: above the highest ground (the short-range altimeter's case for most of the
    # descent), or, when h > max range, within ~max range of the vehicle's downrange, above
    # the ground there. Either way the beam is not walked.
    if h - max_range_m > index.top:
        return None
    if h > max_range_m:
        reach = 1.001 * max_range_m + 1.0
        if h - max_range_m > index.max_between(downrange_m - reach, downrange_m + reach):
            return None
    s_ = math.sin(tilt_rad)
    sin_abs = abs(s_)
    if sin_abs < 1e-9:  # straight down
        hat = h - index.elevation(downrange_m)
        return hat / c if 0.0 <= hat / c <= max_range_m else None
    sign = 1.0 if s_ > 0 else -1.0
    rh = RADIUS_M + h
    cot = c / sin_abs
    d_max = max_range_m * sin_abs
    ground_at = index.elevation if sign > 0 else index.elevation_before  # the side the beam looks at

    def beam(d: float) -> float:  # height of the beam point above the datum sphere
        y = rh - d * cot
        return math.sqrt(d * d + y * y) - RADIUS_M

    def x_of(d: float) -> float:
        return downrange_m + sign * RADIUS_M * math.atan2(d, rh - d * cot)

    def d_of(x: float) -> float:
        angle = abs(x - downrange_m) / RADIUS_M
        if angle >= 1.5:  # a quarter of the Moon away: beyond any beam that still points down
            return math.inf
        t = math.tan(angle)
        return rh * t / (1.0 + cot * t)

    def f(d: float) -> float:
        return beam(d) - ground_at(x_of(d))

    d_vertex = rh * c * sin_abs  # closest approach to the Moon's centre: the beam is convex in d
    x_end = x_of(d_max)
    lo, hi = (downrange_m, x_end) if sign > 0 else (x_end, downrange_m)
    if beam(min(d_max, d_vertex)) > index.max_between(lo, hi):
        return None  # the beam stays above everything it passes over
    xs, zs = index.xs, index.zs
    f_prev = h - ground_at(downrange_m)
    if f_prev <= 0.0:
        return 0.0
    d_prev = 0.0
    x_start = downrange_m
    while True:  # skip the leading blocks the beam clears
        edge = (math.floor((x_start - index.x0) / BLOCK_M) + (1 if sign > 0 else 0)) * BLOCK_M + index.x0
        # x_start is often an edge itself, and the division can round it into the block
        # behind: always move on by at least one block
        if sign > 0 and edge <= x_start:
            edge += BLOCK_M
        elif sign < 0 and edge >= x_start:
            edge -= BLOCK_M
        d_edge = d_of(edge)
        if d_edge >= d_max:
            break
        lowest = min(beam(d_prev), beam(d_edge), beam(d_vertex) if d_prev < d_vertex < d_edge else math.inf)
        lo_x, hi_x = (x_start, edge) if sign > 0 else (edge, x_start)
        if lowest <= index.max_between(lo_x, hi_x):
            break
        x_start, d_prev = edge, d_edge
        f_prev = beam(d_prev) - ground_at(x_start)
        if f_prev <= 0.0:  # a step face exactly on the block edge
            return d_prev / sin_abs
    if sign > 0:
        i = bisect.bisect_right(xs, x_start)
        step = 1
    else:
        i = bisect.bisect_left(xs, x_start) - 1
        step = -1
    n = len(xs)
    while 0 <= i < n:
        d = d_of(xs[i])
        if d > d_max:
            break
        f_i = beam(d) - zs[i]
        if f_i <= 0.0:
            if d == d_prev:  # a vertical step face at this downrange
                return d / sin_abs
            return _crossing(f, d_prev, f_prev, d, f_i) / sin_abs
        hit = _dip(f, d_prev, f_prev, d, d_vertex)
        if hit is not None:
            return hit / sin_abs
        f_prev, d_prev = f_i, d
        i += step
    f_end = f(d_max)
    if f_end <= 0.0:
        return _crossing(f, d_prev, f_prev, d_max, f_end) / sin_abs
    hit = _dip(f, d_prev, f_prev, d_max, d_vertex)
    return None if hit is None else hit / sin_abs


def _dip(f, d0: float, f0: float, d1: float, d_vertex: float) -> float | None:
    """Both ends above ground, but a long segment can hide a chord: the beam is lowest at its
    vertex, so look there."""
    if d0 < d_vertex < d1:
        fv = f(d_vertex)
        if fv <= 0.0:
            return _crossing(f, d0, f0, d_vertex, fv)
    return None


def _crossing(f, d0: float, f0: float, d1: float, f1: float) -> float:
    """f(d0) > 0 >= f(d1), f smooth in between (no terrain row inside): Illinois regula falsi."""
    side = 0
    for _ in range(40):
        d = d1 - f1 * (d1 - d0) / (f1 - f0) if f1 != f0 else 0.5 * (d0 + d1)
        fd = f(d)
        if abs(fd) < 1e-4 or d1 - d0 < 1e-6:
            return d
        if fd > 0.0:
            d0, f0 = d, fd
            if side == 1:
                f1 *= 0.5
            side = 1
        else:
            d1, f1 = d, fd
            if side == -1:
                f0 *= 0.5
            side = -1
    return d1


@dataclass(frozen=True)
class RangefinderSpec:
    rate_hz: float = 10.0
    max_range_m: float = 25_000.0
    min_range_m: float = 1.0
    sigma_m: float = 0.3
    sigma_per_m: float = 5.0e-4
    resolution_m: float = 0.01
    dropout_probability: float = 0.0
    divergence_rad: float = 1.0e-3
    mixed_return_probability: float = 0.5
    cant_rad: float = 0.0  # the mount: boresight from the thrust axis, + toward downrange (the flight is told)
    misalignment_rad: float = 0.0  # a mounting error on top of the cant (the flight is not told)


class Rangefinder:
    def __init__(self, spec: RangefinderSpec, sensor_id: int, index: TerrainIndex, faults: list[Fault],
                 rng: np.random.Generator) -> None:
        self.spec = spec
        self.sensor_id = sensor_id
        self.index = index
        self.faults = faults
        self.rng = rng
        self.period_s = 1.0 / spec.rate_hz
        self.next_time_s = 0.0
        self.straddles = 0

    DEGRADING = ("dead", "noisy", "stuck", "bias_drift")  # the unit does not measure the ground then

    def working(self, t: float, hat_m: float) -> bool:
        """No fault that stops it measuring the ground is active (spikes and dropouts are the
        ordinary life of a working unit; a late one is working once it is valid)."""
        for fault in self.faults:
            if fault.active(t) and (fault.kind in self.DEGRADING or
                                    (fault.kind == "late_valid" and hat_m > fault.params["valid_below_m"])):
                return False
        return True

    def due(self, t: float) -> bool:
        if t + 1e-9 >= self.next_time_s:
            self.next_time_s += self.period_s
            if self.next_time_s <= t:
                self.next_time_s = t + self.period_s
            return True
        return False

    def sample(self, t: float, altitude_m: float, downrange_m: float, tilt_rad: float,
               hat_m: float) -> RangeSample | None:
        spec = self.spec
        tilt = tilt_rad + spec.cant_rad + spec.misalignment_rad
        r = cast_range(self.index, altitude_m, downrange_m, tilt, spec.max_range_m)
        if r is None or r < spec.min_range_m:
            return None  # no target: the driver passes nothing on
        half = 0.5 * spec.divergence_rad
        if half > 0.0 and not self._footprint_on_one_segment(altitude_m, downrange_m, tilt, r, half):
            r_a = cast_range(self.index, altitude_m, downrange_m, tilt - half, spec.max_range_m)
            r_b = cast_range(self.index, altitude_m, downrange_m, tilt + half, spec.max_range_m)
            if r_a is not None and r_b is not None and abs(r_a - r_b) > 3.0 * (spec.sigma_m + spec.sigma_per_m * r) \
                    + 2.0 * r * spec.divergence_rad * (1.0 + abs(math.tan(tilt))):
                # the footprint straddles a step: one surface or the other, or a blend of the two
                self.straddles += 1
                u = float(self.rng.random())
                if self.rng.random() < spec.mixed_return_probability:
                    r = u * r_a + (1.0 - u) * r_b
                else:
                    r = r_a if u < 0.5 else r_b
        sigma = spec.sigma_m + spec.sigma_per_m * r
        reading = Reading(r + sigma * float(self.rng.standard_normal()), sigma)
        for fault in self.faults:
            fault.apply(reading, t, hat_m, self.rng)
        if not reading.emit:
            return None
        if spec.dropout_probability and self.rng.random() < spec.dropout_probability:
            return None
        measured = round(max(reading.range_m, 0.0) / spec.resolution_m) * spec.resolution_m
        if measured > spec.max_range_m:
            return None
        return RangeSample(t, measured, reading.sigma_m, reading.valid)

    def _footprint_on_one_segment(self, altitude_m: float, downrange_m: float, tilt: float, r: float,
                                  half: float) -> bool:
        """True when no terrain row lies under the beam, from the vehicle to its footprint
        (the footprint taken twice as wide as it is): the ground there is one straight piece,
        so both edges meet it too, there is no step to straddle and the edge casts can be
        skipped. The footprint's half-width on a piece of slope g is
        half * r / |cos(tilt) + g sin(tilt)|; at grazing incidence it is unbounded and the
        edges are always cast. In practice: a near-vertical beam over ground without a row
        under it."""
        xs, zs = self.index.xs, self.index.zs
        x_hit = downrange_m + RADIUS_M * math.atan2(r * math.sin(tilt), RADIUS_M + altitude_m - r * math.cos(tilt))
        i = bisect.bisect_right(xs, x_hit)
        # held flat beyond the ends; inside, xs[i - 1] <= x_hit < xs[i]
        slope = 0.0 if i == 0 or i == len(xs) else (zs[i] - zs[i - 1]) / (xs[i] - xs[i - 1])
        across = abs(math.cos(tilt) + slope * math.sin(tilt))
        if not across > 0.0:
            return False
        width = 2.0 * half * r / across + 1.0
        lo, hi = min(downrange_m, x_hit - width), max(downrange_m, x_hit + width)
        return bisect.bisect_left(xs, lo) == bisect.bisect_right(xs, hi)


@dataclass(frozen=True)
class ImuSpec:
    rate_hz: float = 100.0  # one sample per simulation step
    noise_density_mps2_per_rthz: float = 7.0e-4  # ICM-42688-P: 70 ug/sqrt(Hz)
    bias_sigma_mps2: float = 3.0e-4  # residual after calibration in the pre-descent coast (30 ug)
    bias_walk_mps2_per_rts: float = 1.0e-5  # bias instability as a random walk
    saturation_g: float = 16.0
    lsb_per_g: float = 2048.0
    gyro_noise_density_radps_per_rthz: float = 4.9e-5  # ICM-42688-P: 0.0028 dps/sqrt(Hz)
    gyro_bias_sigma_radps: float = 3.0e-6  # residual after the star tracker calibrated it in the coast (0.6 deg/h)
    gyro_bias_walk_radps_per_rts: float = 5.0e-8  # bias instability as a random walk
    gyro_saturation_dps: float = 2000.0
    gyro_lsb_per_dps: float = 16.4


class ImuModel:
    """A body-mounted IMU (ICM-42688-P class): specific force on body x and z and the rate
    about body y, as `ImuSample`s in the body frame (see flight/devices/interfaces.py). The
    out-of-plane axes read zero: the world is 2-D.

    The noise is drawn a block at a time with numpy: per channel (accel z, accel x, gyro y),
    the bias random walk (a cumulative sum) plus the white noise, so one sample costs three list
    lookups and one call of the truth kernel (saturation, quantisation, rotation to the body).
    The walk carries over from block to block; a bias jump adds to the turn-on bias.
    """

    BLOCK = 4096

    def __init__(self, spec: ImuSpec, rng: np.random.Generator, dt_s: float) -> None:
        self.spec = spec
        self.rng = rng
        self.bias_z = spec.bias_sigma_mps2 * float(rng.standard_normal())  # turn-on bias + jumps
        self.bias_x = spec.bias_sigma_mps2 * float(rng.standard_normal())
        self.bias_gyro = spec.gyro_bias_sigma_radps * float(rng.standard_normal())
        root_dt = math.sqrt(dt_s)
        self.white = np.array([spec.noise_density_mps2_per_rthz, spec.noise_density_mps2_per_rthz,
                               spec.gyro_noise_density_radps_per_rthz])[:, None] / root_dt
        self.walk = np.array([spec.bias_walk_mps2_per_rts, spec.bias_walk_mps2_per_rts,
                              spec.gyro_bias_walk_radps_per_rts])[:, None] * root_dt
        self._spec = ffi.new("sim_imu *", {"limit_mps2": spec.saturation_g * STANDARD_GRAVITY_MPS2,
                                          "lsb_mps2": STANDARD_GRAVITY_MPS2 / spec.lsb_per_g,
                                          "gyro_limit_radps": math.radians(spec.gyro_saturation_dps),
                                          "gyro_lsb_radps": math.radians(1.0 / spec.gyro_lsb_per_dps)})
        self._out = ffi.new("double[3]")
        self._walk_end = np.zeros(3)  # the random walk (z, x, gyro) at the end of the last block
        self._walks = np.zeros((3, 0))  # the random walk of the current block
        self._noise_z: list[float] = []  # walk + white, per sample
        self._noise_x: list[float] = []
        self._noise_g: list[float] = []
        self._k = 0

    def _refill(self) -> None:
        n = self.rng.standard_normal((6, self.BLOCK))
        walk = self._walk_end[:, None] + self.walk * np.cumsum(n[:3], axis=1)
        self._walk_end = walk[:, -1].copy()
        noise = walk + self.white * n[3:]
        self._walks = walk
        self._noise_z, self._noise_x, self._noise_g = noise[0].tolist(), noise[1].tolist(), noise[2].tolist()
        self._k = 0

    @property
    def bias_mps2(self) -> tuple[float, float]:
        """The (z, x) accelerometer bias of the last sample: turn-on + jumps + random walk."""
        k = self._k - 1
        walk = self._walks[:, k] if k >= 0 else self._walk_end
        return self.bias_z + float(walk[0]), self.bias_x + float(walk[1])

    @property
    def gyro_bias_radps(self) -> float:
        """The gyro's bias about y at the last sample: turn-on + random walk."""
        k = self._k - 1
        walk = self._walks[:, k] if k >= 0 else self._walk_end
        return self.bias_gyro + float(walk[2])

    def jump_bias(self, up_mps2: float, downrange_mps2: float) -> None:
        """An accelerometer bias jump given in the local frame at an upright attitude (body z = up)."""
        self.bias_z += up_mps2
        self.bias_x += downrange_mps2

    def sample(self, t: float, f_up: float, f_downrange: float, pitch_rad: float, gyro_y_radps: float) -> ImuSample:
        """The truth (specific force in the local frame, the body's pitch, its inertial rate
        about y) -> what the IMU reports in its own axes (the C truth kernel's `sim_imu_measure`)."""
        k = self._k
        if k >= len(self._noise_z):
            self._refill()
            k = 0
        self._k = k + 1
        out = self._out
        lib.sim_imu_measure(self._spec, f_up, f_downrange, pitch_rad, self.bias_z + self._noise_z[k],
                            self.bias_x + self._noise_x[k], gyro_y_radps, self.bias_gyro + self._noise_g[k], out)
        return ImuSample(t, out[0], 0.0, out[1], 0.0, out[2], 0.0)
