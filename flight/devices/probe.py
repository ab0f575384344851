"""What a driver's preflight probe returns: pass or fail, and why, in one line for the operator.

`probe()` on every real driver blocks for a bounded time (it is called by preflight, before
the executive runs, never from a flight task) and never raises: a dead, absent or lying
device is a failed result with its reason.
"""

from __future__ import annotations

from typing import NamedTuple


class ProbeResult(NamedTuple):
    ok: bool
    reason: str
