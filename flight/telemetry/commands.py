"""Authenticated telecommands: PUS [8,1] (opcode + args) and PING [17,1].

Application data: opcode (u16) | sequence (u32) | args | HMAC-SHA256 (32 bytes).
The MAC covers a domain tag, the command epoch, the APID, service, subtype and everything
before the MAC, so a command cannot be moved to another service, replayed (strictly increasing
sequence within an epoch) or altered. The PUS CRC is checked first by spacepackets.

Replay across restarts: the epoch is 8 random bytes drawn at every start of the flight
software and published in housekeeping (`command_epoch`); the ground puts it under the MAC.
A command recorded before a restart carries the old epoch, so it fails authentication after
it: no counter needs persisting, and no disk write sits in the command path. When a sequence
reaches 0xFFFFFFFF the gate draws a new epoch (event COMMAND_EPOCH) and the count starts
again, so a maximal or wrapped sequence never locks commanding out.

The gate turns any byte string into an accepted `Telecommand` or a `Rejection`; it never
raises. The key file is opened once and checked on the open descriptor: a regular file,
owned by this user (or root), readable by its owner only; its bytes are the key, unstripped.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from spacepackets.ecss import PusTc

from flight.telemetry.dictionary import Dictionary, load

MAC_LEN = 32
HEADER = struct.Struct(">HI")  # opcode, sequence
DOMAIN = b"LANDER-TC-v1"
MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 4096
MAX_SEQUENCE = 0xFFFFFFFF
EPOCH = struct.Struct(">Q")


class KeyFileError(ValueError):
    pass


def load_key(path: str) -> bytes:
    """Read the command key; refuse a file that is not private. Checked on the descriptor that
    is read (no stat-then-open race), symlinks refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError(f"command key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"command key {path} is not a regular file")
        if st.st_uid not in (os.geteuid(), 0):
            raise KeyFileError(f"command key {path} belongs to uid {st.st_uid}, not to this user")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"command key {path} is accessible to group/others (mode {stat.S_IMODE(st.st_mode):o}); "
                f"run: chmod 600 {path}"
            )
        key = b""
        while len(key) <= MAX_KEY_BYTES:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            key += chunk
    finally:
        os.close(fd)
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise KeyFileError(f"command key {path} must hold {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes, has {len(key)}")
    return key


def _mac(key: bytes, epoch: int, apid: int, service: int, subtype: int, body: bytes) -> bytes:
    return hmac.new(key, DOMAIN + EPOCH.pack(epoch) + struct.pack(">HBB", apid, service, subtype) + body,
                    hashlib.sha256).digest()


def _service_of(name: str) -> tuple[int, int]:
    return (17, 1) if name == "PING" else (8, 1)


def build_command(key: bytes, name: str, sequence: int, *args: float, epoch: int,
                  dictionary: Dictionary | None = None, packet_seq: int = 0) -> bytes:
    """Ground side: one authenticated telecommand packet for the flight's current epoch (its
    housekeeping's `command_epoch`)."""
    d = dictionary or load()
    cmd = d.commands[name]
    service, subtype = _service_of(name)
    apid = d.apids["telecommand"]
    body = HEADER.pack(cmd.opcode, sequence) + struct.pack(">" + cmd.args, *args)
    app_data = body + _mac(key, epoch, apid, service, subtype, body)
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
    def __init__(self, key: bytes | None, dictionary: Dictionary | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        """key None: no key configured, every command is refused as unauthenticated."""
        self.key = key
        self.d = dictionary or load()
        self._random = random_bytes
        self.epoch = 0
        self.last_sequence = 0
        self.epochs = 0  # epochs drawn since start (1 after construction)
        self.new_epoch()
        self.rejected = 0
        self.accepted = 0

    def new_epoch(self) -> None:
        self.epoch = EPOCH.unpack(self._random(EPOCH.size))[0]
        self.last_sequence = 0
        self.epochs += 1

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
        if not hmac.compare_digest(mac, _mac(self.key, self.epoch, tc.apid, service, subtype, body)):
            return self._reject("unauthenticated", "bad HMAC", request_id)
        opcode, sequence = HEADER.unpack_from(body)
        if sequence <= self.last_sequence:
            return self._reject("replayed", f"sequence {sequence} <= last {self.last_sequence}", request_id)
        self.last_sequence = sequence  # authenticated: this number is spent, whatever follows
        if sequence == MAX_SEQUENCE:
            self.new_epoch()  # never locked out: the ground reads the new epoch and counts again
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
