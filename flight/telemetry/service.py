"""The telemetry service: events (throttled, never silent), housekeeping, and the command
path (gate -> verification -> dispatch). Everything sent is also appended to the flight log.
"""

from __future__ import annotations

from collections.abc import Callable

from flight.telemetry.commands import CommandGate, Rejection, Telecommand
from flight.telemetry.flightlog import FlightLogWriter
from flight.telemetry.packets import (
    ACCEPTANCE_FAILURE,
    ACCEPTANCE_SUCCESS,
    COMPLETION_FAILURE,
    COMPLETION_SUCCESS,
    TelemetryEncoder,
)


class Downlink:
    """Where packets go: the link (if any) and the flight log (if any)."""

    def __init__(self, link=None, log: FlightLogWriter | None = None) -> None:
        self.link = link
        self.log = log
        self.packets = 0

    def __call__(self, packet: bytes) -> None:
        self.packets += 1
        if self.link is not None:
            self.link.send(packet)
        if self.log is not None:
            self.log.append(packet)


class EventService:
    """At most `max_per_window` packets per event name per window; the rest are counted and
    reported with one EVENTS_SUPPRESSED event when the window rolls over."""

    def __init__(self, encoder: TelemetryEncoder, downlink: Callable[[bytes], None],
                 time_s: Callable[[], float], max_per_window: int = 5, window_s: float = 1.0) -> None:
        self.encoder = encoder
        self.downlink = downlink
        self.time_s = time_s
        self.max_per_window = max_per_window
        self.window_s = window_s
        self.counts: dict[str, int] = {}
        self.listeners: list[Callable[[float, str, tuple[float, ...]], None]] = []  # every event, unthrottled
        self._window_start = -float("inf")
        self._in_window: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}

    def emit(self, name: str, *args: float) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        now = self.time_s()
        for listener in self.listeners:
            listener(now, name, args)
        if now - self._window_start >= self.window_s:
            self._roll_window(now)
        n = self._in_window.get(name, 0)
        if n >= self.max_per_window:
            self._suppressed[name] = self._suppressed.get(name, 0) + 1
            return
        self._in_window[name] = n + 1
        self.downlink(self.encoder.event(now, name, *args))

    def _roll_window(self, now: float) -> None:
        for name, count in self._suppressed.items():
            self.downlink(self.encoder.event(now, "EVENTS_SUPPRESSED", self.encoder.d.events[name].id, count))
        self._suppressed.clear()
        self._in_window.clear()
        self._window_start = now


class CommandService:
    """Drains the link's uplink, checks each packet, verifies and dispatches."""

    def __init__(self, gate: CommandGate, handlers: dict[str, Callable[..., str | None]],
                 encoder: TelemetryEncoder, downlink: Callable[[bytes], None], events, time_s: Callable[[], float],
                 receive: Callable[[], list[bytes]]) -> None:
        self.gate = gate
        self.handlers = handlers
        self.encoder = encoder
        self.downlink = downlink
        self.events = events
        self.time_s = time_s
        self.receive = receive
        self.executed: list[str] = []

    def run(self, _deadline_ns: int) -> None:
        for raw in self.receive():
            self.handle(raw)

    def handle(self, raw: bytes) -> Telecommand | Rejection:
        now = self.time_s()
        result = self.gate.check(raw)
        if isinstance(result, Rejection):
            self.downlink(self.encoder.verification(now, ACCEPTANCE_FAILURE, result.request_id, result.code))
            self.events.emit("COMMAND_REJECTED", result.code, self.gate.rejected)
            return result
        self.downlink(self.encoder.verification(now, ACCEPTANCE_SUCCESS, result.request_id))
        handler = self.handlers.get(result.name)
        reason = handler(*result.args) if handler else f"no handler for {result.name}"
        if reason is None:
            self.executed.append(result.name)
            self.downlink(self.encoder.verification(now, COMPLETION_SUCCESS, result.request_id))
            return result
        code = self.encoder.d.rejections["bad_argument" if result.name == "SET_PARAM" else "out_of_phase"]
        self.gate.rejected += 1
        self.downlink(self.encoder.verification(now, COMPLETION_FAILURE, result.request_id, code))
        self.events.emit("COMMAND_REJECTED", code, self.gate.rejected)
        return Rejection(code, reason, result.request_id)
