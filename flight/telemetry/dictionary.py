"""The telemetry/telecommand dictionary (dictionary.toml), loaded once.

Everything that names an APID, a channel, an event, a command or a parameter gets it from
here, on the flight computer and on the ground alike.
"""

from __future__ import annotations

import struct
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    unit: str
    description: str


@dataclass(frozen=True)
class EventDef:
    id: int
    name: str
    severity: int  # PUS [5, severity]
    args: str  # struct codes
    description: str


@dataclass(frozen=True)
class CommandDef:
    name: str
    opcode: int
    args: str


@dataclass(frozen=True)
class ParameterDef:
    """A SET_PARAM target: a key of the flight configuration ([config.<section>] <name>)."""

    section: str
    name: str


@dataclass(frozen=True)
class Dictionary:
    apids: dict[str, int]
    hk_structure_id: int
    channels: tuple[Channel, ...]
    events: dict[str, EventDef]
    commands: dict[str, CommandDef]
    parameters: tuple[ParameterDef, ...]
    rejections: dict[str, int]

    @property
    def hk_format(self) -> struct.Struct:
        return struct.Struct(">H" + "".join(c.type for c in self.channels))

    def event_by_id(self, event_id: int) -> EventDef:
        for e in self.events.values():
            if e.id == event_id:
                return e
        raise KeyError(f"no event with id {event_id}")

    def command_by_opcode(self, opcode: int) -> CommandDef:
        for c in self.commands.values():
            if c.opcode == opcode:
                return c
        raise KeyError(f"no command with opcode {opcode}")

    def rejection_name(self, code: int) -> str:
        return {v: k for k, v in self.rejections.items()}.get(code, f"code {code}")


def parse(text: str) -> Dictionary:
    raw = tomllib.loads(text)
    return _build(raw)


def _build(raw: dict) -> Dictionary:
    channels = tuple(Channel(c["name"], c["type"], c.get("unit", ""), c.get("description", "")) for c in raw["channels"])
    events = {
        e["name"]: EventDef(e["id"], e["name"], e["severity"], e.get("args", ""), e.get("description", ""))
        for e in raw["events"]
    }
    commands = {c["name"]: CommandDef(c["name"], c["opcode"], c.get("args", "")) for c in raw["commands"]}
    d = Dictionary(
        apids=dict(raw["apids"]),
        hk_structure_id=raw["housekeeping"]["structure_id"],
        channels=channels,
        events=events,
        commands=commands,
        parameters=tuple(ParameterDef(p.get("section", "guidance"), p["name"]) for p in raw.get("parameters", [])),
        rejections=dict(raw["rejections"]),
    )
    _check(d)
    return d


def _check(d: Dictionary) -> None:
    for kind, ids in (("event id", [e.id for e in d.events.values()]),
                      ("opcode", [c.opcode for c in d.commands.values()]),
                      ("channel", [c.name for c in d.channels]),
                      ("apid", list(d.apids.values()))):
        if len(set(ids)) != len(ids):
            raise ValueError(f"dictionary: duplicate {kind}")
    for e in d.events.values():
        if not 1 <= e.severity <= 4:
            raise ValueError(f"dictionary: event {e.name} severity must be 1..4")
        struct.calcsize(">" + e.args)
    d.hk_format  # noqa: B018 - raises on a bad type code


@lru_cache(maxsize=1)
def raw_document() -> dict:
    """The dictionary file as parsed TOML (the config schema is read from it: flight/config.py)."""
    return tomllib.loads(resources.files("flight.telemetry").joinpath("dictionary.toml").read_text())


@lru_cache(maxsize=1)
def load() -> Dictionary:
    raw = raw_document()
    d = _build(raw)
    for p in d.parameters:  # every SET_PARAM target is a typed, bounded number in the config schema
        entry = raw.get("config", {}).get(p.section, {}).get(p.name)
        if not isinstance(entry, dict) or entry.get("type") not in ("float", "int", "bool"):
            raise ValueError(f"dictionary: parameter {p.section}.{p.name} is not a number or bool in [config]")
    return d
