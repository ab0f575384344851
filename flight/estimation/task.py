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
from enum import Enum
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
from flight.estimation.profile import ProfileStatus, Source, TerrainProfile
from flight.estimation.slant import footprint
from flight.estimation.terrain_map import TerrainMap
from flight.executive.scheduler import EventSink


class RangeOutcome(NamedTuple):
    sensor_id: int
    time_s: float
    status: Status | None  # the kernel's verdict on a height update; None: no height update
    range_m: float
    sigma_m: float = math.nan
    error: str = ""
    fused: bool = True  # False: set aside (the short-range altimeter has the ground, or an IMU gap)
    height_m: float = math.nan  # the drop to the footprint used as height above the terrain below
    profile: ProfileStatus | None = None  # the look-ahead profile's verdict, when the sample went there
    offset_m: float = math.nan  # the footprint's downrange offset from the vehicle


PROFILE_SENSOR = 2  # the kernel's sensor id for the look-ahead profile's height updates
ATTITUDE_TC_S = 100.0  # how long an attitude-induced acceleration error persists
BRAKING_RATIO = 2.0  # thrust this much more horizontal than vertical: vertical corrections map to the horizontal
MAP_REGISTRATION_N = 50  # the map's offset from the filter's frame: mean of the last this many samples
MAP_REGISTRATION_MIN = 5  # ... gated (3 sigma) only once this many agree
MAP_REGISTRATION_RESTART = 20  # ... and started again after this many refused in a row
GUIDANCE_NOTICE_S = 0.15  # guidance (10 Hz) notices an IMU loss within this of FDIR's detection
CROSSING_MARGIN_S = 1.0  # a near footprint that differs waits this long after the vehicle should be over it
SHADOW_AHEAD_CELLS = 200  # a gap of unseen ground is looked across this far (20 km at 100 m cells)
FOLLOW_DOUBT = 0.25  # following the profile's shape adds (half the change)^2 of doubt
NOT_FUSED = "not fused: the short-range altimeter has the ground"
NOT_FUSED_IMU_GAP = "not fused: no IMU, the state is stale"
AHEAD = "the footprint is not under the vehicle: into the look-ahead profile"
TILTED = "not fused: tilted beyond the limit"


class SlantMode(Enum):
    """How a slant range is used, by altitude-trust policy (the anchors, estimation.md):
    PROFILE (ours): a height update only where the footprint is close to the vehicle's own
    ground and the beam within the tilt limit; every sample builds the look-ahead profile.
    TILT_LIMIT (PX4): the drop is the height below while the beam is within the tilt limit,
    else the sample is not fused. VERTICAL (M1, Apollo): the drop is the height below."""

    PROFILE = "profile"
    TILT_LIMIT = "tilt_limit"
    VERTICAL = "vertical"


@dataclass
class SlantModel:
    mode: SlantMode = SlantMode.PROFILE
    cant_rad: dict[int, float] = field(default_factory=dict)  # per sensor: boresight from the thrust axis, + ahead
    divergence_rad: dict[int, float] = field(default_factory=dict)
    max_tilt_rad: float = 0.785  # beyond this a beam says nothing about the ground below (PX4: cos 0.707)
    near_m: float = 100.0  # a footprint this close to the vehicle's own ground updates its height ...
    near_fraction: float = 0.3  # ... or this fraction of the drop to it (a near-vertical beam from high up)
    agree_beyond_m: float = 20.0  # a near footprint farther than this from the vehicle must agree with its ground
    fix_window_s: float = 1.0  # a height update this recent: the profile does not reset the terrain
    max_age_s: float = 120.0  # profile cells older than this are not used
    slope: float = 0.05  # the terrain slope a footprint's spread and offset may lie on
    revisit_s: float = 1.0  # a cell seen at least this long ago measures the altitude when seen again


@dataclass
class Shadow:
    """Ground the beam could not see beyond an edge. Past x_star its line of sight proved the
    ground lower than the ground seen behind the gap; x_near is the footprint that proved it
    nearest the edge, (x_low, z_low) the lowest ground such footprints saw."""

    x_star: float
    x_near: float
    x_low: float
    z_low: float
    noted_s: float  # when it was noted


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
    profile_fixes: int = 0  # the terrain under the vehicle taken from the profile on entering a cell
    steps_ahead: int = 0  # ... of them, steps the profile had seen ahead (a cliff, taken in on crossing)
    revisits: int = 0  # altitude updates from a beam on ground the profile already held
    last_height_fix_s: float = -math.inf  # the last time an altimeter told the height above the ground below
    completed_s: float | None = None  # the last run that completed (a run that raised does not count)
    fuse_errors: int = 0  # range samples whose handling raised: each is an error outcome, counted


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
        slant: SlantModel | None = None,
        profile: TerrainProfile | None = None,
        terrain_map: TerrainMap | None = None,
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
        self.slant = slant or SlantModel()
        self.profile = profile if profile is not None else (
            TerrainProfile() if self.slant.mode == SlantMode.PROFILE else None)
        self.terrain_map = terrain_map
        self._accel_psd = float(cfg["accel_noise_psd"])  # type: ignore[arg-type]
        self._cell: int | None = None  # the profile cell under the vehicle
        self._followed: tuple | None = None  # the profile under the vehicle at the last tick
        self._last_far_range: dict[int, float] = {}
        # guidance's record of the thrust it commanded while the IMU was lost (set by the wiring)
        self.commanded_force: Callable[[], tuple[float, float, float, float, float]] | None = None
        self._map_registration = (0, 0.0, 0.0)  # (samples, offset frame - map, its variance)
        self._map_refused = 0  # samples refused in a row by the registration
        self._shadow_from: Shadow | None = None  # ground past x* proved lower than behind a gap
        self._suspect_until: float | None = None  # profile cells before this may be returns off an edge
        # per sensor: a near footprint that differs waits until then (and when one last differed)
        self._waiting_until: dict[int, tuple[float, float]] = {}
        self._stuck_cfg = (float(cfg["stuck_tolerance_m"]), float(cfg["stuck_min_speed_mps"]))  # type: ignore[arg-type]
        self.last_height_update_s = -math.inf
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
        try:
            while (sample := self.imu.read()) is not None:
                if isinstance(sample, DeviceError):
                    out.imu_errors += 1
                    continue
                self._take(sample)
            imu_current = out.imu_last_s is not None and now - out.imu_last_s <= self.gap.lost_after_s
            if self.profile is not None and imu_current:
                self._track(now)
            for alt in self._read_order:
                while (reading := alt.read()) is not None:
                    try:
                        outcome = self._fuse(alt.sensor_id, reading, imu_current)
                    except Exception as exc:  # noqa: BLE001 - one sample's fault loses that sample, counted
                        out.fuse_errors += 1
                        outcome = RangeOutcome(alt.sensor_id, getattr(reading, "time_s", now), None, math.nan,
                                               error=f"estimation error: {exc!r}"[:120])
                    out.outcomes.append(outcome)
            out.completed_s = now  # FDIR: an estimate not completed lately is as stale as a lost IMU
        finally:
            # whatever happened, the output says what the filter holds now (never a stale copy)
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
        # an attitude error δθ turns δθ·f_downrange of the thrust into the vertical: a slowly
        # varying acceleration error, carried as process noise (random constant over ATTITUDE_TC_S)
        induced = f_downrange * self.attitude.sigma_rad
        self.filter.accel_noise_psd = self._accel_psd + induced * induced * ATTITUDE_TC_S
        if not self.filter.predict(dt, f_up + gravity_fix, abs(self.vx)):
            out.invalid_imu += 1  # refused (e.g. beyond the kernel's force limit): missing, as above
            return
        out.imu_last_s = s.time_s
        # The vertical accelerometer error, taken as the thrust axis's own (body z: a bias that
        # jumped), leaks -β tan θ into the horizontal when pitched, where nothing measures it:
        # take the filter's estimate of it out there too.
        if abs(self.attitude.sin_pitch) < 0.7071 * self.attitude.cos_pitch:
            f_downrange += self.filter.x[2] * self.attitude.sin_pitch / self.attitude.cos_pitch
        self._held_force = (f_up, f_downrange)
        # the local horizontal turns as the vehicle moves over the sphere: transport rate
        self.vx += (f_downrange - self.vx * vz / r) * dt
        self.downrange_m += self.vx * dt * self.radius_m / r  # downrange runs along the datum sphere
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
        sigma = self.gap.accel_sigma(gap_s)
        dv = f_downrange * gap_s
        # After its hold, guidance arrested the descent (more thrust, attitude held), which the
        # held force does not know. What it commanded over the gap is the better model of the
        # force, to the hold's accuracy (the arrest is in the model, not in the doubt); the
        # held force covers the rest. The horizontal needs it most: no altimeter pulls it back.
        if self.commanded_force is not None:
            up, commanded, secs, since, turn = self.commanded_force()
            gap_start = self.output.time_s - gap_s
            # this gap's record: guidance noticed the loss within its detection time (FDIR's 50 ms
            # plus a guidance cycle) of the gap's start, never before it
            noticed = gap_start - 1e-6 <= since <= gap_start + self.gap.lost_after_s + GUIDANCE_NOTICE_S
            if 0.0 < secs <= gap_s + GUIDANCE_NOTICE_S and noticed:
                rest = max(gap_s - secs, 0.0)
                f_up = (up + f_up * rest) / max(secs + rest, 1e-9)
                dv = commanded + f_downrange * rest
                sigma = self.gap.hold_accel_sigma_mps2
                # the attitude controller turned the vehicle as guidance's commands turned (the
                # gap may have begun mid-turn), and held it: the estimate turns by as much
                self.attitude.correct(turn)
        step = min(gap_s, MAX_GAP_S)
        if not self.filter.predict_gap(step, f_up + gravity_fix, abs(self.vx), sigma):
            out.invalid_imu += 1
        self.attitude.hold(gap_s, abs(self.vx), altitude)
        self.vx += dv - self.vx * vz / r * gap_s
        self.downrange_m += self.vx * gap_s * self.radius_m / r

    # -- the look-ahead profile -------------------------------------------------------------
    def _track(self, now: float) -> None:
        """On entering a new profile cell: if no height update came lately, the terrain under
        the vehicle is what the profile (or the map) says of this cell, when that is better
        than what the filter knows or disagrees with it (a step seen ahead, taken in now)."""
        profile = self.profile
        x = self.downrange_m
        self._follow(x, now)
        blind = now - self.last_height_update_s > self.slant.fix_window_s
        if self._shadow_from is not None:
            if not blind:
                self._shadow_from = None  # an altimeter sees the ground below: it needs no shadow
            elif (x - self._shadow_from.x_star) * self.vx >= 0.0:
                self._shadow(x, now)  # the edge's far side: as soon as x* is passed, not at the next cell
        k = profile.index(x)  # type: ignore[union-attr]
        if k == self._cell:
            return
        self._cell = k
        profile.move(x)  # type: ignore[union-attr]
        if not blind:
            self._suspect_until = None  # an altimeter sees the ground below: no cell is in doubt now
            return
        cell = self._cell_at(x, now)
        if cell.source == Source.EMPTY:
            return
        f = self.filter
        est = f.estimate()
        if cell.source == Source.BEAM:
            age = now - cell.time_s
            if age > self.slant.max_age_s:
                return
            p_vv = f.P[1][1]
            variance = cell.variance_m2 + p_vv * age * age + self._accel_psd * age ** 3 / 3.0
        else:
            variance = cell.variance_m2
        # The cell was measured from the vehicle (its elevation = the altitude then - the drop),
        # so the altitude now less the cell is a height above the ground below, known to the
        # cell's variance and the drift of the altitude since: a height update (its own sensor
        # id in the kernel). Beyond the gate it is a step the beam saw ahead, taken in now that
        # it is under the vehicle.
        # Cells seen in the same stretch of a descent share their errors (the attitude's above
        # all), so they are not independent: a cell updates the height only when it knows better
        # than the filter already does.
        y = cell.elevation_m - est.terrain_elevation_m
        hat_var = est.height_above_terrain_sigma_m ** 2
        if self._suspect_until is not None:
            if (self._suspect_until - x) * self.vx > 0.0:
                return  # a cell in an edge's shadow (see _shadow): it may be a return off the edge
            self._suspect_until = None
        if y * y <= 9.0 * (hat_var + variance):
            self.output.last_height_fix_s = now  # the ground below is what the filter holds
            if variance < hat_var:
                status = self._height_update(est.altitude_m - cell.elevation_m, math.sqrt(variance), PROFILE_SENSOR)
                if status == Status.ACCEPTED:
                    self.output.profile_fixes += 1
        elif cell.source == Source.BEAM and f.reset_terrain(cell.elevation_m, variance):
            # (a map's cell never overrules what the altimeters made of the ground: it primes)
            self.output.last_height_fix_s = now
            self.output.profile_fixes += 1
            self.output.steps_ahead += 1
            self.events.emit("TERRAIN_STEP_AHEAD", y)

    def _note_shadow(self, x_f: float, fp, beam: float) -> None:
        """A far sample in a new cell, with a gap of unseen ground before it and higher ground
        seen behind the gap: the beam passed over an edge. Its line of sight, traced back from
        the footprint, rises to the height of that higher ground at x*: ground beyond x* is
        below it (else the beam would have hit it there), so a vehicle past x* has crossed the
        edge. The edge is somewhere between the seen ground and x*; x* is the earliest point
        the samples prove, and the sample that grazes the edge proves the earliest x*."""
        behind = self.profile.next_known(x_f, -1 if fp.offset_m >= 0.0 else 1, SHADOW_AHEAD_CELLS)  # type: ignore[union-attr]
        if behind is None:
            return
        x_b, cell_b = behind
        rise = cell_b.elevation_m - fp.elevation_m  # > 0: the ground beyond the gap is lower
        if abs(x_f - x_b) < 1.5 * self.profile.cell_m or rise * rise <= 9.0 * (cell_b.variance_m2 + fp.variance_m2):  # type: ignore[union-attr]
            return  # no gap, or the same ground across it
        # (higher ground beyond a gap puts x* past its own footprint: the vehicle passes the
        # footprint first and the shadow is dropped unused; measured over the built-ins, noting it
        # all the same holds the slot against the beam's skipping over rough ground, which a
        # drop-only rule lets through: 26 m against 67-110 m of height error on nominal seed 18)
        incidence = abs(beam) + abs(fp.offset_m) / self.radius_m  # from the local vertical at the footprint
        x_star = x_f - math.copysign(rise * math.tan(incidence), fp.offset_m)
        if (x_star - x_b) * (x_f - x_b) < 0.0:
            x_star = x_b  # the line of sight clears the edge right where the seen ground ends
        known = self._shadow_from
        if known is None or (known.x_star - self.downrange_m) * fp.offset_m <= 0.0:  # none ahead of the vehicle
            self._shadow_from = Shadow(x_star, x_f, x_f, fp.elevation_m, self.output.time_s)
            return
        if abs(x_star - self.downrange_m) < abs(known.x_star - self.downrange_m):
            known.x_star, known.x_near = x_star, x_f
        if fp.elevation_m < known.z_low:
            known.x_low, known.z_low = x_f, fp.elevation_m

    def _shadow(self, x: float, now: float) -> None:
        """Over ground the beam never saw, past the point x* where a beam's line of sight proved
        the ground lower than the ground seen behind (see _note_shadow): the vehicle crossed an
        edge (a plateau's end, a crater's rim) whose far side the beam could not see. The ground
        below is taken as the ground seen beyond the gap, in doubt by the slope it may have over
        the gap (the HAKUTO-R rim: the drop is believed when it is crossed, not after)."""
        known = self._shadow_from
        if known is None:
            return
        if (x - known.x_low) * self.vx >= 0.0:
            self._shadow_from = None  # past the ground seen beyond the gap: nothing left to take
            return
        if self.profile.lookup(x).source != Source.EMPTY:  # type: ignore[union-attr]
            return  # seen ground (the edge's own cell): it speaks for itself until the gap begins
        self._shadow_from = None
        x_ahead = known.x_near  # the ground that proved the drop nearest the edge
        cell = self.profile.lookup(x_ahead)  # type: ignore[union-attr]
        age = now - cell.time_s
        if cell.source != Source.BEAM or age > self.slant.max_age_s:
            return
        f = self.filter
        est = f.estimate()
        gap = self.slant.slope * abs(x_ahead - x)
        # the samples that proved the drop may disagree (one that grazed the edge, one beyond it):
        # the nearest one's ground is taken, doubted down to the lowest of them
        spread = cell.elevation_m - known.z_low
        variance = cell.variance_m2 + gap * gap + spread * spread + f.P[1][1] * age * age + \
            self._accel_psd * age ** 3 / 3.0
        y = cell.elevation_m - est.terrain_elevation_m
        # past x* the ground is proved to be other than the ground behind: taken, whatever the gate
        if f.reset_terrain(cell.elevation_m, variance):
            # cells up to the lowest proving footprint may hold returns off the edge itself:
            # they do not narrow the doubt before an altimeter sees the ground below
            self._suspect_until = known.x_low if spread * spread > cell.variance_m2 else None
            self.output.last_height_fix_s = now
            self.output.profile_fixes += 1
            self.output.steps_ahead += 1
            self.events.emit("TERRAIN_STEP_AHEAD", y)

    def _follow(self, x: float, now: float) -> None:
        """While no altimeter sees the ground below (the beams look ahead, or their samples are
        judged against a moving ground), the terrain under the vehicle follows the profile's
        shape as the vehicle moves: the ground it moved over rose or fell by what the profile
        says (a slope, a crater wall), with the profile's doubt about that change added."""
        if now - self.last_height_update_s <= self.slant.fix_window_s:
            self._followed = None  # an altimeter sees the ground below: nothing to follow
            return
        source, z, variance = self.profile.interpolate(x)  # type: ignore[union-attr]
        last = self._followed
        self._followed = (source, z, variance)
        # only ground the beam measured is followed: a map's shape sits where the map says, and
        # the flight's own downrange is not that sure (a map's drop followed 100 m late is a
        # second drop after the altimeters took the first)
        if last is None or source != Source.BEAM or last[0] != Source.BEAM:
            return
        dz = z - last[1]
        if dz != 0.0:
            self.filter.shift_terrain(dz, FOLLOW_DOUBT * dz * dz)

    def _cell_at(self, x: float, now: float):
        """The profile's cell at x, primed from the onboard map when the beam has not seen it."""
        cell = self.profile.lookup(x)  # type: ignore[union-attr]
        if cell.source == Source.EMPTY and self.terrain_map is not None:
            known = self.terrain_map.at(x)
            if known is not None:
                # the map is absolute; the filter's frame is off by its own altitude error, which
                # the beam's samples on mapped ground measure (registration, _register_map)
                reg = self._map_registration
                if reg[0] > 0:
                    z, variance = known[0] + reg[1], known[1] ** 2 + reg[2]
                else:
                    z, variance = known[0], known[1] ** 2 + self.filter.P[0][0]
                self.profile.observe(x, z, variance, now, Source.MAP)  # type: ignore[union-attr]
                cell = self.profile.lookup(x)  # type: ignore[union-attr]
        return cell

    def _register_map(self, x_f: float, z_beam: float, variance_m2: float) -> None:
        """The offset between the filter's frame and the map's (absolute) one, from the beam's
        samples on mapped ground: a running mean over the last MAP_REGISTRATION_N samples that
        agree with it (3 sigma), so ground where the map is wrong does not drag it."""
        known = self.terrain_map.at(x_f)  # type: ignore[union-attr]
        if known is None:
            return
        n, offset, var = self._map_registration
        residual = z_beam - known[0]
        s2 = known[1] ** 2 + variance_m2
        if n >= MAP_REGISTRATION_MIN and (residual - offset) ** 2 > 9.0 * (s2 + var):
            self._map_refused += 1
            if self._map_refused < MAP_REGISTRATION_RESTART:
                return
            n = 0  # the beam keeps refusing it: the offset is wrong (it began where the map was), start again
        self._map_refused = 0
        n = min(n + 1, MAP_REGISTRATION_N)
        offset += (residual - offset) / n
        self._map_registration = (n, offset, s2 / n)

    def _shift_frame(self, dz_m: float) -> None:
        """The altitude estimate moved by dz_m: the profile's cells (measured from it, so in its
        frame) and the map's registration move with it."""
        if self.profile is not None and dz_m != 0.0:
            self.profile.shift(dz_m)
            n, offset, var = self._map_registration
            self._map_registration = (n, offset + dz_m, var)
            # (the terrain the filter holds is in this frame too: following carries it along)

    def terrain_at(self, x_m: float) -> float | None:
        """The elevation the look-ahead profile (or, where the beam has not looked, the map)
        holds at x_m, for guidance; None when neither knows it. Reads only."""
        if self.profile is not None:
            cell = self.profile.lookup(x_m)
            if cell.source != Source.EMPTY:
                return cell.elevation_m
        if self.terrain_map is not None:
            known = self.terrain_map.at(x_m)
            if known is not None:
                n, offset, _ = self._map_registration
                return known[0] + (offset if n > 0 else 0.0)  # in the filter's frame
        return None

    # -- range samples -------------------------------------------------------------------
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
        slant = self.slant
        beam = self.attitude.pitch_rad + slant.cant_rad.get(sensor_id, 0.0)
        f = self.filter
        altitude = f.estimate().altitude_m
        r = reading.range_m
        if not (math.isfinite(r) and r >= 0.0 and math.isfinite(reading.sigma_m)):
            return RangeOutcome(sensor_id, reading.time_s, Status.INVALID_INPUT, r, reading.sigma_m)
        fp = footprint(altitude, r, beam, reading.sigma_m, self.attitude.sigma_rad,
                       slant.divergence_rad.get(sensor_id, 0.0), slant.slope, self.radius_m)
        tilted = abs(beam) > slant.max_tilt_rad
        pstatus = None
        if slant.mode == SlantMode.PROFILE:
            x_f = self.downrange_m + fp.offset_m
            far = tilted or abs(fp.offset_m) > slant.near_m + slant.near_fraction * fp.drop_m
            if not far and abs(fp.offset_m) > slant.agree_beyond_m:
                far = self._waits_for_crossing(sensor_id, fp, reading.time_s)
            if far and self._stuck(sensor_id, r):
                # the kernel judges repeats of the samples it sees; the profile's are judged here
                return RangeOutcome(sensor_id, reading.time_s, Status.REJECTED_STUCK, r, reading.sigma_m, AHEAD,
                                    True, math.nan, None, fp.offset_m)
            if self.terrain_map is not None:
                self._register_map(x_f, fp.elevation_m, fp.variance_m2)
            cell = self._cell_at(x_f, reading.time_s)
            if far and cell.source == Source.BEAM and reading.time_s - cell.time_s >= slant.revisit_s:
                # Ground the profile already holds, seen again from elsewhere: the beam measures
                # the vehicle's altitude against it (the drift since it was seen: the vertical
                # speed, observable in braking at last). Within the gate it updates the
                # altitude; beyond it, the cell is in doubt and the sample goes to it below.
                pstatus = self._revisit(cell, fp, x_f)
                if pstatus is not None:
                    return RangeOutcome(sensor_id, reading.time_s, None, r, reading.sigma_m, AHEAD, True, math.nan,
                                        pstatus, fp.offset_m)
            pstatus = self.profile.observe(x_f, fp.elevation_m, fp.variance_m2, reading.time_s,  # type: ignore[union-attr]
                                           Source.BEAM, fp.attitude_m2)
            if pstatus == ProfileStatus.NEW and far:
                self._note_shadow(x_f, fp, beam)
            if pstatus == ProfileStatus.HELD and cell.source == Source.MAP:
                self.events.emit("TERRAIN_MAP_DISAGREES", x_f, fp.elevation_m)
            if far:
                return RangeOutcome(sensor_id, reading.time_s, None, r, reading.sigma_m, AHEAD, True, math.nan,
                                    pstatus, fp.offset_m)
        elif slant.mode == SlantMode.TILT_LIMIT and tilted:
            return RangeOutcome(sensor_id, reading.time_s, None, r, reading.sigma_m, TILTED, False, math.nan, None,
                                fp.offset_m)
        if math.cos(beam) <= 0.0:  # looking up or sideways: nothing below to measure
            return RangeOutcome(sensor_id, reading.time_s, Status.INVALID_INPUT, r, reading.sigma_m)
        # the drop to the footprint is the height above the ground below, to the footprint's
        # offset times the slope it may lie on (near: a few metres; VERTICAL/TILT_LIMIT: all of it,
        # which is what those anchors do)
        spread = slant.slope * fp.offset_m if slant.mode == SlantMode.PROFILE else 0.0
        sigma = math.sqrt(fp.variance_m2 + spread * spread)
        status = self._height_update(fp.drop_m, sigma, sensor_id)
        if status in (Status.ACCEPTED, Status.TERRAIN_STEP):
            self.last_accepted_s[sensor_id] = reading.time_s
            self.last_height_update_s = reading.time_s
            self.output.last_height_fix_s = self.output.time_s
        return RangeOutcome(sensor_id, reading.time_s, status, r, reading.sigma_m, "", True, fp.drop_m, pstatus,
                            fp.offset_m)

    def _waits_for_crossing(self, sensor_id: int, fp, now: float) -> bool:
        """A near footprint some way off speaks for the ground below only while it agrees with
        it: ground ahead that differs (a drop, a rim: the footprint is already past an edge the
        vehicle has yet to cross) waits in the profile for the vehicle. It waits only as long as
        the vehicle takes to get there (plus a second): a disagreement that outlasts the crossing
        is the estimate's, and the samples go to the filter, whose step logic judges them."""
        est = self.filter.estimate()
        y = fp.drop_m - est.height_above_terrain_m
        spread = self.slant.slope * fp.offset_m  # the ground may slope between here and there
        if y * y <= 9.0 * (est.height_above_terrain_sigma_m ** 2 + fp.variance_m2 + spread * spread):
            self._waiting_until.pop(sensor_id, None)
            return False
        wait = self._waiting_until.get(sensor_id)
        if wait is not None and now - wait[1] > CROSSING_MARGIN_S:
            wait = None  # no disagreeing near sample for a while (the footprint left the band): a new edge
        if wait is None:
            ahead = fp.offset_m * (1.0 if self.vx >= 0.0 else -1.0)
            if ahead <= 0.0:
                return False  # ground the vehicle has passed: nothing to wait for
            wait = (now + ahead / max(abs(self.vx), 1.0) + CROSSING_MARGIN_S, now)
        self._waiting_until[sensor_id] = (wait[0], now)  # (until, the last disagreeing sample)
        return now < wait[0]

    def _stuck(self, sensor_id: int, range_m: float) -> bool:
        """The same reading again (within the kernel's stuck tolerance) while the vehicle moves:
        a hung unit, whose samples must not build the profile."""
        last = self._last_far_range.get(sensor_id)
        self._last_far_range[sensor_id] = range_m
        cfg = self._stuck_cfg
        moving = abs(self.vx) > cfg[1] or (self.output.estimate is not None
                                          and abs(self.output.estimate.vertical_velocity_mps) > cfg[1])
        return last is not None and abs(range_m - last) <= cfg[0] and moving

    def _revisit(self, cell, fp, x_f: float) -> ProfileStatus | None:
        """A far sample on a cell the beam saw earlier: an altitude update (FUSED), or None
        when it disagrees (the cell decides what it is)."""
        f = self.filter
        slope_var = (self.slant.slope * self.profile.cell_m) ** 2 / 3.0  # type: ignore[union-attr]  # anywhere in the cell
        variance = cell.variance_m2 + fp.variance_m2 + slope_var
        altitude = cell.elevation_m + fp.drop_m
        y = altitude - f.x[0]
        if y * y > 9.0 * (f.P[0][0] + variance):
            return None
        before, v_before = f.x[0], f.x[1]
        if not f.update_altitude(altitude, variance):
            return None
        self._vertical_corrected(f.x[1] - v_before)
        self._shift_frame(f.x[0] - before)
        self.output.revisits += 1
        self.output.last_height_fix_s = self.output.time_s
        return ProfileStatus.FUSED

    def _height_update(self, height_m: float, sigma_m: float, sensor_id: int) -> Status:
        """One height-above-terrain update in the kernel. When it moves the altitude estimate, the
        profile's cells (measured from that altitude, so in its frame) move along with it."""
        f = self.filter
        before, v_before = f.x[0], f.x[1]
        status = f.update_range(height_m, 1.0, sigma_m, sensor_id)
        self._vertical_corrected(f.x[1] - v_before)
        self._shift_frame(f.x[0] - before)
        return status

    def _vertical_corrected(self, dv: float) -> None:
        """The altimeters moved the vertical speed by dv. While the thrust is mostly horizontal
        (braking), what they correct is mostly the attitude's error δθ: it puts f_downrange·δθ into
        the vertical and -f_up·δθ into the horizontal, where nothing measures it. The same error
        in the horizontal is then -(f_up / f_downrange) of the vertical one: correct it there too."""
        f_up, f_downrange = self._held_force
        # (only where the heights are the ground's below: a slant range taken as the height below
        # corrects the vertical for the wrong ground, not for the tilt)
        if self.slant.mode == SlantMode.PROFILE and abs(f_downrange) > BRAKING_RATIO * abs(f_up):
            self.vx -= f_up / f_downrange * dv

    def drain_outcomes(self) -> list[RangeOutcome]:
        """FDIR takes every range outcome since its last call."""
        outcomes, self.output.outcomes = self.output.outcomes, []
        return outcomes

    def take_peak_force(self) -> float:
        """Guidance takes the peak specific force since its last call (touchdown shock)."""
        peak, self.output.peak_specific_force_mps2 = self.output.peak_specific_force_mps2, 0.0
        return peak
