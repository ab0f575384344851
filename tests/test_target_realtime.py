"""flight/realtime.py: real-time settings applied when permitted, and reported (issue 12 item 2).

RT-001 the [realtime] table is checked: unknown keys, wrong types and ranges are refused by name
RT-002 with the capabilities, every setting asked for is applied, and the report matches the
       process's real state (scheduler, affinity, VmLck, gc freeze count)
RT-003 without them (no CAP_SYS_NICE/CAP_IPC_LOCK, RLIMIT_RTPRIO 0, a small RLIMIT_MEMLOCK), nothing
       raises: FIFO and mlock are reported as not applied, with the reason; the rest still is
RT-004 notify_ready sends READY=1 with the report to $NOTIFY_SOCKET; without one it does nothing
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flight import realtime
from flight.realtime import RealtimeConfig, RealtimeConfigError, config_from_table

ROOT = Path(__file__).resolve().parents[1]
CAP_IPC_LOCK, CAP_SYS_NICE = 14, 23
PR_CAPBSET_DROP = 24

PROBE = r"""
import gc, json, os, sys
from flight import realtime
cfg = realtime.config_from_table(json.loads(sys.argv[1]))
r = realtime.apply(cfg)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"report": [r.affinity, r.fifo, r.memory_locked, r.gc_frozen], "flags": r.flags,
                  "requested": r.requested, "notes": list(r.notes), "summary": r.summary(),
                  "policy": os.sched_getscheduler(0), "priority": os.sched_getparam(0).sched_priority,
                  "cpus": sorted(os.sched_getaffinity(0)), "vmlck_kb": int(status["VmLck"].split()[0]),
                  "frozen": gc.get_freeze_count()}))
"""


def _caps() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _probe(table: dict, preexec=None) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(table)], capture_output=True, text=True,
                         cwd=ROOT, preexec_fn=preexec, check=True, timeout=60).stdout
    return json.loads(out)


def test_rt001_table_is_checked():
    assert config_from_table({}) == RealtimeConfig()
    assert config_from_table({"cpu": 3, "fifo_priority": 50, "lock_memory": True, "freeze_gc": True}) == \
        RealtimeConfig(3, 50, True, True)
    for bad, word in [({"cpus": 3}, "unknown key"), ({"cpu": True}, "cpu"), ({"cpu": "3"}, "cpu"),
                      ({"cpu": -1}, "cpu"), ({"fifo_priority": 0}, "fifo_priority"),
                      ({"fifo_priority": 100}, "fifo_priority"), ({"lock_memory": 1}, "lock_memory"),
                      ([], "table")]:
        with pytest.raises(RealtimeConfigError, match=word):
            config_from_table(bad)


def test_rt002_applied_when_permitted_and_report_matches_the_process():
    cpu = max(os.sched_getaffinity(0))
    got = _probe({"cpu": cpu, "fifo_priority": 10, "lock_memory": True, "freeze_gc": True})
    affinity, fifo, locked, frozen = got["report"]
    assert got["requested"] == 0b1111
    # the report says what the process really has
    assert affinity == (got["cpus"] == [cpu]) and affinity
    assert fifo == (got["policy"] == os.SCHED_FIFO and got["priority"] == 10)
    assert locked == (got["vmlck_kb"] > 0)
    assert frozen and got["frozen"] > 0
    caps = _caps()
    memlock_unlimited = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] == resource.RLIM_INFINITY
    # what the kernel must grant with these capabilities
    assert fifo == bool(caps & (1 << CAP_SYS_NICE) or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 10)
    if caps & (1 << CAP_IPC_LOCK) or memlock_unlimited:
        assert locked
    assert got["flags"] == (1 | (2 if fifo else 0) | (4 if locked else 0) | 8)


def _unprivileged():
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
    if os.geteuid() == 0:  # root keeps only the capabilities left in its bounding set at exec
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_SYS_NICE, CAP_IPC_LOCK):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_rt003_refused_settings_are_reported_not_raised():
    cpu = max(os.sched_getaffinity(0))
    got = _probe({"cpu": cpu, "fifo_priority": 10, "lock_memory": True, "freeze_gc": True}, _unprivileged)
    affinity, fifo, locked, frozen = got["report"]
    assert (affinity, fifo, locked, frozen) == (True, False, False, True)
    assert got["policy"] == os.SCHED_OTHER and got["vmlck_kb"] == 0
    assert got["flags"] == 0b1001 and got["requested"] == 0b1111
    notes = " ".join(got["notes"])
    assert "SCHED_FIFO 10: not permitted" in notes and "mlockall" in notes and "LimitMEMLOCK" in notes
    assert got["summary"].startswith("realtime: affinity yes, fifo NO, mlock NO, gc-freeze yes")


def test_rt003_a_cpu_that_does_not_exist_is_reported():
    got = _probe({"cpu": 4096})
    assert got["report"][0] is False and "cpu 4096" in got["notes"][0]


def test_rt004_notify_ready(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        report = realtime.RealtimeReport(affinity=True, requested=1)
        assert realtime.notify_ready(report, path)
        message = server.recv(4096).decode()
    assert message == "READY=1\nSTATUS=realtime: affinity yes"
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert realtime.notify_ready(report) is False
