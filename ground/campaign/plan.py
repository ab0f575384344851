"""A campaign's plan: its configuration, and the run specs it expands to.

The configuration is what decides the results (scenario documents with their dispersions,
estimators, number of runs, campaign seed, rig); how the runs are spread over workers is not
part of it. Run i of a scenario, with any estimator, is the same dispersed scenario and the
same simulation seed: estimators are compared on identical conditions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground.campaign.dispersions import DispersedScenario, from_document, simulation_seed
from ground.scenarios.schema import Scenario, ScenarioError, parse

RIGS = ("sil", "sil-process", "bench")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RunSpec:
    """Everything a runner needs to fly one run, and nothing that depends on where it flies.
    Picklable (plain data), so it travels to a pool process or a Dask worker."""

    scenario: str  # the scenario's name: part of the run's key
    estimator: str
    run: int
    sim_seed: int
    dispersion: dict[str, Any]  # path -> drawn value
    document: dict[str, Any]  # the dispersed scenario document, before the schema
    source: str  # the scenario file, for messages and relative terrain files
    base_dir: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scenario, self.estimator, self.run)

    def build_scenario(self) -> Scenario:
        return parse(self.document, f"{self.source} (run {self.run})", Path(self.base_dir))


@dataclass(frozen=True)
class Campaign:
    scenarios: tuple[DispersedScenario, ...]
    estimators: tuple[str, ...]
    runs: int
    seed: int
    rig: str = "sil"
    _by_name: dict[str, DispersedScenario] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"two scenarios named {', '.join(dupes)} in one campaign: their runs would share keys")
        if not self.scenarios or not self.estimators:
            raise ConfigError("a campaign needs at least one scenario and one estimator")
        if len(set(self.estimators)) != len(self.estimators):
            raise ConfigError(f"estimator named twice: {', '.join(self.estimators)}")
        if self.runs < 1:
            raise ConfigError(f"--runs must be >= 1, got {self.runs}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if self.rig not in RIGS:
            raise ConfigError(f"rig must be one of {', '.join(RIGS)}, got {self.rig!r}")
        self._by_name.update({s.name: s for s in self.scenarios})

    @property
    def size(self) -> int:
        return len(self.scenarios) * len(self.estimators) * self.runs

    def run_keys(self) -> list[tuple[str, str, int]]:
        """Every run's key, run-major: the first runs of every cell come first, so a partial
        campaign already compares every scenario and estimator."""
        return [(s.name, e, i) for i in range(self.runs) for s in self.scenarios for e in self.estimators]

    def spec(self, scenario: str, estimator: str, run: int) -> RunSpec:
        ds = self._by_name[scenario]
        values = ds.draw(self.seed, run)
        return RunSpec(scenario, estimator, run, simulation_seed(self.seed, run), values, ds.document(values),
                       ds.source, str(Path(ds.base_dir).resolve()))

    def to_config(self) -> dict[str, Any]:
        return {
            # base_dir absolute: a resume from another folder still finds a scenario's terrain file
            "scenarios": [{"name": s.name, "source": s.source, "base_dir": str(Path(s.base_dir).resolve()),
                           "document": s.raw} for s in self.scenarios],
            "estimators": list(self.estimators),
            "runs": self.runs,
            "seed": self.seed,
            "rig": self.rig,
        }

    @staticmethod
    def from_config(config: dict[str, Any]) -> Campaign:
        """The campaign a store holds (its scenario documents are in the store: no file needed)."""
        try:
            scenarios = tuple(from_document(s["document"], s["source"],
                                            Path(s.get("base_dir") or Path(s["source"]).parent))
                              for s in config["scenarios"])
            return Campaign(scenarios, tuple(config["estimators"]), int(config["runs"]), int(config["seed"]),
                            config.get("rig", "sil"))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"the stored configuration is incomplete: {exc}") from None
        except ScenarioError as exc:
            raise ConfigError(f"a stored scenario no longer checks: {exc}") from None


def differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between two configurations, in words; [] when they decide the same runs.
    Where a scenario file lies (source, base_dir) is not compared, only what it says."""
    out = []
    for key in ("estimators", "runs", "seed", "rig"):
        if stored.get(key) != wanted.get(key):
            out.append(f"{key}: stored {stored.get(key)!r}, now {wanted.get(key)!r}")
    a = {s["name"]: s["document"] for s in stored.get("scenarios", [])}
    b = {s["name"]: s["document"] for s in wanted.get("scenarios", [])}
    if list(a) != list(b):
        out.append(f"scenarios: stored {', '.join(a)}, now {', '.join(b)}")
    else:
        for name, doc in a.items():
            if doc != b[name]:
                changed = sorted(k for k in set(doc) | set(b[name]) if doc.get(k) != b[name].get(k))
                out.append(f"scenario {name}: its file changed ({', '.join(changed)})")
    return out
