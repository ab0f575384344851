"""Consistent Overhead Byte Stuffing: frames packets on a serial line with 0x00 delimiters.

Written here because the flight path may depend on the stdlib, cffi, pyserial, smbus2 and
spacepackets only; tests check it against the `cobs` package.

>>> encode(b"\\x11\\x00\\x22")
b'\\x02\\x11\\x02"'
>>> decode(encode(b"\\x00\\x00"))
b'\\x00\\x00'
"""

from __future__ import annotations


class CobsError(ValueError):
    pass


def encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    full = False  # the last block written was a full one (254 bytes, code 255): no zero follows it
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            full = False
        else:
            block.append(byte)
            full = False
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
                full = True
    if block or not full:  # data ending on a full block needs no closing code (the standard form)
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def decode(frame: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(frame)
    while i < n:
        code = frame[i]
        if code == 0:
            raise CobsError(f"zero byte inside a frame at offset {i}")
        end = i + code
        if end > n:
            raise CobsError(f"block at offset {i} runs past the end of the frame")
        chunk = frame[i + 1 : end]
        if 0 in chunk:
            raise CobsError(f"block at offset {i} holds a zero")
        out += chunk
        i = end
        if code != 255 and i < n:
            out.append(0)
    return bytes(out)
