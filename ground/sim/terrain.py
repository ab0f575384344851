"""Terrain: elevation along the ground track, relative to the landing-site datum.

A terrain is a piecewise-linear profile: rows of (downrange, elevation) with downrange
non-decreasing. Two rows at the same downrange are a vertical step (the first row is the
elevation just before it, the second just after). Beyond the first and last rows the
elevation is held. Profiles come from a CSV file or from synthetic features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ground._truth import ffi, lib

CSV_HEADER = ("downrange_m", "elevation_m")


class TerrainError(ValueError):
    """A terrain file or specification is wrong; the message names where."""


class Terrain:
    """A checked profile. Immutable by convention: build a new one to change it."""

    def __init__(self, downrange_m: np.ndarray, elevation_m: np.ndarray, source: str = "synthetic") -> None:
        x = np.asarray(downrange_m, dtype=float)
        z = np.asarray(elevation_m, dtype=float)
        self.source = source
        if x.ndim != 1 or x.shape != z.shape or len(x) < 2:
            raise TerrainError(f"{source}: need at least two rows of (downrange, elevation)")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(z))):
            raise TerrainError(f"{source}: non-finite value")
        dx = np.diff(x)
        if np.any(dx < 0):
            raise TerrainError(f"{source}: downrange decreases at row {int(np.argmax(dx < 0)) + 2}")
        same = dx == 0
        if np.any(same[1:] & same[:-1]):
            raise TerrainError(f"{source}: three rows at one downrange (a step needs exactly two)")
        self.downrange_m = x = np.ascontiguousarray(x)
        self.elevation_m = z = np.ascontiguousarray(z)
        # plain lists for the ray caster's walks along the rows
        self.xs: list[float] = x.tolist()
        self.zs: list[float] = z.tolist()
        # the scalar lookups on the hot path are the C truth kernel's (c_kernels/truth.c), with
        # a row hint each: along a ground track the next lookup is in the same row or the next
        self._rows = (ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", z), len(x))
        self._hint_after = ffi.new("int32_t *")
        self._hint_before = ffi.new("int32_t *")

    def __reduce__(self):  # to worker processes: the rows, not the kernel's pointers
        return (Terrain, (self.downrange_m, self.elevation_m, self.source))

    def __repr__(self) -> str:
        return f"Terrain({len(self.xs)} rows, {self.xs[0]:g}..{self.xs[-1]:g} m, source={self.source!r})"

    def elevation(self, downrange_m: float) -> float:
        """Elevation at one downrange; at a step, the elevation after it."""
        xs, zs, n = self._rows
        return lib.sim_terrain_elevation(xs, zs, n, downrange_m, 1, self._hint_after)

    def elevation_before(self, downrange_m: float) -> float:
        """Elevation just before a downrange; at a step, the elevation before it (for beams looking back)."""
        xs, zs, n = self._rows
        return lib.sim_terrain_elevation(xs, zs, n, downrange_m, 0, self._hint_before)

    def elevations(self, downrange_m: np.ndarray) -> np.ndarray:
        """Vectorised elevation (after steps), for plots and ray casting."""
        x = np.asarray(downrange_m, dtype=float)
        i = np.clip(np.searchsorted(self.downrange_m, x, side="right"), 1, len(self.downrange_m) - 1)
        x0, x1 = self.downrange_m[i - 1], self.downrange_m[i]
        z0, z1 = self.elevation_m[i - 1], self.elevation_m[i]
        width = np.where(x1 > x0, x1 - x0, 1.0)
        frac = np.clip((x - x0) / width, 0.0, 1.0)
        inside = np.where(x1 > x0, z0 + (z1 - z0) * frac, z1)
        return np.where(x < self.downrange_m[0], self.elevation_m[0],
                        np.where(x >= self.downrange_m[-1], self.elevation_m[-1], inside))

    def steps(self) -> list[tuple[float, float]]:
        """(downrange, change) of every vertical step."""
        x, z = self.downrange_m, self.elevation_m
        idx = np.nonzero(np.diff(x) == 0)[0]
        return [(float(x[i]), float(z[i + 1] - z[i])) for i in idx]

    def to_csv(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(",".join(CSV_HEADER) + "\n")
            fh.writelines(f"{x!r},{z!r}\n" for x, z in zip(self.xs, self.zs))


def from_csv(path: str | Path) -> Terrain:
    """Read `downrange_m,elevation_m` rows. Any fault raises TerrainError naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TerrainError(f"{path}: no such terrain file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TerrainError(f"{path}: cannot read: {exc}") from None
    lines = text.splitlines()
    if not lines or tuple(c.strip() for c in lines[0].split(",")) != CSV_HEADER:
        got = lines[0] if lines else "an empty file"
        raise TerrainError(f"{path}:1: header must be '{','.join(CSV_HEADER)}', got {got!r}")
    xs: list[float] = []
    zs: list[float] = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != 2:
            raise TerrainError(f"{path}:{n}: expected 2 columns, got {len(cells)}: {line!r}")
        try:
            x, z = float(cells[0]), float(cells[1])
        except ValueError:
            raise TerrainError(f"{path}:{n}: not a number: {line!r}") from None
        if not (math.isfinite(x) and math.isfinite(z)):
            raise TerrainError(f"{path}:{n}: non-finite value: {line!r}")
        if xs and x < xs[-1]:
            raise TerrainError(f"{path}:{n}: downrange {x} is less than the previous row's {xs[-1]}")
        if len(xs) >= 2 and x == xs[-1] == xs[-2]:
            raise TerrainError(f"{path}:{n}: a third row at downrange {x} (a step needs exactly two)")
        xs.append(x)
        zs.append(z)
    if len(xs) < 2:
        raise TerrainError(f"{path}: needs at least two data rows, has {len(xs)}")
    return Terrain(np.array(xs), np.array(zs), source=str(path))


# -- synthetic terrain --------------------------------------------------------------------

FEATURE_KEYS: dict[str, dict[str, bool]] = {  # kind -> key -> required
    "slope": {"start_m": True, "end_m": True, "rise_m": True},
    "step": {"at_m": True, "change_m": True},
    "crater": {"center_m": True, "radius_m": True, "depth_m": True, "rim_height_m": False},
    "roughness": {"amplitude_m": True, "wavelength_m": True, "seed": False},
}
SPEC_KEYS = {"elevation_m", "start_m", "end_m", "resolution_m", "features", "file"}


def _number(where: str, table: Mapping[str, Any], key: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TerrainError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def synthetic(spec: Mapping[str, Any], seed: int = 0, where: str = "[terrain]") -> Terrain:
    """Build a profile from a spec: base elevation plus features, sampled every resolution_m.

    Features (summed): slope (linear rise between start and end, held after), step (a
    vertical change at a downrange; negative = drop), crater (bowl of depth below the
    surroundings with a raised rim), roughness (seeded sum of sines, rms ~ amplitude).
    """
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise TerrainError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SPEC_KEYS))}")
    base = _number(where, spec, "elevation_m") if "elevation_m" in spec else 0.0
    start = _number(where, spec, "start_m") if "start_m" in spec else -20_000.0
    end = _number(where, spec, "end_m") if "end_m" in spec else 600_000.0
    res = _number(where, spec, "resolution_m") if "resolution_m" in spec else 100.0
    if not end > start:
        raise TerrainError(f"{where}: end_m must be greater than start_m")
    if not 0.1 <= res <= (end - start):
        raise TerrainError(f"{where}: resolution_m must be in [0.1, end_m - start_m]")
    features = spec.get("features", [])
    if not isinstance(features, list):
        raise TerrainError(f"{where}: features must be an array of tables")
    checked = []
    for i, feat in enumerate(features):
        fw = f"{where} feature {i + 1}"
        if not isinstance(feat, dict) or "kind" not in feat:
            raise TerrainError(f"{fw}: needs kind = one of {', '.join(FEATURE_KEYS)}")
        kind = feat["kind"]
        if kind not in FEATURE_KEYS:
            raise TerrainError(f"{fw}: unknown kind {kind!r}; choose one of {', '.join(FEATURE_KEYS)}")
        keys = FEATURE_KEYS[kind]
        extra = set(feat) - set(keys) - {"kind"}
        if extra:
            raise TerrainError(f"{fw} ({kind}): unknown key(s) {', '.join(sorted(extra))}; known: {', '.join(keys)}")
        missing = [k for k, req in keys.items() if req and k not in feat]
        if missing:
            raise TerrainError(f"{fw} ({kind}): missing {', '.join(missing)}")
        values = {k: _number(fw, feat, k) for k in keys if k in feat}
        if kind == "crater" and (values["radius_m"] <= 0 or values["depth_m"] < 0):
            raise TerrainError(f"{fw} (crater): radius_m must be > 0 and depth_m >= 0")
        if kind == "roughness" and values["wavelength_m"] <= 0:
            raise TerrainError(f"{fw} (roughness): wavelength_m must be > 0")
        if kind == "slope" and values["end_m"] <= values["start_m"]:
            raise TerrainError(f"{fw} (slope): end_m must be greater than start_m")
        checked.append((kind, values))

    step_at = sorted({v["at_m"] for k, v in checked if k == "step"})
    grid = np.arange(start, end + res / 2, res)
    grid = np.setdiff1d(grid, step_at)
    x = np.sort(np.concatenate([grid, step_at, step_at]))
    # the second copy of each step position takes the elevation after the step
    after = np.zeros(len(x), dtype=bool)
    after[1:] = x[1:] == x[:-1]
    z = np.full(len(x), base)
    for n, (kind, v) in enumerate(checked):
        if kind == "slope":
            z += v["rise_m"] * np.clip((x - v["start_m"]) / (v["end_m"] - v["start_m"]), 0.0, 1.0)
        elif kind == "step":
            z += np.where((x > v["at_m"]) | ((x == v["at_m"]) & after), v["change_m"], 0.0)
        elif kind == "crater":
            z += _crater(x - v["center_m"], v["radius_m"], v["depth_m"], v.get("rim_height_m", 0.0))
        elif kind == "roughness":
            z += _roughness(x, v["amplitude_m"], v["wavelength_m"], int(v.get("seed", 0)) + 7919 * seed + n)
    return Terrain(x, z, source="synthetic")


def _crater(d: np.ndarray, radius: float, depth: float, rim: float) -> np.ndarray:
    """Floor at -depth, walls rising as (d/R)^4 to the rim at +rim, rim decaying outside."""
    r = np.abs(d) / radius
    inside = -depth + (depth + rim) * r**4
    outside = rim * np.exp(-(r - 1.0) / 0.3)
    return np.where(r <= 1.0, inside, outside)


def _roughness(x: np.ndarray, amplitude: float, wavelength: float, seed: int) -> np.ndarray:
    """Eight sines from wavelength to wavelength/8 with amplitudes ~ 1/k and random phases."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, 9)
    amps = 1.0 / k
    amps *= amplitude * np.sqrt(2.0) / np.sqrt(np.sum(amps**2))  # rms = amplitude
    phases = rng.uniform(0.0, 2.0 * np.pi, len(k))
    out = np.zeros_like(x)
    for kk, a, p in zip(k, amps, phases):
        out += a * np.sin(2.0 * np.pi * kk * x / wavelength + p)
    return out


def build(spec: Mapping[str, Any], seed: int = 0, base_dir: Path | None = None, where: str = "[terrain]") -> Terrain:
    """A terrain from a scenario's [terrain] table: `file = "x.csv"` or synthetic keys."""
    if "file" in spec:
        if set(spec) != {"file"}:
            raise TerrainError(f"{where}: file = ... takes no other keys")
        path = Path(spec["file"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return from_csv(path)
    return synthetic(spec, seed, where)


def flat(elevation_m: float = 0.0) -> Terrain:
    return Terrain(np.array([-1e7, 1e7]), np.array([elevation_m, elevation_m]), source="flat")


def profile(rows: Iterable[tuple[float, float]], source: str = "rows") -> Terrain:
    xs, zs = zip(*rows)
    return Terrain(np.array(xs, dtype=float), np.array(zs, dtype=float), source=source)
