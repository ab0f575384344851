"""Dispersions: what varies from run to run of a campaign, declared in the scenario's TOML.

A `[dispersions]` table maps a dotted path into the scenario document to a distribution:

    [dispersions]
    "terrain.features.0.change_m" = { normal = [-5000.0, 500.0], clip = [-6500.0, -3500.0] }
    "faults.2.kind" = { choice = ["stuck", "dead"], weights = [0.7, 0.3] }
    initial.altitude_m = { uniform = [19000.0, 21000.0] }    # bare dotted keys work too

A draw is written into the raw TOML document, and the result is checked by the scenario schema
like any hand-written file. The mechanism knows nothing of the scenario's fields, so it keeps
working when the format gains some (a path into a table that does not exist yet creates it; the
schema then says whether the key is known). Array elements are addressed by index and must
exist. Run i's values come from (campaign seed, i, path) alone: the same in any worker, in any
order, whatever the other entries of the table.

Pure: no I/O beyond the scenario loader; every problem is a ScenarioError naming the file and
the dispersion's key.
"""

from __future__ import annotations

import copy
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flight.tomlio import read_toml
from ground.scenarios.schema import HERE, Scenario, ScenarioError, parse, resolve

KINDS = ("normal", "uniform", "choice")
OPTIONS = {"normal": {"clip"}, "uniform": set(), "choice": {"weights"}}


def _finite(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(frozen=True)
class Distribution:
    """One entry of [dispersions]: `kind` with its parameters.

    >>> d = Distribution.parse({"normal": [10.0, 2.0], "clip": [9.0, 11.0]}, "x")
    >>> rng = np.random.default_rng(1)
    >>> all(9.0 <= d.draw(rng) <= 11.0 for _ in range(100))
    True
    >>> Distribution.parse({"uniform": [2.0, 1.0]}, "f.toml: [dispersions] 'x'")
    Traceback (most recent call last):
    ...
    ground.scenarios.schema.ScenarioError: f.toml: [dispersions] 'x': uniform = [lo, hi] needs lo < hi, got [2.0, 1.0]
    """

    kind: str
    params: tuple[Any, ...]
    clip: tuple[float, float] | None = None
    weights: tuple[float, ...] | None = None

    @staticmethod
    def parse(table: Any, where: str) -> Distribution:
        if not isinstance(table, dict):
            raise ScenarioError(f"{where}: must be a table such as {{ normal = [mean, sigma] }}, "
                                f"{{ uniform = [lo, hi] }} or {{ choice = [a, b], weights = [wa, wb] }}")
        kinds = [k for k in KINDS if k in table]
        if len(kinds) != 1:
            raise ScenarioError(f"{where}: name exactly one distribution of {', '.join(KINDS)}; got "
                                f"{', '.join(sorted(table)) or 'none'}")
        kind = kinds[0]
        unknown = set(table) - {kind} - OPTIONS[kind]
        if unknown:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for {kind}; "
                                f"known: {', '.join(sorted(OPTIONS[kind])) or 'none'}")
        raw = table[kind]
        if kind == "choice":
            if not isinstance(raw, list) or not raw:
                raise ScenarioError(f"{where}: choice = [...] needs a non-empty array of values")
            weights = table.get("weights")
            if weights is not None:
                if not isinstance(weights, list) or len(weights) != len(raw) or not all(map(_finite, weights)) \
                        or any(w < 0 for w in weights) or sum(weights) <= 0:
                    raise ScenarioError(f"{where}: weights must be {len(raw)} numbers >= 0 with a positive sum, "
                                        f"got {weights!r}")
                total = float(sum(weights))
                weights = tuple(float(w) / total for w in weights)
            return Distribution(kind, tuple(raw), weights=weights)
        if not isinstance(raw, list) or len(raw) != 2 or not all(map(_finite, raw)):
            shape = "[mean, sigma]" if kind == "normal" else "[lo, hi]"
            raise ScenarioError(f"{where}: {kind} = {shape} needs two finite numbers, got {raw!r}")
        a, b = float(raw[0]), float(raw[1])
        if kind == "uniform" and not a < b:
            raise ScenarioError(f"{where}: uniform = [lo, hi] needs lo < hi, got {raw!r}")
        if kind == "normal" and not b > 0:
            raise ScenarioError(f"{where}: normal = [mean, sigma] needs sigma > 0, got {raw!r}")
        clip = table.get("clip")
        if clip is not None:
            if not isinstance(clip, list) or len(clip) != 2 or not all(map(_finite, clip)) or not clip[0] < clip[1]:
                raise ScenarioError(f"{where}: clip = [lo, hi] needs two finite numbers with lo < hi, got {clip!r}")
            clip = (float(clip[0]), float(clip[1]))
        return Distribution(kind, (a, b), clip=clip)

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "normal":
            x = float(rng.normal(self.params[0], self.params[1]))
            return float(np.clip(x, *self.clip)) if self.clip else x
        if self.kind == "uniform":
            return float(rng.uniform(self.params[0], self.params[1]))
        i = int(rng.choice(len(self.params), p=self.weights))
        return copy.deepcopy(self.params[i])

    def extremes(self) -> list[Any]:
        """Values worth checking against the schema before any run: every choice, the ends of
        a range (a clip's or ±4 sigma)."""
        if self.kind == "choice":
            return list(self.params)
        if self.kind == "uniform":
            return list(self.params)
        if self.clip:
            return [self.clip[0], self.params[0], self.clip[1]]
        mean, sigma = self.params
        return [mean - 4 * sigma, mean, mean + 4 * sigma]

    def describe(self) -> str:
        """Short text for reports: `normal(-5000, 500) clip [-6500, -3500]`."""
        if self.kind == "choice":
            text = f"choice({', '.join(map(_short, self.params))})"
            if self.weights:
                text += f" weights ({', '.join(f'{w:.2g}' for w in self.weights)})"
            return text
        text = f"{self.kind}({_g(self.params[0])}, {_g(self.params[1])})"
        return text + (f" clip [{_g(self.clip[0])}, {_g(self.clip[1])}]" if self.clip else "")


def _g(x: float) -> str:
    return f"{x:.6g}"


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_short(x)}" for k, x in v.items()) + "}"
    return repr(v) if isinstance(v, str) else str(v)


def flatten(table: Any, where: str) -> dict[str, Any]:
    """[dispersions] -> {dotted path: distribution table}, whether the keys were written quoted
    ("a.b" = {...}) or bare (a.b = {...}, which TOML nests)."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{where} must be a table of  path = {{ distribution }}")
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value and not any(k in value for k in KINDS) \
                and all(isinstance(v, dict) for v in value.values()):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        else:
            out[prefix] = value

    for key, value in table.items():
        walk(key, value)
    return out


def set_path(doc: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Write `value` at `path` (dotted; integers index arrays) in `doc`, in place. Missing
    tables on the way are created; missing array elements are an error."""
    parts = path.split(".")
    if not path or any(p == "" for p in parts):
        raise ScenarioError(f"{where}: not a dotted path")
    node: Any = doc
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[:depth]) or "the document"
        if isinstance(node, dict):
            if last:
                node[part] = value
                return
            if part not in node:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(f"{where}: {here} is an array of {len(node)}; "
                                    f"{part!r} is not an index into it (0..{len(node) - 1})")
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        else:
            raise ScenarioError(f"{where}: {here} is a value ({node!r}), not a table or an array")


@dataclass(frozen=True)
class DispersedScenario:
    """A scenario document with its dispersions checked: `document(values)` gives run i's."""

    name: str
    source: str
    base_dir: Path
    raw: dict[str, Any]  # the file as read, [dispersions] included (it is what a campaign stores)
    dispersions: dict[str, Distribution]

    def draw(self, campaign_seed: int, run: int) -> dict[str, Any]:
        """Run `run`'s values: {path: value}, from (campaign seed, run, path) alone."""
        return {path: dist.draw(rng_for(campaign_seed, run, path)) for path, dist in self.dispersions.items()}

    def document(self, values: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy({k: v for k, v in self.raw.items() if k != "dispersions"})
        for path, value in values.items():
            set_path(doc, path, value, f"{self.source}: [dispersions] {path!r}")
        return doc

    def scenario(self, values: dict[str, Any]) -> Scenario:
        return parse(self.document(values), self.source, self.base_dir)


def rng_for(campaign_seed: int, run: int, path: str) -> np.random.Generator:
    """The generator of one dispersion of one run. The path's CRC keeps entries independent:
    adding an entry to [dispersions] leaves the others' draws as they were."""
    return np.random.default_rng(np.random.SeedSequence(campaign_seed, spawn_key=(run, zlib.crc32(path.encode()))))


def simulation_seed(campaign_seed: int, run: int) -> int:
    """Run `run`'s noise seed for the simulator: from (campaign seed, run) alone, the same for
    every scenario and estimator (same seeds, side by side)."""
    return int(np.random.SeedSequence(campaign_seed, spawn_key=(run,)).generate_state(1, np.uint32)[0])


def from_document(raw: dict[str, Any], source: str, base_dir: Path = HERE) -> DispersedScenario:
    """Check a scenario document and its [dispersions] (each path with each distribution's
    extreme values through the schema) before any run."""
    base = parse({k: v for k, v in raw.items() if k != "dispersions"}, source, base_dir)
    table = flatten(raw.get("dispersions", {}), f"{source}: [dispersions]")
    dispersions: dict[str, Distribution] = {}
    for path, spec in table.items():
        where = f"{source}: [dispersions] {path!r}"
        dist = Distribution.parse(spec, where)
        if path.split(".")[0] in ("name", "dispersions"):
            raise ScenarioError(f"{where}: {path.split('.')[0]} cannot be dispersed")
        for value in dist.extremes():
            doc = copy.deepcopy({k: v for k, v in raw.items() if k != "dispersions"})
            set_path(doc, path, value, where)
            try:
                parse(doc, source, base_dir)
            except ScenarioError as exc:
                raise ScenarioError(f"{where} = {_short(value)} makes the scenario invalid: {exc}") from None
        dispersions[path] = dist
    return DispersedScenario(base.name, source, base_dir, raw, dispersions)


def load(name_or_path: str | Path) -> DispersedScenario:
    """A built-in scenario by name, or a file, with its dispersions checked."""
    path = resolve(name_or_path)
    raw = read_toml(path, ScenarioError, "scenario file")
    return from_document(raw, str(path), path.parent)
