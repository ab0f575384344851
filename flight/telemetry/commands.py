"""Authenticated telecommands: PUS [8,1] (opcode + args) and PING [17,1].

Application data: opcode (u16) | sequence (u32) | args | HMAC-SHA256 (32 bytes).
The MAC covers a domain tag, the APID, service, subtype and everything before the MAC,
so a command cannot be moved to another service, replayed (strictly increasing sequence)
or altered. The PUS CRC is checked first by spacepackets.

The gate turns any byte string into an accepted `Telecommand` or a `Rejection`; it never
raises. The key file must be readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import stat
import struct
from dataclasses import dataclass

from spacepackets.ecss import PusTc

from flight.telemetry.dictionary import Dictionary, load

MAC_LEN = 32
HEADER = struct.Struct(">HI")  # opcode, sequence
DOMAIN = b"LANDER-TC-v1"
MIN_KEY_BYTES = 16


class KeyFileError(ValueError):
    pass


def load_key(path: str) -> bytes:
    """Read the command key; refuse a file that group or others may read or write."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise KeyFileError(f"command key {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"command key {path} is accessible to group/others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    with open(path, "rb") as fh:
        key = fh.read().strip()
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"command key {path} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def _mac(key: bytes, apid: int, service: int, subtype: int, body: bytes) -> bytes:
    return hmac.new(key, DOMAIN + struct.pack(">HBB", apid, service, subtype) + body, hashlib.sha256).digest()


def _service_of(name: str) -> tuple[int, int]:
    return (17, 1) if name == "PING" else (8, 1)


def build_command(key: bytes, name: str, sequence: int, *args: float,
                  dictionary: Dictionary | None = None, packet_seq: int = 0) -> bytes:
    """Ground side: one authenticated telecommand packet."""
    d = dictionary or load()
    cmd = d.commands[name]
    service, subtype = _service_of(name)
    apid = d.apids["telecommand"]
    body = HEADER.pack(cmd.opcode, sequence) + struct.pack(">" + cmd.args, *args)
    app_data = body + _mac(key, apid, service, subtype, body)
    return bytes(PusTc(service=service, message_subtype=subtype, apid=apid, app_data=app_data,
                       seq_count=packet_seq % (1 << 14)).pack())


@dataclass(frozen=True)
class Telecommand:
    name: str
    args: tuple
    sequence: int
    request_id: int


@dataclass(frozen=True)
class Rejection:
    code: int
    reason: str
    request_id: int = 0


class CommandGate:
    def __init__(self, key: bytes | None, dictionary: Dictionary | None = None, last_sequence: int = 0) -> None:
        """key None: no key configured, every command is refused as unauthenticated."""
        self.key = key
        self.d = dictionary or load()
        self.last_sequence = last_sequence
        self.rejected = 0
        self.accepted = 0

    def _reject(self, name: str, reason: str, request_id: int = 0) -> Rejection:
        self.rejected += 1
        return Rejection(self.d.rejections[name], reason, request_id)

    def check(self, raw: bytes) -> Telecommand | Rejection:
        try:
            tc = PusTc.unpack(raw)
        except Exception as exc:  # noqa: BLE001 - CRC, length, version: all "not a command"
            return self._reject("malformed", f"not a PUS TC: {exc.__class__.__name__}")
        if len(raw) != tc.packet_len:
            return self._reject("malformed", f"{len(raw) - tc.packet_len} trailing bytes")
        request_id = struct.unpack(">I", raw[:4])[0]
        service, subtype, app_data = tc.service, tc.message_subtype, bytes(tc.app_data)
        if tc.apid != self.d.apids["telecommand"] or (service, subtype) not in ((8, 1), (17, 1)):
            return self._reject("malformed", f"APID {tc.apid:#x} [{service},{subtype}] takes no commands",
                                request_id)
        if len(app_data) < HEADER.size + MAC_LEN:
            return self._reject("malformed", "application data too short", request_id)
        body, mac = app_data[:-MAC_LEN], app_data[-MAC_LEN:]
        if self.key is None:
            return self._reject("unauthenticated", "no command key configured", request_id)
        if not hmac.compare_digest(mac, _mac(self.key, tc.apid, service, subtype, body)):
            return self._reject("unauthenticated", "bad HMAC", request_id)
        opcode, sequence = HEADER.unpack_from(body)
        if sequence <= self.last_sequence:
            return self._reject("replayed", f"sequence {sequence} <= last {self.last_sequence}", request_id)
        self.last_sequence = sequence  # authenticated: this number is spent, whatever follows
        try:
            cmd = self.d.command_by_opcode(opcode)
        except KeyError:
            return self._reject("unknown_command", f"opcode {opcode}", request_id)
        if _service_of(cmd.name) != (service, subtype):
            return self._reject("unknown_command", f"{cmd.name} is not a [{service},{subtype}] command", request_id)
        try:
            args = struct.unpack(">" + cmd.args, body[HEADER.size:])
        except struct.error:
            return self._reject("malformed", f"{cmd.name} arguments do not fit '{cmd.args}'", request_id)
        if any(isinstance(a, float) and not math.isfinite(a) for a in args):
            return self._reject("bad_argument", f"{cmd.name}: non-finite argument", request_id)
        self.accepted += 1
        return Telecommand(cmd.name, args, sequence, request_id)
