"""Load and check a scenario file. Every problem is a ScenarioError naming the file and key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flight.estimation.terrain_map import TerrainMap, TerrainMapError
from flight.tomlio import check_table, read_toml
from ground.sim import faults as fault_mod
from ground.sim import terrain as terrain_mod
from ground.sim.moon import circular_speed_mps
from ground.sim.sensors import ImuSpec, RangefinderSpec
from ground.sim.terrain import Terrain, TerrainError
from ground.sim.vehicle import Vehicle, VehicleError

HERE = Path(__file__).resolve().parent
REQUIRED = object()


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Initial:
    altitude_m: float
    horizontal_speed_mps: float
    vertical_speed_mps: float = 0.0
    downrange_m: float = 0.0


@dataclass(frozen=True)
class Navigation:
    """What the flight software is told at descent start, and how wrong it may be (1-sigma)."""

    altitude_sigma_m: float = 200.0  # orbit determination
    vertical_speed_sigma_mps: float = 0.3
    horizontal_speed_sigma_mps: float = 0.1
    terrain_prior_m: float | None = None  # the onboard map's elevation at start; None: the true one
    terrain_prior_sigma_m: float = 300.0
    downrange_sigma_m: float = 100.0  # orbit determination along the track
    attitude_sigma_rad: float = 1.0e-4  # the star tracker's hand-over (20 arcsec)
    terrain_map: str | None = None  # an onboard map (CSV downrange_m,elevation_m,sigma_m), relative to the scenario


@dataclass(frozen=True)
class Site:
    """Where to land, along the ground track, in the landing-site datum (elevation 0 there)."""

    downrange_m: float


@dataclass(frozen=True)
class Criteria:
    max_vertical_speed_mps: float = 2.0
    max_horizontal_speed_mps: float = 1.0
    time_limit_s: float = 3000.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    vehicle: Vehicle
    initial: Initial
    navigation: Navigation
    terrain_spec: dict[str, Any]
    primary: RangefinderSpec
    short_range: RangefinderSpec
    imu: ImuSpec
    faults: tuple[dict[str, Any], ...]
    criteria: Criteria
    flight: dict[str, Any] = field(default_factory=dict)
    site: Site | None = None
    source: str = ""
    base_dir: Path = HERE

    def terrain(self, seed: int = 0) -> Terrain:
        try:
            return terrain_mod.build(self.terrain_spec, seed, self.base_dir, where=f"{self.source}: [terrain]")
        except TerrainError as exc:
            raise ScenarioError(str(exc)) from None

    def make_faults(self) -> list[fault_mod.Fault]:
        """Fresh fault objects (they keep state, e.g. a stuck value) for one run."""
        return [fault_mod.parse(f, f"{self.source}: [[faults]] {i + 1}") for i, f in enumerate(self.faults)]


# the built-in vehicle's primary is canted 0.2 rad back from the thrust axis (Apollo tilted its
# landing radar for the braking): near vertical in the approach, half as far ahead in the braking
PRIMARY_DEFAULTS = {"cant_rad": -0.2}
SHORT_RANGE_DEFAULTS = {"cant_rad": 0.0, "rate_hz": 50.0, "max_range_m": 180.0, "min_range_m": 0.1, "sigma_m": 0.05, "sigma_per_m": 0.005,
                            "divergence_rad": 0.0035, "mixed_return_probability": 0.5}  # TF03 class

TOP = {"name", "description", "vehicle", "initial", "navigation", "terrain", "sensors", "faults", "criteria",
       "flight", "site", "dispersions", "rig_faults"}  # dispersions: what a campaign varies (ground/campaign/);
# rig_faults: what the HIL rig injects (hil/rig_faults.py); a SIL run ignores both


def builtin_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """The file of a built-in scenario name, or the path given."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        builtin = HERE / f"{name_or_path}.toml"
        if not builtin.exists():
            raise ScenarioError(f"no scenario {str(name_or_path)!r}; built-in: {', '.join(builtin_names())} "
                                "(or give a path to a .toml file)")
        path = builtin
    return path


def load(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    path = resolve(name_or_path)
    doc = read_toml(path, ScenarioError, "scenario file")
    return parse(doc, str(path), path.parent)


def _check_keys(table: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    return check_table(table, where, allowed, ScenarioError)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _dataclass(cls, table: Any, where: str, base: dict[str, Any] | None = None, special: dict | None = None):
    """Build a frozen dataclass from a table: known keys only, numbers checked."""
    names = {f.name for f in dataclasses.fields(cls)}
    table = _check_keys(table if table is not None else {}, where, names)
    values: dict[str, Any] = dict(base or {})
    for key, raw in table.items():
        if special and key in special:
            values[key] = special[key](raw, f"{where} {key}")
        elif key == "name":
            if not isinstance(raw, str):
                raise ScenarioError(f"{where} name must be a string")
            values[key] = raw
        else:
            values[key] = _number(raw, f"{where} {key}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in values]
    if missing:
        raise ScenarioError(f"{where}: missing {', '.join(missing)}")
    return cls(**values)


def _speed(raw: Any, where: str) -> Any:
    if raw == "circular":
        return raw
    return _number(raw, where)


def parse(doc: dict[str, Any], source: str = "<scenario>", base_dir: Path = HERE) -> Scenario:
    _check_keys(doc, source, TOP)
    for key in ("name",):
        if key not in doc:
            raise ScenarioError(f"{source}: missing {key}")
    if not isinstance(doc["name"], str) or not doc["name"]:
        raise ScenarioError(f"{source}: name must be a non-empty string")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{source}: description must be a string")
    try:
        vehicle = _dataclass(Vehicle, doc.get("vehicle"), f"{source}: [vehicle]")
    except VehicleError as exc:
        raise ScenarioError(f"{source}: [vehicle]: {exc}") from None
    if "initial" not in doc:
        raise ScenarioError(f"{source}: missing [initial] (altitude_m, horizontal_speed_mps)")
    initial = _dataclass(Initial, doc["initial"], f"{source}: [initial]", special={"horizontal_speed_mps": _speed})
    if initial.horizontal_speed_mps == "circular":
        initial = dataclasses.replace(initial, horizontal_speed_mps=circular_speed_mps(initial.altitude_m))
    if initial.altitude_m <= 0:
        raise ScenarioError(f"{source}: [initial] altitude_m must be above the datum")
    navigation = _dataclass(Navigation, doc.get("navigation"), f"{source}: [navigation]")
    for f in dataclasses.fields(Navigation):
        v = getattr(navigation, f.name)
        positive = f.name in ("altitude_sigma_m", "terrain_prior_sigma_m")
        if f.name.endswith(("sigma_m", "sigma_mps", "sigma_rad")) and (v < 0 or (positive and v <= 0)):
            raise ScenarioError(f"{source}: [navigation] {f.name} must be {'> 0' if positive else '>= 0'}")
    if navigation.terrain_map is not None:
        if not isinstance(navigation.terrain_map, str):
            raise ScenarioError(f"{source}: [navigation] terrain_map must be a file name")
        path = (base_dir / navigation.terrain_map).resolve()
        try:
            TerrainMap.from_csv(str(path))
        except TerrainMapError as exc:
            raise ScenarioError(f"{source}: [navigation] terrain_map: {exc}") from None
        navigation = dataclasses.replace(navigation, terrain_map=str(path))
    terrain = doc.get("terrain", {})
    if not isinstance(terrain, dict):
        raise ScenarioError(f"{source}: [terrain] must be a table")
    sensors = _check_keys(doc.get("sensors", {}), f"{source}: [sensors]", {"primary", "short_range", "imu"})
    primary = _dataclass(RangefinderSpec, sensors.get("primary"), f"{source}: [sensors.primary]", base=PRIMARY_DEFAULTS)
    short = _dataclass(RangefinderSpec, sensors.get("short_range"), f"{source}: [sensors.short_range]",
                       base=SHORT_RANGE_DEFAULTS)
    imu = _dataclass(ImuSpec, sensors.get("imu"), f"{source}: [sensors.imu]")
    for label, spec in (("primary", primary), ("short_range", short)):
        if spec.rate_hz <= 0 or spec.rate_hz > 100 or spec.max_range_m <= spec.min_range_m or spec.sigma_m <= 0 \
                or spec.resolution_m <= 0 or not 0 <= spec.dropout_probability <= 1 \
                or not 0 <= spec.mixed_return_probability <= 1 or spec.divergence_rad < 0:
            raise ScenarioError(f"{source}: [sensors.{label}]: need 0 < rate_hz <= 100, max_range_m > min_range_m, "
                                "sigma_m > 0, resolution_m > 0, probabilities in [0, 1], divergence_rad >= 0")
    if imu.noise_density_mps2_per_rthz < 0 or imu.bias_sigma_mps2 < 0 or imu.saturation_g <= 0 or imu.lsb_per_g <= 0:
        raise ScenarioError(f"{source}: [sensors.imu]: noise and bias must be >= 0, saturation and lsb_per_g > 0")
    faults = doc.get("faults", [])
    if not isinstance(faults, list):
        raise ScenarioError(f"{source}: faults must be an array of tables ([[faults]])")
    criteria = _dataclass(Criteria, doc.get("criteria"), f"{source}: [criteria]")
    flight = doc.get("flight", {})
    if not isinstance(flight, dict):
        raise ScenarioError(f"{source}: [flight] must be a table")
    if not isinstance(doc.get("dispersions", {}), dict):
        raise ScenarioError(f"{source}: [dispersions] must be a table")
    site = _dataclass(Site, doc["site"], f"{source}: [site]") if "site" in doc else None
    scenario = Scenario(doc["name"], description, vehicle, initial, navigation, terrain, primary, short, imu,
                        tuple(faults), criteria, flight, site, source, base_dir)
    try:
        scenario.make_faults()
    except fault_mod.FaultError as exc:
        raise ScenarioError(str(exc)) from None
    scenario.terrain(0)  # a bad terrain is an error now, not mid-campaign
    return scenario
