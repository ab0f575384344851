"""The km-class laser rangefinder's side of its UART (Vectronix LRF 3013-style ASCII protocol).

Request: `>Md1` + CR. Reply: 10 characters + CR: a status character (`v` valid, `R` error), 7
characters of range field and 2 upper-case hex digits of checksum = the low byte of the sum of
the first 8 characters. The reply's CR mirrors the request's and is what a reader resyncs on.

- valid: `v` + the range in centimetres, 7 digits (max 9,999,999 cm = 99,999.99 m);
- error reply: `R000E` + a 3-digit error code (e.g. `R000E301`);
- no target (no return, or beyond 99,999.99 m): `R0000000`.
Bytes outside a request are ignored (counted); a `>` always starts a new request, so the
parser resyncs at the next `>` after garbage; a request longer than 16 characters or one that is
not `Md1` is dropped (counted) without a reply.

>>> rf = Rangefinder()
>>> rf.set_measurement(5950, VALID)
>>> rf.feed(b">Md1\\r")
b'v0005950D9\\r'
>>> rf.set_measurement(0, ERROR, error_code=301)
>>> rf.feed(b"\\xff\\x00>M>Md1\\r")
b'R000E301BB\\r'
>>> decode_reply(b"v0005950D9")
('v', 5950)
"""

REQUEST = b"Md1"
VALID = 0
ERROR = 1
NO_TARGET = 2
MAX_RANGE_CM = 9999999
_MAX_REQUEST = 16
_CR = 0x0D


class ReplyError(ValueError):
    """A reply that is not a well-formed, correctly checksummed rangefinder reply."""


def checksum(first8) -> int:
    return sum(first8) & 0xFF


def encode_reply(status: int, range_cm: int = 0, error_code: int = 0) -> bytes:
    """The 10-character reply + CR for a measurement outcome."""
    if status == VALID and 0 <= range_cm <= MAX_RANGE_CM:
        head = ("v%07d" % range_cm).encode()
    elif status == ERROR:
        if not 0 <= error_code <= 999:
            raise ReplyError("error code %r takes three digits" % (error_code,))
        head = ("R000E%03d" % error_code).encode()
    else:  # no target, or a range the seven digits cannot carry
        head = b"R0000000"
    return head + ("%02X\r" % checksum(head)).encode()


def decode_reply(reply):
    """`v0005950D9` (CR optional) -> ('v', 5950); ('R', code) for `R000Ecode`; ('R', None) for
    no target. For tests and the rig; the flight parses replies with its own code."""
    reply = bytes(reply)
    if reply.endswith(b"\r"):
        reply = reply[:-1]
    if len(reply) != 10:
        raise ReplyError("reply is %d characters, want 10" % len(reply))
    head = reply[:8]
    try:
        got = int(reply[8:10], 16)
    except ValueError:
        raise ReplyError("checksum %r is not hex" % reply[8:10])
    if not all(c in b"0123456789ABCDEF" for c in reply[8:10]) or got != checksum(head):
        raise ReplyError("checksum %r, characters give %02X" % (reply[8:10], checksum(head)))
    status = head[:1]
    field = head[1:]
    if status == b"v" and all(0x30 <= c <= 0x39 for c in field):
        return ("v", int(field))
    if status == b"R" and field == b"0000000":
        return ("R", None)
    if status == b"R" and field[:4] == b"000E" and all(0x30 <= c <= 0x39 for c in field[4:]):
        return ("R", int(field[4:]))
    raise ReplyError("unknown reply %r" % head)


class Rangefinder:
    """Request parser and reply encoder; the latest measurement comes from the stream."""

    def __init__(self) -> None:
        self._request = None  # bytearray while inside a request (after '>'), else None
        self.range_cm = 0
        self.status = NO_TARGET
        self.error_code = 0
        self.requests = 0  # requests answered
        self.reply_bytes = 0  # every byte written on the line (replies and injected garbage)
        self.bad_requests = 0
        self.ignored_bytes = 0
        self.silent = False  # fault: requests are read and dropped
        self.lie_cm: int | None = None  # fault: a fixed, wrong, valid range

    def set_measurement(self, range_cm: int, status: int, error_code: int = 0) -> None:
        self.range_cm = range_cm
        self.status = status
        self.error_code = error_code

    def feed(self, data) -> bytes:
        """Bytes from the flight -> the bytes to write back."""
        out = b""
        for byte in data:
            if byte == 0x3E:  # '>' always starts a request: resync point
                if self._request is not None:
                    self.bad_requests += 1
                self._request = bytearray()
            elif self._request is None:
                self.ignored_bytes += 1
            elif byte == _CR:
                request = bytes(self._request)
                self._request = None
                if request != REQUEST:
                    self.bad_requests += 1
                elif not self.silent:
                    out += self._reply()
            elif len(self._request) >= _MAX_REQUEST:
                self._request = None
                self.bad_requests += 1
            else:
                self._request.append(byte)
        return out

    def _reply(self) -> bytes:
        if self.lie_cm is not None:
            reply = encode_reply(VALID, self.lie_cm)
        else:
            reply = encode_reply(self.status, self.range_cm, self.error_code)
        self.requests += 1
        self.reply_bytes += len(reply)
        return reply

    def count_written(self, n: int) -> None:
        """Bytes put on the line other than replies (injected garbage)."""
        self.reply_bytes += n
