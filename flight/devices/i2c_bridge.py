"""An smbus2-shaped I2C bus carried over a unix stream socket to the emulator host (stdlib only).

The laptop has no I2C: in the rig the flight's I2C drivers get a `BridgeBus` where the board
gives them `smbus2.SMBus(1)`. Same method names, same errors: `OSError(121)` when the device
does not acknowledge, `OSError(ETIMEDOUT)` when no answer comes within `timeout_s`.

Wire format, one request in flight at a time:
- request: `op u8 | addr u8 | reg u8 | n u8 | data[n]`; op 1 = write `data` from `reg`,
  op 2 = read `n` bytes from `reg` (no data bytes).
- response: `status u8 | n u8 | data[n]`; status 0 = OK, else an errno.

A socket that timed out or broke is closed at once (a late answer must never be read as the
answer to the next request); the next call connects again, so an emulator that restarted is
picked up by the first call after it is back.

>>> encode_request(OP_READ, 0x68, 0x1D, 14).hex()
'02681d0e'
>>> encode_request(OP_WRITE, 0x62, 0x00, data=[0x04]).hex()
'0162000104'
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from typing import Self

OP_WRITE = 1
OP_READ = 2
BLOCK_MAX = 32  # smbus2's I2C_SMBUS_BLOCK_MAX


def encode_request(op: int, addr: int, reg: int, n: int = 0, data: list[int] | bytes = b"") -> bytes:
    """One request; ValueError for values that do not fit (as smbus2 does for a long block)."""
    if op == OP_WRITE:
        n = len(data)
    if not 0 <= n <= BLOCK_MAX:
        raise ValueError(f"block length {n}: 0..{BLOCK_MAX}")
    if not (0 <= addr <= 0x7F and 0 <= reg <= 0xFF):
        raise ValueError(f"address {addr:#x} / register {reg:#x} out of range")
    return bytes((op, addr, reg, n)) + bytes(data)  # bytes() refuses values outside 0..255


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class BridgeBus:
    def __init__(self, path: str, timeout_s: float = 0.005) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self.connects = 0

    # -- smbus2's names -----------------------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._transact(encode_request(OP_READ, i2c_addr, register, 1), 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        self._transact(encode_request(OP_WRITE, i2c_addr, register, data=[value]), 0)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        return list(self._transact(encode_request(OP_READ, i2c_addr, register, length), length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int],
                             force: bool | None = None) -> None:
        self._transact(encode_request(OP_WRITE, i2c_addr, register, data=data), 0)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------------
    def _connected(self, deadline: float) -> socket.socket:
        sock = self._sock
        if sock is not None:
            # the emulator may have gone since the last call: a closed peer reads as end of file
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                self.close()  # EOF or a stray byte: either way this connection is done
                sock = None
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.0))
                sock.connect(self.path)
            except TimeoutError:
                sock.close()
                raise _error(errno.ETIMEDOUT) from None
            except OSError:
                sock.close()
                raise  # ENOENT / ECONNREFUSED: the emulator is not there
            self._sock = sock
            self.connects += 1
        return sock

    def _transact(self, request: bytes, expect: int) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        sock = self._connected(deadline)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 1e-6))
            sock.sendall(request)
            head = self._recv_exactly(sock, 2, deadline)
            status, n = head[0], head[1]
            data = self._recv_exactly(sock, n, deadline) if n else b""
        except TimeoutError:
            self.close()
            raise _error(errno.ETIMEDOUT) from None
        except OSError:
            self.close()
            raise
        if status != 0:
            raise _error(status)
        if n != expect:
            self.close()  # the two sides disagree on the format: start afresh
            raise _error(errno.EIO)
        return data

    @staticmethod
    def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0.0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise _error(errno.ECONNRESET)  # the emulator closed the connection mid-answer
            buf += chunk
        return bytes(buf)
