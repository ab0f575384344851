"""The telemetry service: events (throttled, never silent), the downlink (link + log), and the
command path (gate -> verification -> dispatch).

Nothing here raises into the executive: a link or log failure, an encoder error, a handler
that raises, are caught, counted (housekeeping channels) and reported once in a while, and the
flight goes on. Unauthenticated traffic cannot fill the downlink or the log: at most
`max_packets` are taken per run, rejections are reported at most `reports_per_s` per second
(the rest counted), and only accepted commands are logged.
"""

from __future__ import annotations

from collections.abc import Callable

from flight.telemetry.commands import CommandGate, Rejection, Telecommand
from flight.telemetry.flightlog import TC, TM, FlightLog
from flight.telemetry.packets import (
    ACCEPTANCE_FAILURE,
    ACCEPTANCE_SUCCESS,
    COMPLETION_FAILURE,
    COMPLETION_SUCCESS,
    TelemetryEncoder,
)


class Downlink:
    """Where packets go: the link (if any) and the flight log (if any). Never raises."""

    def __init__(self, link=None, log: FlightLog | None = None) -> None:
        self.link = link
        self.log = log
        self.packets = 0
        self.link_errors = 0

    def __call__(self, packet: bytes) -> None:
        self.packets += 1
        if self.link is not None:
            try:
                self.link.send(packet)
            except Exception:  # noqa: BLE001 - a link that raises is counted, not fatal
                self.link_errors += 1
        if self.log is not None:
            self.log.append(TM, packet)

    def record_command(self, raw: bytes) -> None:
        if self.log is not None:
            self.log.append(TC, raw)


class EventService:
    """At most `max_per_window` packets per event name per window of flight time; the rest are
    counted and reported with one EVENTS_SUPPRESSED per name when the window rolls over (at the
    next event, or at the latest at the next `tick`). Never raises: an event that cannot be
    encoded or sent is counted in `failed`."""

    def __init__(self, encoder: TelemetryEncoder, downlink: Callable[[bytes], None],
                 time_s: Callable[[], float], max_per_window: int = 5, window_s: float = 1.0) -> None:
        self.encoder = encoder
        self.downlink = downlink
        self.time_s = time_s
        self.max_per_window = max_per_window
        self.window_s = window_s
        self.counts: dict[str, int] = {}
        self.listeners: list[Callable[[float, str, tuple[float, ...]], None]] = []  # every event, unthrottled
        self.suppressed_total = 0
        self.failed = 0
        self._window_start = -float("inf")
        self._in_window: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}

    def emit(self, name: str, *args: float) -> None:
        try:
            self._emit(name, args)
        except Exception:  # noqa: BLE001 - an unknown name, a bad argument, a listener: counted
            self.failed += 1

    def _emit(self, name: str, args: tuple[float, ...]) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        now = self.time_s()
        for listener in self.listeners:
            listener(now, name, args)
        if now - self._window_start >= self.window_s:
            self._roll_window(now)
        n = self._in_window.get(name, 0)
        if n >= self.max_per_window:
            self._suppressed[name] = self._suppressed.get(name, 0) + 1
            self.suppressed_total += 1
            return
        self._in_window[name] = n + 1
        self.downlink(self.encoder.event(now, name, *args))

    def tick(self) -> None:
        """Roll the window if it is over, so suppressed counts are reported even when no new
        event comes (called by the housekeeping task)."""
        try:
            now = self.time_s()
            if now - self._window_start >= self.window_s:
                self._roll_window(now)
        except Exception:  # noqa: BLE001
            self.failed += 1

    def _roll_window(self, now: float) -> None:
        suppressed, self._suppressed = self._suppressed, {}
        self._in_window.clear()
        self._window_start = now
        for name, count in suppressed.items():
            self.downlink(self.encoder.event(now, "EVENTS_SUPPRESSED", self.encoder.d.events[name].id, count))


class CommandService:
    """Drains the link's uplink, checks each packet, verifies and dispatches."""

    def __init__(self, gate: CommandGate, handlers: dict[str, Callable[..., str | None]],
                 encoder: TelemetryEncoder, downlink: Downlink, events, time_s: Callable[[], float],
                 receive: Callable[[], list[bytes]], max_packets: int = 16, reports_per_s: float = 10.0) -> None:
        self.gate = gate
        self.handlers = handlers
        self.encoder = encoder
        self.downlink = downlink
        self.events = events
        self.time_s = time_s
        self.receive = receive
        self.max_packets = max_packets
        self.reports_per_s = reports_per_s
        self.executed: list[str] = []
        self.unreported = 0  # rejections over the report budget: counted only
        self.dropped = 0  # packets beyond max_packets in one run
        self.handler_errors = 0
        self._budget = reports_per_s
        self._budget_time: float | None = None
        self._epochs = gate.epochs

    def run(self, _deadline_ns: int) -> None:
        try:
            packets = self.receive()
        except Exception:  # noqa: BLE001 - a link that raises is a link with nothing to give
            packets = []
        if len(packets) > self.max_packets:
            self.dropped += len(packets) - self.max_packets
            packets = packets[: self.max_packets]
        for raw in packets:
            self.handle(raw)

    def _report(self, now: float) -> bool:
        """Token bucket for rejection reports: reports_per_s, bursts of the same size."""
        if self._budget_time is not None:
            self._budget = min(self.reports_per_s, self._budget + (now - self._budget_time) * self.reports_per_s)
        self._budget_time = now
        if self._budget >= 1.0:
            self._budget -= 1.0
            return True
        self.unreported += 1
        return False

    def handle(self, raw: bytes) -> Telecommand | Rejection:
        now = self.time_s()
        result = self.gate.check(raw)
        if isinstance(result, Rejection):
            if self._report(now):
                self.downlink(self.encoder.verification(now, ACCEPTANCE_FAILURE, result.request_id, result.code))
                self.events.emit("COMMAND_REJECTED", result.code, self.gate.rejected)
            return result
        self.downlink.record_command(raw)
        if self.gate.epochs != self._epochs:
            self._epochs = self.gate.epochs
            self.events.emit("COMMAND_EPOCH", self.gate.epoch)
        self.downlink(self.encoder.verification(now, ACCEPTANCE_SUCCESS, result.request_id))
        handler = self.handlers.get(result.name)
        try:
            reason = handler(*result.args) if handler else f"no handler for {result.name}"
        except Exception as exc:  # noqa: BLE001 - a handler bug refuses the command, never the flight
            self.handler_errors += 1
            reason = f"{result.name} failed: {exc!r}"
        if reason is None:
            self.executed.append(result.name)
            self.downlink(self.encoder.verification(now, COMPLETION_SUCCESS, result.request_id))
            return result
        code = self.encoder.d.rejections["bad_argument" if result.name == "SET_PARAM" else "out_of_phase"]
        self.gate.rejected += 1
        self.downlink(self.encoder.verification(now, COMPLETION_FAILURE, result.request_id, code))
        self.events.emit("COMMAND_REJECTED", code, self.gate.rejected)
        return Rejection(code, reason, result.request_id)
