"""Preflight: probe every real device, and the record that lets the flight ARM in this boot.

`lander-flight preflight --config board.toml` runs each driver's `probe()` (identity, a valid
range from each altimeter, the IMU at rest, the engine controller's status), prints OK/FAIL per
device, and writes a record: the kernel's boot id (`/proc/sys/kernel/random/boot_id`, new at
every boot), a digest of the `[devices]` configuration that was probed, and the results. The
flight reads the record when it is asked to ARM and refuses unless the record says every device
passed, in this boot, for these devices. So a reboot, a rewired or reconfigured board, or a
failed probe all need a new preflight; nothing else stops ARM. The default record lives in
/run/lander (a tmpfs: gone at power-off anyway; the boot id also covers a path that is not).

Never raises from `check_record`: a missing, unreadable or malformed record is a refusal with
its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flight.devices.probe import ProbeResult

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
DEFAULT_RECORD = "/run/lander/preflight.json"
RECORD_VERSION = 1


def boot_id(path: str = BOOT_ID_PATH) -> str:
    """This boot's id; "" where the kernel does not give one (then no record ever matches)."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def devices_digest(devices: dict[str, Any]) -> str:
    """What was probed: the checked [devices] table, canonically serialised."""
    return hashlib.sha256(json.dumps(devices, sort_keys=True, default=str).encode()).hexdigest()


def run(probes: Iterable[tuple[str, str, Callable[[], ProbeResult]]]) -> list[tuple[str, str, ProbeResult]]:
    """(name, where, probe) -> (name, where, result), in order; a probe that raises anyway fails."""
    out = []
    for name, where, probe in probes:
        try:
            result = probe()
        except Exception as exc:  # noqa: BLE001 - probes never raise; if one does, it failed
            result = ProbeResult(False, f"probe raised {exc.__class__.__name__}: {exc}")
        out.append((name, where, result))
    return out


def format_results(results: list[tuple[str, str, ProbeResult]]) -> list[str]:
    width = max((len(n) for n, _, _ in results), default=0)
    return [f"  {'OK  ' if r.ok else 'FAIL'}  {name:<{width}}  {where}: {r.reason}" for name, where, r in results]


def write_record(path: str | Path, results: list[tuple[str, str, ProbeResult]], digest: str) -> None:
    """The record, written whole or not at all (a temporary file renamed over the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": RECORD_VERSION,
        "boot_id": boot_id(),
        "devices_sha256": digest,
        "wall_time_s": time.time(),
        "passed": bool(results) and all(r.ok for _, _, r in results),
        "results": [{"device": n, "where": w, "ok": r.ok, "reason": r.reason} for n, w, r in results],
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_record(path: str | Path, digest: str) -> str | None:
    """None when the record says every device passed in this boot for these devices; otherwise
    why ARM must be refused."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no preflight in this boot (no record {path}): run lander-flight preflight"
    except (OSError, ValueError) as exc:
        return f"preflight record {path} unreadable: {exc}"
    if not isinstance(doc, dict) or doc.get("version") != RECORD_VERSION:
        return f"preflight record {path}: not a version-{RECORD_VERSION} record"
    here = boot_id()
    if not here or doc.get("boot_id") != here:
        return "preflight passed in another boot: run lander-flight preflight again"
    if doc.get("devices_sha256") != digest:
        return "preflight probed other devices (the [devices] configuration changed): run it again"
    if doc.get("passed") is not True:
        failed = [f"{r.get('device')}: {r.get('reason')}" for r in doc.get("results", []) if not r.get("ok")]
        return "preflight failed in this boot (" + "; ".join(failed or ["no device probed"]) + ")"
    return None
