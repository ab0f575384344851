"""PUS telemetry built with spacepackets from the dictionary: housekeeping [3,25],
events [5,severity], command verification [1,x] and ping replies [17,2]; and the decoder
the ground uses. Pure codecs: no I/O.

The PUS-C TM time field is 8 bytes: flight time in seconds as a big-endian double.

>>> enc = TelemetryEncoder()
>>> pkt = enc.event(1.5, "PHASE", 3)
>>> d = decode_tm(pkt)
>>> (d.kind, d.name, d.values, d.time_s)
('event', 'PHASE', (3,), 1.5)
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from spacepackets.ecss import PusTm

from flight.telemetry.dictionary import Dictionary, load

TIMESTAMP_LEN = 8
SEQ_MODULO = 1 << 14

# PUS service 1 subtypes
ACCEPTANCE_SUCCESS, ACCEPTANCE_FAILURE, COMPLETION_SUCCESS, COMPLETION_FAILURE = 1, 2, 7, 8


class TelemetryError(ValueError):
    """A packet that cannot be decoded with this dictionary."""


def _timestamp(time_s: float) -> bytes:
    return struct.pack(">d", time_s)


class TelemetryEncoder:
    def __init__(self, dictionary: Dictionary | None = None) -> None:
        self.d = dictionary or load()
        self._hk = self.d.hk_format
        self._names = [c.name for c in self.d.channels]
        self._text = [i for i, c in enumerate(self.d.channels) if c.type.endswith("s")]  # names as bytes
        self._seq: dict[int, int] = {}

    def _tm(self, apid_name: str, service: int, subtype: int, time_s: float, data: bytes) -> bytes:
        apid = self.d.apids[apid_name]
        seq = self._seq.get(apid, 0)
        self._seq[apid] = (seq + 1) % SEQ_MODULO
        return bytes(PusTm(service=service, message_subtype=subtype, timestamp=_timestamp(time_s),
                           source_data=data, apid=apid, seq_count=seq).pack())

    def housekeeping(self, time_s: float, values: Mapping[str, float | int | str]) -> bytes:
        try:
            ordered: list[float | int | str | bytes] = [values[name] for name in self._names]
        except KeyError as missing:
            raise TelemetryError(f"housekeeping channel {missing} has no value") from None
        for i in self._text:
            ordered[i] = str(ordered[i]).encode("utf-8", "replace")
        return self._tm("housekeeping", 3, 25, time_s, self._hk.pack(self.d.hk_structure_id, *ordered))

    def event(self, time_s: float, name: str, *args: float) -> bytes:
        e = self.d.events[name]
        return self._tm("events", 5, e.severity, time_s, struct.pack(">H" + e.args, e.id, *args))

    def verification(self, time_s: float, subtype: int, request_id: int, code: int = 0) -> bytes:
        data = struct.pack(">I", request_id) + (struct.pack(">B", code) if subtype in (2, 8) else b"")
        return self._tm("verification", 1, subtype, time_s, data)

    def ping_reply(self, time_s: float) -> bytes:
        return self._tm("ping", 17, 2, time_s, b"")


@dataclass(frozen=True)
class DecodedTm:
    kind: str  # housekeeping | event | verification | ping
    apid: int
    seq: int
    time_s: float
    name: str
    values: tuple | dict


def decode_tm(raw: bytes, dictionary: Dictionary | None = None) -> DecodedTm:
    """Any byte string yields a DecodedTm or a TelemetryError, nothing else."""
    d = dictionary or load()
    try:
        tm = PusTm.unpack(raw, timestamp_len=TIMESTAMP_LEN)
    except Exception as exc:  # noqa: BLE001 - spacepackets raises several kinds; all mean "not a packet"
        raise TelemetryError(f"not a PUS TM packet: {exc}") from None
    try:
        time_s = struct.unpack(">d", bytes(tm.timestamp))[0]
        service, subtype, data = tm.service, tm.message_subtype, bytes(tm.source_data)
        if service == 3 and subtype == 25:
            fields = d.hk_format.unpack(data)
            if fields[0] != d.hk_structure_id:
                raise TelemetryError(f"unknown housekeeping structure {fields[0]}")
            values = {c.name: v.rstrip(b"\0").decode("utf-8", "replace") if isinstance(v, bytes) else v
                      for c, v in zip(d.channels, fields[1:])}
            return DecodedTm("housekeeping", tm.apid, tm.seq_count, time_s, "housekeeping", values)
        if service == 5:
            (event_id,) = struct.unpack_from(">H", data)
            e = d.event_by_id(event_id)
            args = struct.unpack(">H" + e.args, data)[1:]
            return DecodedTm("event", tm.apid, tm.seq_count, time_s, e.name, args)
        if service == 1:
            (request_id,) = struct.unpack_from(">I", data)
            code = data[4] if len(data) > 4 else 0
            return DecodedTm("verification", tm.apid, tm.seq_count, time_s, d.rejection_name(code) if code else "ok",
                             (subtype, request_id, code))
        if service == 17:
            return DecodedTm("ping", tm.apid, tm.seq_count, time_s, "pong", ())
    except (struct.error, KeyError, IndexError) as exc:
        raise TelemetryError(f"PUS [{tm.service},{tm.message_subtype}] does not fit the dictionary: {exc}") from None
    raise TelemetryError(f"PUS [{service},{subtype}] is not in the dictionary")
