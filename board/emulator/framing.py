"""COBS framing and CRC-16/CCITT-FALSE for the board side (the engine link and the sensor stream).

Written once for the emulator, independently of the flight's own codec, so that a bench built from
the two sides checks one against the other. Runs unchanged on CPython and MicroPython: no
`binascii.crc_hqx` (MicroPython lacks it), no f-string features, nothing from `machine`.

>>> cobs_encode(b"\\x11\\x00\\x22")
b'\\x02\\x11\\x02"'
>>> cobs_decode(b"\\x02\\x11\\x02\\x22")
b'\\x11\\x00"'
>>> hex(crc16(b"123456789"))  # the CRC catalogue's check value for CRC-16/CCITT-FALSE
'0x29b1'
>>> d = FrameSplitter(max_frame=8)
>>> d.feed(b"junk\\x00" + frame(b"\\x01\\x02") + b"\\x03")
[b'\\x01\\x02']
>>> d.bad_frames  # b"junk" is not a valid COBS block
1
"""


class FrameError(ValueError):
    """A frame that cannot be decoded: the only exception the board-side codecs raise."""


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ table[(crc >> 8) ^ byte]
    return crc


def cobs_encode(data) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no zero byte (delimiter not added).

    Canonical form: data that ends right after a full 254-byte run gets no empty closing block.
    """
    out = bytearray(b"\x00")  # placeholder for the first code byte
    code_at = 0
    code = 1
    after_full = False
    for byte in data:
        if byte:
            out.append(byte)
            code += 1
            after_full = False
            if code == 0xFF:  # a full block: close it and open the next
                out[code_at] = code
                code_at = len(out)
                out.append(0)
                code = 1
                after_full = True
        else:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            after_full = False
    if after_full:  # the opened block would be empty: the full run already ends the data
        return bytes(out[:-1])
    out[code_at] = code
    return bytes(out)


def cobs_decode(block) -> bytes:
    """Inverse of cobs_encode; raises FrameError for anything cobs_encode cannot produce."""
    out = bytearray()
    i = 0
    n = len(block)
    while i < n:
        code = block[i]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame at offset %d" % i)
        end = i + code
        if end > n:
            raise FrameError("COBS block at offset %d runs past the end of the frame" % i)
        for j in range(i + 1, end):
            if block[j] == 0:
                raise FrameError("COBS block at offset %d holds a zero" % i)
        out += block[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def frame(payload) -> bytes:
    """COBS-encode a payload and append the 0x00 delimiter."""
    return cobs_encode(payload) + b"\x00"


def with_crc(body) -> bytes:
    """Append the big-endian CRC-16 of body."""
    crc = crc16(body)
    return bytes(body) + bytes(((crc >> 8) & 0xFF, crc & 0xFF))


def check_crc(payload) -> bytes:
    """Return payload without its trailing CRC-16, or raise FrameError if the CRC is wrong."""
    if len(payload) < 3:
        raise FrameError("frame too short for a CRC (%d bytes)" % len(payload))
    body = payload[:-2]
    got = (payload[-2] << 8) | payload[-1]
    want = crc16(body)
    if got != want:
        raise FrameError("bad CRC: frame says %04X, body gives %04X" % (got, want))
    return bytes(body)


class FrameSplitter:
    """Cuts a byte stream at 0x00 delimiters and COBS-decodes each frame.

    Never raises: a frame that does not decode, or one longer than max_frame (its bytes are
    dropped up to the next delimiter), is counted in bad_frames. Empty frames (two delimiters in a
    row, the usual way to flush a line) are skipped silently.
    """

    def __init__(self, max_frame: int = 256) -> None:
        self.max_frame = max_frame
        self._pending = bytearray()
        self._overflow = False
        self.bad_frames = 0

    def feed(self, data) -> list:
        payloads = []
        data = bytes(data)
        at = 0
        n = len(data)
        while at < n:
            end = data.find(b"\x00", at)
            if end < 0:
                self._take(data[at:])
                break
            self._take(data[at:end])
            if self._overflow:
                self._overflow = False
                self.bad_frames += 1
            elif self._pending:
                try:
                    payloads.append(cobs_decode(self._pending))
                except FrameError:
                    self.bad_frames += 1
            self._pending = bytearray()
            at = end + 1
        return payloads

    def _take(self, chunk) -> None:
        if self._overflow or not chunk:
            return
        if len(self._pending) + len(chunk) > self.max_frame:
            self._overflow = True  # dropped up to the next delimiter
            self._pending = bytearray()
        else:
            self._pending += chunk
