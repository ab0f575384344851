"""The simulated world the flight software flies in: truth, sensors, engine, contact.

It exposes the flight's device protocols (feed queues an IMU and two altimeters write into,
an engine the flight commands, a contact switch) and `advance_to(t_ns)`, which a lockstep
clock calls before each executive slot. Fixed step: 10 ms (the IMU rate); the engine
command the flight wrote last holds over the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER
from flight.devices.simulated import FeedAltimeter, FeedImu, FixedContact, RecordingEngine
from ground.sim.dynamics import Local, PointMass
from ground.sim.faults import Fault
from ground.sim.moon import GM_M3PS2, RADIUS_M
from ground.sim.sensors import ImuModel, ImuSpec, Rangefinder, RangefinderSpec, TerrainIndex
from ground.sim.terrain import Terrain
from ground.sim.vehicle import Vehicle

STEPS_PER_S = 100
DT_S = 1.0 / STEPS_PER_S


@dataclass
class Touchdown:
    time_s: float
    vertical_speed_mps: float  # + down
    horizontal_speed_mps: float
    downrange_m: float
    propellant_kg: float
    slope_contact: bool  # hit a step face rather than landing on top


class World:
    def __init__(self, vehicle: Vehicle, terrain: Terrain, *, altitude_m: float, horizontal_speed_mps: float,
                 vertical_speed_mps: float = 0.0, downrange_m: float = 0.0,
                 primary: RangefinderSpec, short_range: RangefinderSpec, imu: ImuSpec,
                 faults: list[Fault], seed: int, settle_s: float = 2.0) -> None:
        self.vehicle = vehicle
        self.terrain = terrain
        self.index = TerrainIndex(terrain)
        streams = np.random.SeedSequence(seed).spawn(4)
        rngs = [np.random.default_rng(s) for s in streams]
        self.body = PointMass(vehicle, altitude_m, horizontal_speed_mps, vertical_speed_mps, downrange_m)
        self.imu = FeedImu()
        self.primary = FeedAltimeter(PRIMARY_ALTIMETER)
        self.short_range = FeedAltimeter(SHORT_RANGE_ALTIMETER)
        self.engine = RecordingEngine()
        self.contact = FixedContact()
        self.imu_model = ImuModel(imu, rngs[0], DT_S)
        self.primary_model = Rangefinder(primary, PRIMARY_ALTIMETER, self.index,
                                         [f for f in faults if f.sensor == "primary"], rngs[1])
        self.short_model = Rangefinder(short_range, SHORT_RANGE_ALTIMETER, self.index,
                                       [f for f in faults if f.sensor == "short_range"], rngs[2])
        self.imu_faults = [f for f in faults if f.sensor == "imu"]
        self._rangefinders = ((self.primary_model, self.primary), (self.short_model, self.short_range))
        self._fired: set[int] = set()
        self.time_s = 0.0
        self.steps = 0
        self.ground_seen_s = -math.inf  # the last valid sample of a working altimeter (scoring only)
        self.imu_silent = False
        self.touchdown: Touchdown | None = None
        self.settle_s = settle_s  # keep the world running after touchdown so the flight sees it
        self.state = self.body.local()
        self.terrain_below_m = terrain.elevation(self.state.downrange_m)

    # -- what the runner and the flight see -------------------------------------------------
    @property
    def hat_m(self) -> float:
        return self.state.altitude_m - self.terrain_below_m

    def finished(self) -> bool:
        return self.touchdown is not None and self.time_s >= self.touchdown.time_s + self.settle_s

    def advance_to(self, t_ns: int) -> None:
        t_end = t_ns * 1e-9 - 1e-9
        while self.time_s < t_end:
            self.steps += 1
            t = self.steps / STEPS_PER_S  # the nearest double to the step's time: no drift from summing
            if self.touchdown is None:
                self._fly(t)
            else:
                self._rest(t)
            self.time_s = t

    # -- one step ---------------------------------------------------------------------------
    def _fly(self, t: float) -> None:
        body = self.body
        before = self.state
        pitch_before = body.state.pitch_rad
        body.step(DT_S, self.engine.throttle, self.engine.pitch_rad)
        s = body.local()
        ground = self.index.elevation(s.downrange_m)
        self.state, self.terrain_below_m = s, ground
        imu_on = not self.imu_faults or self._imu_faults(t)
        self.imu_silent = not imu_on
        if s.altitude_m <= ground:
            self._touch(t, before, s, ground)
            return
        truth = body.state  # the kernel's struct: read directly, once per 10 ms
        pitch = truth.pitch_rad
        # the body's inertial turn over the step: the local vertical turned toward downrange by
        # the ground angle travelled (which raises the up-range pitch), less the pitch change
        rate = ((s.downrange_m - before.downrange_m) / RADIUS_M - (pitch - pitch_before)) / DT_S
        sample = self.imu_model.sample(t, truth.thrust_accel_up_mps2, truth.thrust_accel_downrange_mps2, pitch, rate)
        if imu_on:  # (drawn either way: a gap does not shift the noise of what follows)
            self.imu.push(sample)
        for model, feed in self._rangefinders:
            if model.due(t):
                sample = model.sample(t, s.altitude_m, s.downrange_m, pitch, s.altitude_m - ground)
                if sample is not None:
                    feed.push(sample)
                    if sample.valid and model.working(t, s.altitude_m - ground):
                        self.ground_seen_s = t

    def _imu_faults(self, t: float) -> bool:
        """Apply the IMU's faults at t; False while an imu_gap silences it."""
        on = True
        for fault in self.imu_faults:
            if fault.kind == "imu_bias_jump" and fault.start_s <= t and id(fault) not in self._fired:
                self._fired.add(id(fault))
                self.imu_model.jump_bias(fault.params["up_mps2"], fault.params["downrange_mps2"])
            elif fault.kind == "imu_gap" and fault.active(t):
                on = False
        return on

    def _touch(self, t: float, before: Local, s: Local, ground: float) -> None:
        # a step face: it moved sideways into ground that stands higher than where it just was
        face = self.index.elevation(before.downrange_m) < ground - 1.0 and before.altitude_m < ground
        self.touchdown = Touchdown(t, -s.vertical_speed_mps, abs(s.horizontal_speed_mps), s.downrange_m,
                                   self.body.propellant_kg, face)
        self.contact.is_closed = True
        impact = math.hypot(s.vertical_speed_mps, s.horizontal_speed_mps) / DT_S  # the legs' shock
        self.imu.push(self.imu_model.sample(t, min(impact, 1e4), 0.0, self.body.pitch_rad, 0.0))

    def _rest(self, t: float) -> None:
        """On the ground, at rest at its touchdown attitude: the engine is whatever the flight
        commands, the legs carry the rest."""
        g = GM_M3PS2 / (RADIUS_M + self.state.altitude_m) ** 2
        self.imu.push(self.imu_model.sample(t, g, 0.0, self.body.pitch_rad, 0.0))
