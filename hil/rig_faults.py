"""Faults the HIL rig injects that the simulator cannot: a port unplugged and plugged back,
garbage on a line, a device that stops answering or lies, the emulator process killed and
restarted. From a scenario's `[[rig_faults]]` tables or the command line (`--fault`).

    [[rig_faults]]
    kind = "unplug"          # unplug | garbage | silent | lie | emulator_restart
    device = "rangefinder"   # rangefinder | engine (unplug, garbage); also imu | lidar (silent, lie)
    start_s = 300.0          # flight time
    end_s = 300.5            # unplug, silent, lie: plugged back / cleared then (default: never)
    count = 64               # garbage: bytes of line noise
    value = 2.0              # lie: the value the device reports (m, m/s^2 for the IMU's z, contact 0/1)

Command line: `KIND[:DEVICE]@START[+DURATION][,count=N][,value=X]`, e.g.
`unplug:rangefinder@300+0.5`, `garbage:engine@200,count=64`, `emulator_restart@400`.

Pure: parsing and the schedule (which actions fall due by a time). The rig turns each action
into FAULT frames on the stream, or kills and restarts the emulator process.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from board.emulator import stream as st

KINDS = ("unplug", "garbage", "silent", "lie", "emulator_restart")
DEVICES = {"imu": st.DEV_IMU, "lidar": st.DEV_LIDAR, "rangefinder": st.DEV_RANGEFINDER, "engine": st.DEV_ENGINE}
UART_DEVICES = ("rangefinder", "engine")
# the flight's DEVICE_LINK device ids (flight/wiring.py DEVICE_IDS) for each emulated device
FLIGHT_DEVICE = {"rangefinder": 0, "lidar": 1, "imu": 2, "engine": 3}
KEYS = {"kind", "device", "start_s", "end_s", "count", "value"}


class RigFaultError(ValueError):
    """A rig fault that cannot be injected as written; the message says where and why."""


@dataclass(frozen=True)
class RigFault:
    kind: str
    device: str = ""
    start_s: float = 0.0
    end_s: float = math.inf
    count: int = 64
    value: float = 0.0

    @property
    def label(self) -> str:
        what = f"{self.kind}:{self.device}" if self.device else self.kind
        span = f"+{self.end_s - self.start_s:g}" if math.isfinite(self.end_s) else ""
        return f"{what}@{self.start_s:g}{span}"


def check(kind: Any, device: Any, start_s: Any, end_s: Any, count: Any, value: Any, where: str) -> RigFault:
    if kind not in KINDS:
        raise RigFaultError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "emulator_restart":
        if device not in ("", None):
            raise RigFaultError(f"{where}: emulator_restart takes no device")
        device = ""
    else:
        allowed = UART_DEVICES if kind in ("unplug", "garbage") else tuple(DEVICES)
        if device not in allowed:
            raise RigFaultError(f"{where} ({kind}): device must be one of {', '.join(allowed)}, got {device!r}")
    for name, v in (("start_s", start_s), ("end_s", end_s), ("value", value)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise RigFaultError(f"{where} ({kind}): {name} must be a number, got {v!r}")
    if start_s < 0 or not math.isfinite(start_s):
        raise RigFaultError(f"{where} ({kind}): start_s must be a time >= 0 s")
    if not end_s > start_s:
        raise RigFaultError(f"{where} ({kind}): end_s must be after start_s")
    if kind in ("garbage", "emulator_restart") and math.isfinite(end_s):
        raise RigFaultError(f"{where} ({kind}): happens once; it takes no end_s or duration")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 65535:
        raise RigFaultError(f"{where} ({kind}): count must be a whole number of bytes in 1..65535, got {count!r}")
    return RigFault(kind, device or "", float(start_s), float(end_s), count, float(value))


def from_table(table: Any, where: str) -> RigFault:
    if not isinstance(table, dict):
        raise RigFaultError(f"{where}: must be a table")
    unknown = set(table) - KEYS
    if unknown:
        raise RigFaultError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KEYS))}")
    return check(table.get("kind"), table.get("device", ""), table.get("start_s", 0.0), table.get("end_s", math.inf),
                 table.get("count", 64), table.get("value", 0.0), where)


_CLI = re.compile(r"^(?P<kind>[a-z_]+)(?::(?P<device>[a-z_]+))?@(?P<start>[0-9.eE+-]+?)"
                  r"(?:\+(?P<duration>[0-9.eE]+))?(?P<rest>(?:,[a-z]+=[^,]+)*)$")


def from_cli(text: str) -> RigFault:
    """`unplug:rangefinder@300+0.5`, `garbage:engine@200,count=64`, `emulator_restart@400`."""
    m = _CLI.match(text.strip())
    where = f"--fault {text!r}"
    if not m:
        raise RigFaultError(f"{where}: expected KIND[:DEVICE]@START[+DURATION][,count=N][,value=X]")
    try:
        start = float(m["start"])
        end = start + float(m["duration"]) if m["duration"] else math.inf
        extra = dict(kv.split("=", 1) for kv in m["rest"].split(",") if kv)
        count = int(extra.pop("count", "64"))
        value = float(extra.pop("value", "0"))
    except ValueError as exc:
        raise RigFaultError(f"{where}: {exc}") from None
    if extra:
        raise RigFaultError(f"{where}: unknown option(s) {', '.join(extra)}; known: count, value")
    return check(m["kind"], m["device"] or "", start, end, count, value, where)


def from_document(doc: dict[str, Any], source: str) -> list[RigFault]:
    """A scenario document's `[[rig_faults]]` (the simulator ignores them)."""
    tables = doc.get("rig_faults", [])
    if not isinstance(tables, list):
        raise RigFaultError(f"{source}: rig_faults must be an array of tables ([[rig_faults]])")
    return [from_table(t, f"{source}: [[rig_faults]] {i + 1}") for i, t in enumerate(tables)]


@dataclass(frozen=True)
class Action:
    time_s: float
    fault: RigFault
    begin: bool  # False: the end of the fault (plug back, clear)

    def frames(self) -> bytes:
        """The FAULT frames for this action (emulator_restart has none: the rig restarts it)."""
        f = self.fault
        if f.kind == "emulator_restart":
            return b""
        device = DEVICES[f.device]
        if not self.begin:
            return st.encode_fault(st.Fault(device, st.FAULT_CLEAR))
        kind = {"unplug": st.FAULT_UNPLUG, "garbage": st.FAULT_GARBAGE, "silent": st.FAULT_SILENT,
                "lie": st.FAULT_LIE}[f.kind]
        seed = int(f.start_s * 1000) & 0xFFFF  # reproducible noise, different per fault time
        return st.encode_fault(st.Fault(device, kind, f.value, f.count if f.kind == "garbage" else 0, seed))


class Schedule:
    """The actions in time order; `due(t)` hands out those at or before t, each once."""

    def __init__(self, faults: list[RigFault]) -> None:
        actions = [Action(f.start_s, f, True) for f in faults]
        actions += [Action(f.end_s, f, False) for f in faults if math.isfinite(f.end_s)]
        self.actions = sorted(actions, key=lambda a: (a.time_s, not a.begin))
        self._next = 0
        self._next_time = self.actions[0].time_s if self.actions else math.inf
        self.in_force: list[RigFault] = []  # begun and not ended, as of the last due()

    def due(self, t_s: float) -> list[Action]:
        if t_s + 1e-9 < self._next_time:  # the common case, every step: nothing
            return []
        out = []
        while self._next < len(self.actions) and self.actions[self._next].time_s <= t_s + 1e-9:
            out.append(self.actions[self._next])
            self._next += 1
        self._next_time = self.actions[self._next].time_s if self._next < len(self.actions) else math.inf
        self.in_force = self.active(t_s)
        return out

    def active(self, t_s: float) -> list[RigFault]:
        """Faults in force at t (begun, not ended): what a restarted emulator must be told again."""
        return [f for f in {a.fault for a in self.actions} if f.kind not in ("garbage", "emulator_restart")
                and f.start_s <= t_s + 1e-9 < f.end_s]
