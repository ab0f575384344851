"""The engine controller's side of the engine link (the Pi's driver is the other side).

UART 115200 8N1; frames COBS-encoded and delimited by 0x00; payload big-endian
`type u8 | seq u16 | body | crc u16`, crc = CRC-16/CCITT-FALSE over type..body.
- 0x01 COMMAND (Pi -> controller): flags u8 (bit0 armed) | throttle u16 (0..10000) | pitch i16 (1e-4 rad).
  Refused (counted in bad_frames) when the CRC, the length or the type is wrong, or throttle > 10000.
- 0x81 STATUS (controller -> Pi, 50 Hz): flags u8 (bit0 armed, bit1 touchdown contact, bit2 fault) |
  throttle u16 | pitch i16 (actual) | last_command_seq u16 | bad_frames u16 (saturating).

The controller's actual throttle follows the command while armed and is 0 when disarmed; the
actual pitch follows the command (an ideal actuator: the rig's dynamics model the real one).

>>> c = EngineController()
>>> cmd = encode_command(seq=5, armed=True, throttle_e4=2500, pitch_e4=-1000)
>>> cmd.hex()
'020109050109c4fc18536800'
>>> [(r.seq, r.armed, r.throttle_e4, r.pitch_e4) for r in c.feed(cmd)]
[(5, True, 2500, -1000)]
>>> c.status_frame(contact=True, fault=False).hex()
'028101060309c4fc1802050103996b00'
"""

import struct

from .framing import FrameError, FrameSplitter, check_crc, frame, with_crc

COMMAND = 0x01
STATUS = 0x81
STATUS_PERIOD_US = 20000  # 50 Hz
THROTTLE_FULL = 10000
_COMMAND_LEN = 1 + 2 + 5 + 2


class EngineFrameError(FrameError):
    """A COMMAND frame the controller refuses."""


class Command:
    def __init__(self, seq: int, armed: bool, throttle_e4: int, pitch_e4: int) -> None:
        self.seq = seq
        self.armed = bool(armed)
        self.throttle_e4 = throttle_e4
        self.pitch_e4 = pitch_e4

    def __eq__(self, other):
        return isinstance(other, Command) and (self.seq, self.armed, self.throttle_e4, self.pitch_e4) == (
            other.seq, other.armed, other.throttle_e4, other.pitch_e4)

    def __repr__(self):
        return "Command(%d, %r, %d, %d)" % (self.seq, self.armed, self.throttle_e4, self.pitch_e4)


def encode_command(seq: int, armed: bool, throttle_e4: int, pitch_e4: int) -> bytes:
    """The Pi's COMMAND frame (for tests and the rig; the flight has its own encoder)."""
    if not (0 <= seq <= 0xFFFF and 0 <= throttle_e4 <= 0xFFFF and -32768 <= pitch_e4 <= 32767):
        raise EngineFrameError("COMMAND field out of range")
    return frame(with_crc(struct.pack(">BHBHh", COMMAND, seq, 1 if armed else 0, throttle_e4, pitch_e4)))


def decode_command(payload) -> Command:
    """A COBS-decoded payload -> Command, or EngineFrameError."""
    if len(payload) != _COMMAND_LEN:
        raise EngineFrameError("COMMAND is %d bytes, got %d" % (_COMMAND_LEN, len(payload)))
    try:
        body = check_crc(payload)
    except FrameError as exc:
        raise EngineFrameError(str(exc))
    kind, seq, flags, throttle, pitch = struct.unpack(">BHBHh", body)
    if kind != COMMAND:
        raise EngineFrameError("frame type 0x%02X is not COMMAND" % kind)
    if throttle > THROTTLE_FULL:
        raise EngineFrameError("throttle %d above %d" % (throttle, THROTTLE_FULL))
    return Command(seq, flags & 1, throttle, pitch)


def decode_status(payload):
    """STATUS payload -> (seq, flags, throttle_e4, pitch_e4, last_command_seq, bad_frames).

    For tests and the rig; the flight decodes STATUS with its own code.
    """
    if len(payload) != 14:
        raise EngineFrameError("STATUS is 14 bytes, got %d" % len(payload))
    try:
        body = check_crc(payload)
    except FrameError as exc:
        raise EngineFrameError(str(exc))
    fields = struct.unpack(">BHBHhHH", body)
    if fields[0] != STATUS:
        raise EngineFrameError("frame type 0x%02X is not STATUS" % fields[0])
    return fields[1:]


class EngineController:
    """Decodes COMMAND frames, keeps the controller state, encodes STATUS."""

    def __init__(self) -> None:
        self._splitter = FrameSplitter(max_frame=32)
        self.refused = 0  # frames that decoded from COBS but were refused
        self.frames = 0  # COMMAND frames accepted
        self.status_sent = 0
        self.armed = False
        self.throttle_e4 = 0
        self.pitch_e4 = 0
        self.last_command_seq = 0
        self._status_seq = 0

    @property
    def bad_frames(self) -> int:
        return self._splitter.bad_frames + self.refused

    def feed(self, data) -> list:
        """Bytes from the Pi -> the commands accepted, in order."""
        accepted = []
        for payload in self._splitter.feed(data):
            try:
                cmd = decode_command(payload)
            except EngineFrameError:
                self.refused += 1
                continue
            self.frames += 1
            self.armed = cmd.armed
            self.throttle_e4 = cmd.throttle_e4
            self.pitch_e4 = cmd.pitch_e4
            self.last_command_seq = cmd.seq
            accepted.append(cmd)
        return accepted

    def status_frame(self, contact: bool, fault: bool) -> bytes:
        flags = (1 if self.armed else 0) | (2 if contact else 0) | (4 if fault else 0)
        body = struct.pack(">BHBHhHH", STATUS, self._status_seq, flags,
                           self.throttle_e4 if self.armed else 0, self.pitch_e4,
                           self.last_command_seq, min(self.bad_frames, 0xFFFF))
        self._status_seq = (self._status_seq + 1) & 0xFFFF
        self.status_sent += 1
        return frame(with_crc(body))
