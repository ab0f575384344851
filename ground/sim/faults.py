"""Sensor faults on a schedule: what each kind does to a reading, and checking a fault table.

Faults are pure transformations of one reading: `apply(reading, t, hat, rng)`. A fault is
active for start_s <= t < end_s (default: the whole flight). The list of kinds, with the
mission each one stands for, is in ground/sim/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RANGE_SENSORS = ("primary", "short_range")
SENSORS = RANGE_SENSORS + ("imu",)

# kind -> (sensors it applies to, {key: (default or None = required)})
KINDS: dict[str, tuple[tuple[str, ...], dict[str, float | None]]] = {
    "dead": (RANGE_SENSORS, {}),
    "late_valid": (RANGE_SENSORS, {"valid_below_m": None}),
    "noisy": (RANGE_SENSORS, {"sigma_m": 0.0, "sigma_fraction": 0.0, "outlier_probability": 0.0,
                              "outlier_m": 0.0}),
    "stuck": (RANGE_SENSORS, {}),
    "spikes": (RANGE_SENSORS, {"probability": None, "magnitude_m": None}),
    "bias_drift": (RANGE_SENSORS, {"rate_mps": None}),
    "dropouts": (RANGE_SENSORS, {"probability": None}),
    "imu_bias_jump": (("imu",), {"up_mps2": 0.0, "downrange_mps2": 0.0}),
    "imu_gap": (("imu",), {}),
}
COMMON = {"kind", "sensor", "start_s", "end_s"}


class FaultError(ValueError):
    pass


@dataclass
class Reading:
    """One range reading on its way out of a device. emit=False: the device says nothing."""

    range_m: float
    sigma_m: float  # what the device reports (a noisy unit does not know it is noisy)
    valid: bool = True
    emit: bool = True


@dataclass
class Fault:
    kind: str
    sensor: str
    start_s: float = 0.0
    end_s: float = math.inf
    params: dict[str, float] = field(default_factory=dict)
    _frozen: float | None = None  # stuck: the value it froze at

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    def apply(self, r: Reading, t: float, hat_m: float, rng: np.random.Generator) -> None:
        """Change the reading in place (range faults only)."""
        if not self.active(t):
            self._frozen = None
            return
        p = self.params
        k = self.kind
        if k == "dead":
            r.emit = False
        elif k == "late_valid":
            if hat_m > p["valid_below_m"]:
                r.valid = False
        elif k == "noisy":
            extra = math.hypot(p["sigma_m"], p["sigma_fraction"] * r.range_m)
            r.range_m += extra * float(rng.standard_normal())
            if p["outlier_probability"] and rng.random() < p["outlier_probability"]:
                r.range_m += p["outlier_m"] * float(rng.uniform(-1.0, 1.0))
            r.range_m = max(r.range_m, 0.0)
        elif k == "stuck":
            if self._frozen is None:
                self._frozen = r.range_m
            r.range_m = self._frozen
        elif k == "spikes":
            if rng.random() < p["probability"]:
                r.range_m = max(0.0, r.range_m + p["magnitude_m"] * (1.0 if rng.random() < 0.5 else -1.0))
        elif k == "bias_drift":
            r.range_m = max(0.0, r.range_m + p["rate_mps"] * (t - self.start_s))
        elif k == "dropouts" and rng.random() < p["probability"]:
            r.emit = False


def parse(table: Mapping[str, Any], where: str) -> Fault:
    """One [[faults]] table -> Fault, or FaultError saying what is wrong."""
    if not isinstance(table, Mapping):
        raise FaultError(f"{where}: must be a table")
    kind = table.get("kind")
    if kind not in KINDS:
        raise FaultError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    sensors, keys = KINDS[kind]
    sensor = table.get("sensor", sensors[0] if len(sensors) == 1 else None)
    if sensor not in sensors:
        raise FaultError(f"{where} ({kind}): sensor must be one of {', '.join(sensors)}, got {sensor!r}")
    unknown = set(table) - COMMON - set(keys)
    if unknown:
        raise FaultError(f"{where} ({kind}): unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(COMMON | set(keys)))}")
    values: dict[str, float] = {}
    for key, default in list(keys.items()) + [("start_s", 0.0), ("end_s", math.inf)]:
        if key not in table:
            if default is None:
                raise FaultError(f"{where} ({kind}): missing {key}")
            values[key] = default
            continue
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise FaultError(f"{where} ({kind}): {key} must be a number, got {v!r}")
        values[key] = float(v)
    for key in ("probability", "outlier_probability"):
        if key in values and not 0.0 <= values[key] <= 1.0:
            raise FaultError(f"{where} ({kind}): {key} must be in [0, 1]")
    start, end = values.pop("start_s"), values.pop("end_s")
    if not end > start:
        raise FaultError(f"{where} ({kind}): end_s must be after start_s")
    return Fault(kind, sensor, start, end, values)
