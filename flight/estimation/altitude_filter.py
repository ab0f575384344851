"""Python face of the C altitude filter (c_kernels/altfilter.c), for the flight path.

No numpy here: this runs on the flight computer. Tuning defaults live in the C kernel
(`alt_default_config`) and nowhere else; keyword overrides are checked against its fields.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

from flight._altfilter import ffi, lib

NX = lib.ALT_NX
MAX_SENSORS = lib.ALT_MAX_SENSORS
MAX_GAP_S = float(lib.ALT_MAX_GAP_S)


class Policy(IntEnum):
    NONE = lib.ALT_POLICY_NONE
    M1_BASELINE = lib.ALT_POLICY_M1_BASELINE
    APOLLO_GATE = lib.ALT_POLICY_APOLLO_GATE
    PX4_LIKE = lib.ALT_POLICY_PX4_LIKE
    TERRAIN_AWARE = lib.ALT_POLICY_TERRAIN_AWARE

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, name: str | Policy) -> Policy:
        if isinstance(name, Policy):
            return name
        try:
            return cls[name.strip().upper().replace("-", "_")]
        except KeyError:
            choices = ", ".join(p.label for p in cls)
            raise ValueError(f"unknown estimator policy {name!r}; choose one of: {choices}") from None


class Status(IntEnum):
    ACCEPTED = lib.ALT_ACCEPTED
    HELD = lib.ALT_HELD
    TERRAIN_STEP = lib.ALT_TERRAIN_STEP
    REJECTED_INCONSISTENT = lib.ALT_REJECTED_INCONSISTENT
    REJECTED_STUCK = lib.ALT_REJECTED_STUCK
    INVALID_INPUT = lib.ALT_INVALID_INPUT
    NO_MEASUREMENT = lib.ALT_NO_MEASUREMENT


CONFIG_FIELDS = tuple(name for name, _ in ffi.typeof("alt_config").fields if name != "policy")


def default_config(policy: str | Policy) -> dict[str, str | float | int | tuple[float, ...]]:
    """The kernel's documented defaults for a policy, as a plain dict."""
    cfg = ffi.new("alt_config *")
    if lib.alt_default_config(int(Policy.parse(policy)), cfg) != 0:
        raise ValueError(f"kernel refused policy {policy!r}")
    return _config_to_dict(cfg)


def _config_to_dict(cfg) -> dict[str, str | float | int | tuple[float, ...]]:
    out: dict[str, str | float | int | tuple[float, ...]] = {"policy": Policy(cfg.policy).label}
    for name in CONFIG_FIELDS:
        value = getattr(cfg, name)
        out[name] = tuple(value) if isinstance(value, ffi.CData) else value
    return out


class Estimate(NamedTuple):
    """One look at the filter: SI units, up positive, datum = landing site. A NamedTuple:
    immutable, and built on every 100 Hz tick."""

    altitude_m: float
    vertical_velocity_mps: float
    accel_bias_mps2: float
    terrain_elevation_m: float
    height_above_terrain_m: float
    height_above_terrain_sigma_m: float
    time_s: float


class AltitudeFilter:
    """One filter instance; all arithmetic happens in C."""

    def __init__(
        self,
        policy: str | Policy = Policy.TERRAIN_AWARE,
        x0: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
        var0: tuple[float, float, float, float] = (100.0**2, 1.0, 1e-4, 100.0**2),
        **overrides: float | tuple[float, ...],
    ) -> None:
        self.policy = Policy.parse(policy)
        cfg = ffi.new("alt_config *")
        lib.alt_default_config(int(self.policy), cfg)
        for name, value in overrides.items():
            if name not in CONFIG_FIELDS:
                raise ValueError(f"unknown filter parameter {name!r}; known: {', '.join(CONFIG_FIELDS)}")
            if isinstance(value, (tuple, list)):
                if len(value) != NX:
                    raise ValueError(f"{name} needs {NX} values, got {len(value)}")
                getattr(cfg, name)[0:NX] = [float(v) for v in value]
            else:
                setattr(cfg, name, value)
        self._cfg = cfg
        self._f = ffi.new("alt_filter *")
        if len(x0) != NX or len(var0) != NX:
            raise ValueError(f"x0 and var0 need {NX} values each")
        rc = lib.alt_init(self._f, cfg, [float(v) for v in x0], [float(v) for v in var0])
        if rc != 0:
            raise ValueError(
                "filter refused its configuration or initial state "
                "(non-finite value, negative noise, variance outside [min_variance, max_variance], "
                f"or step_candidates outside 2..{lib.ALT_MAX_CANDIDATES})"
            )

    # -- the hot calls -------------------------------------------------------------------
    def predict(self, dt_s: float, vertical_specific_force_mps2: float, horizontal_speed_mps: float) -> bool:
        """Propagate; False (and nothing changed) on invalid input."""
        return lib.alt_predict(self._f, dt_s, vertical_specific_force_mps2, horizontal_speed_mps) == 0

    def predict_gap(self, dt_s: float, vertical_specific_force_mps2: float, horizontal_speed_mps: float,
                    accel_sigma_mps2: float) -> bool:
        """Bridge an IMU gap of dt_s (up to MAX_GAP_S) with the force held over it and an unknown
        constant error of accel_sigma_mps2 in it; False (and nothing changed) on invalid input."""
        return lib.alt_predict_gap(self._f, dt_s, vertical_specific_force_mps2, horizontal_speed_mps,
                                   accel_sigma_mps2) == 0

    def update_range(self, range_m: float, cos_tilt: float, sigma_m: float, sensor_id: int = 0) -> Status:
        return Status(lib.alt_update_range(self._f, range_m, cos_tilt, sigma_m, sensor_id))

    def step(
        self,
        dt_s: float,
        vertical_specific_force_mps2: float,
        horizontal_speed_mps: float,
        range_m: float | None = None,
        cos_tilt: float = 1.0,
        sigma_m: float = 1.0,
        sensor_id: int = 0,
    ) -> Status:
        has = range_m is not None
        return Status(
            lib.alt_step(
                self._f, dt_s, vertical_specific_force_mps2, horizontal_speed_mps, has,
                range_m if has else 0.0, cos_tilt, sigma_m, sensor_id,
            )
        )

    def reset_terrain(self, terrain_elevation_m: float, variance_m2: float) -> bool:
        """The terrain under the vehicle is terrain_elevation_m, known to variance_m2 relative to
        the vehicle (var(h - t) becomes it; h and v stay). False (nothing changed) on bad input."""
        return lib.alt_reset_terrain(self._f, terrain_elevation_m, variance_m2) == 0

    def update_terrain(self, terrain_elevation_m: float, variance_m2: float) -> bool:
        """A measurement of the terrain under the vehicle (H = e_t). False on bad input."""
        return lib.alt_update_terrain(self._f, terrain_elevation_m, variance_m2) == 0

    def update_altitude(self, altitude_m: float, variance_m2: float) -> bool:
        """A measurement of the vehicle's altitude (H = e_h). False on bad input."""
        return lib.alt_update_altitude(self._f, altitude_m, variance_m2) == 0

    def shift_terrain(self, dz_m: float, variance_m2: float) -> bool:
        """Move the terrain under the vehicle by dz_m with variance_m2 of doubt. False on bad input."""
        return lib.alt_shift_terrain(self._f, dz_m, variance_m2) == 0

    def inflate(self, state: int, variance: float) -> bool:
        """Add variance to one state's diagonal (0 h, 1 v, 2 b, 3 t). False on bad input."""
        return lib.alt_inflate(self._f, state, variance) == 0

    def reopen_sensor(self, sensor_id: int) -> None:
        """Judge this sensor's next sample afresh (clears a lock-out and step candidates)."""
        if lib.alt_reopen_sensor(self._f, sensor_id) != 0:
            raise ValueError(f"no range sensor {sensor_id}")

    @property
    def accel_noise_psd(self) -> float:
        return self._f.cfg.accel_noise_psd

    @accel_noise_psd.setter
    def accel_noise_psd(self, psd: float) -> None:
        """The process noise of the vertical acceleration from now on: the estimation task
        raises it with what the attitude's error puts into the vertical (see its README)."""
        if not (math.isfinite(psd) and 0.0 <= psd <= 100.0):
            raise ValueError(f"accel_noise_psd must be finite and in [0, 100], got {psd!r}")
        self._f.cfg.accel_noise_psd = psd

    # -- looking at it -------------------------------------------------------------------
    @property
    def x(self) -> tuple[float, ...]:
        return tuple(self._f.x)

    @property
    def P(self) -> tuple[tuple[float, ...], ...]:
        flat = list(self._f.P)
        return tuple(tuple(flat[r * NX : (r + 1) * NX]) for r in range(NX))

    @property
    def height_above_terrain_m(self) -> float:
        return lib.alt_height_above_terrain(self._f)

    @property
    def height_above_terrain_sigma_m(self) -> float:
        return lib.alt_height_above_terrain_sigma(self._f)

    @property
    def last_nis(self) -> float:
        return self._f.last_nis

    @property
    def last_innovation_m(self) -> float:
        return self._f.last_innovation_m

    def estimate(self) -> Estimate:
        f = self._f
        x = f.x
        h, t = x[0], x[3]
        return Estimate(h, x[1], x[2], t, h - t, lib.alt_height_above_terrain_sigma(f), f.time_s)

    def sensor_counts(self, sensor_id: int) -> dict[str, int]:
        s = self._f.sensor[sensor_id]
        return {
            "accepted": s.accepted, "held": s.held, "steps": s.steps,
            "rejected": s.rejected, "stuck": s.stuck, "locked_out": bool(s.locked_out),
        }

    def config(self) -> dict[str, str | float | int | tuple[float, ...]]:
        return _config_to_dict(self._f.cfg)

    def snapshot(self) -> bytes:
        """The whole C struct as bytes: for bit-for-bit comparisons."""
        return bytes(ffi.buffer(self._f))

    @property
    def handle(self):
        """The cffi pointer, for batch runners."""
        return self._f
