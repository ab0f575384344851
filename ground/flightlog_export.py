"""`lander log FILE|DIR`: a flight log decoded to JSON lines or CSV, on the ground.

Every record of every file (a folder: all its log files, oldest boot first) becomes one row:
boot records, telemetry (events, housekeeping, verification, ping) decoded with the dictionary,
and accepted telecommands (name, sequence, arguments). Regions the reader had to skip are rows
too (kind "skipped"), so nothing damaged passes silently. Stdlib only.
"""

from __future__ import annotations

import csv
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from flight.telemetry.commands import HEADER as TC_HEADER
from flight.telemetry.commands import MAC_LEN
from flight.telemetry.dictionary import load
from flight.telemetry.flightlog import BOOT, BOOT_BODY, TC, TM, log_files, read_log
from flight.telemetry.packets import TelemetryError, decode_tm

KINDS = ("boot", "event", "housekeeping", "verification", "ping", "command", "skipped", "undecodable")
COLUMNS = ("file", "boot", "kind", "time_s", "name", "values")


class LogExportError(ValueError):
    pass


def _command(raw: bytes) -> dict[str, Any]:
    from spacepackets.ecss import PusTc

    d = load()
    tc = PusTc.unpack(raw)
    app = bytes(tc.app_data)
    opcode, sequence = TC_HEADER.unpack_from(app)
    cmd = d.command_by_opcode(opcode)
    args = struct.unpack(">" + cmd.args, app[TC_HEADER.size:len(app) - MAC_LEN])
    return {"kind": "command", "time_s": None, "name": cmd.name, "values": {"sequence": sequence, "args": list(args)}}


def rows(path: str | Path) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if p.is_dir():
        files = log_files(p)
        if not files:
            raise LogExportError(f"{p}: no flight log files (flight-BBBBBB-PPP.log) in this folder")
    elif p.exists():
        files = [p]
    else:
        raise LogExportError(f"{p}: no such file or folder")
    boot = None
    for f in files:
        try:
            contents = read_log(f)
        except OSError as exc:
            raise LogExportError(f"{f}: cannot read: {exc.strerror or exc}") from None
        for kind, payload in contents.records:
            row: dict[str, Any]
            try:
                if kind == BOOT:
                    boot, part, wall, version = BOOT_BODY.unpack(payload)
                    row = {"kind": "boot", "time_s": None, "name": version.rstrip(b"\0").decode(errors="replace"),
                           "values": {"boot": boot, "part": part, "wall_clock_s": wall}}
                elif kind == TM:
                    tm = decode_tm(payload)
                    row = {"kind": tm.kind, "time_s": tm.time_s, "name": tm.name,
                           "values": tm.values if isinstance(tm.values, dict) else list(tm.values)}
                elif kind == TC:
                    row = _command(payload)
                else:
                    raise TelemetryError(f"record kind {kind}")
            except Exception as exc:  # noqa: BLE001 - any record the dictionary cannot read is reported, not fatal
                row = {"kind": "undecodable", "time_s": None, "name": type(exc).__name__, "values": str(exc)}
            yield {"file": f.name, "boot": boot, **row}
        for s in contents.skipped:
            yield {"file": f.name, "boot": boot, "kind": "skipped", "time_s": None, "name": s.reason,
                   "values": {"offset": s.offset, "bytes": s.length}}


def export(path: str | Path, out: TextIO = sys.stdout, fmt: str = "jsonl", kinds: set[str] | None = None) -> int:
    """Write the rows; returns how many. CSV of housekeeping alone has one column per channel."""
    selected = (r for r in rows(path) if kinds is None or r["kind"] in kinds)
    n = 0
    if fmt == "jsonl":
        for r in selected:
            out.write(json.dumps(r, default=str) + "\n")
            n += 1
        return n
    if kinds == {"housekeeping"}:
        channels = [c.name for c in load().channels]
        w = csv.writer(out)
        w.writerow(["file", "boot", *channels])
        for r in selected:
            w.writerow([r["file"], r["boot"], *(r["values"][c] for c in channels)])
            n += 1
        return n
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for r in selected:
        w.writerow([r["file"], r["boot"], r["kind"], r["time_s"], r["name"], json.dumps(r["values"], default=str)])
        n += 1
    return n
