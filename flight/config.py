"""The flight configuration's schema: every board.toml key and every SET_PARAM target is typed
and bounded in the telemetry dictionary (`[config.*]` in flight/telemetry/dictionary.toml).

`check(doc, source)` checks a whole parsed file before anything is built: unknown sections and
keys, wrong types (a string "false" is not a bool, 2500 is a float but "2500" is not), values
out of range; every error names the file, the section, the key and what was expected.
`check_value(section, key, value)` is the same check for one value (SET_PARAM). Nothing here
changes anything: callers apply what passed.

>>> check({"run": {"auto_start": "false"}}, "board.toml")
Traceback (most recent call last):
...
flight.config.ConfigError: board.toml: [run] auto_start = 'false': expected true or false
>>> check({"fdir": {"expected_below_m": {"0": 4000, "short_range": 120}}}, "b.toml")["fdir"]
{'expected_below_m': {0: 4000.0, 1: 120.0}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER
from flight.telemetry.dictionary import raw_document

SENSOR_NAMES = {"primary": PRIMARY_ALTIMETER, "short_range": SHORT_RANGE_ALTIMETER}
TYPES = ("float", "int", "bool", "string", "enum", "map", "floats")


class ConfigError(ValueError):
    """A configuration file or value that does not fit the schema; the message says where."""


@dataclass(frozen=True)
class Field:
    type: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    length: int = 0  # floats: how many
    value: str = "float"  # map: the values' type
    doc: str = ""

    def expected(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.type == "bool":
            return "true or false"
        if self.type == "string":
            return "a string"
        if self.type == "enum":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = {"float": "a number", "int": "a whole number", "map": "a table of sensor = number",
                "floats": f"{self.length} numbers"}[self.type]
        return f"{kind} in [{self.min:g}, {self.max:g}]{unit}" if self.min is not None and self.max is not None \
            else kind + unit

    def convert(self, value: Any) -> Any:
        """The checked value (numbers as float or int), or ValueError saying what is wrong."""
        t = self.type
        if t == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if t in ("string", "enum"):
            if not isinstance(value, str) or (t == "enum" and value not in self.choices):
                raise ValueError
            return value
        if t == "map":
            if not isinstance(value, dict):
                raise ValueError
            return {_sensor(k): self._number(v, self.value) for k, v in value.items()}
        if t == "floats":
            if not isinstance(value, (list, tuple)) or len(value) != self.length:
                raise ValueError
            return tuple(self._number(v, "float") for v in value)
        return self._number(value, t)

    def _number(self, value: Any, kind: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError  # noqa: TRY004 - ValueError is this module's one "does not fit" signal
        if kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                value = int(value)
        elif not math.isfinite(value):
            raise ValueError
        else:
            value = float(value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ValueError
        return value


def _sensor(key: Any) -> int:
    """A sensor named by name ("primary") or id ("0": TOML table keys are strings)."""
    if isinstance(key, str) and key in SENSOR_NAMES:
        return SENSOR_NAMES[key]
    try:
        sensor = int(key)
    except (TypeError, ValueError):
        raise ValueError from None
    if sensor not in SENSOR_NAMES.values():
        raise ValueError
    return sensor


def _parse(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, entry in table.items():
        if isinstance(entry.get("type"), str):
            if entry["type"] not in TYPES:
                raise ValueError(f"dictionary: config key {key} has unknown type {entry['type']!r}")
            out[key] = Field(entry["type"], entry.get("unit", ""), entry.get("min"), entry.get("max"),
                             tuple(entry.get("choices", ())), entry.get("length", 0), entry.get("value", "float"),
                             entry.get("doc", ""))
        else:
            out[key] = _parse(entry)
    return out


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """section -> key -> Field, or -> a nested table of the same shape."""
    return _parse(raw_document()["config"])


def check(doc: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """The document with every value checked and converted; ConfigError at the first problem."""
    return _check_table(doc, schema(), source, "")


def _check_table(doc: Any, spec: dict[str, Any], source: str, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: [{where}] must be a table")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{where}.{key}" if where else key
        entry = spec.get(key)
        if entry is None:
            place = f"[{where}]" if where else "top level"
            raise ConfigError(f"{source}: {place}: unknown {'key' if where else 'section'} {key!r}; "
                              f"known: {', '.join(sorted(spec))}")
        if isinstance(entry, Field):
            try:
                out[key] = entry.convert(value)
            except ValueError:
                raise ConfigError(f"{source}: [{where}] {key} = {value!r}: expected {entry.expected()}") from None
        else:
            out[key] = _check_table(value, entry, source, path)
    return out


def field(section: str, key: str) -> Field:
    entry = schema().get(section, {}).get(key)
    if not isinstance(entry, Field):
        raise KeyError(f"no config key [{section}] {key}")
    return entry


def check_value(section: str, key: str, value: Any) -> Any:
    """One value against its schema entry (SET_PARAM): the converted value, or ConfigError."""
    f = field(section, key)
    try:
        return f.convert(value)
    except ValueError:
        raise ConfigError(f"[{section}] {key} = {value!r}: expected {f.expected()}") from None
