"""The I/O edge of the I2C drivers: one device on an smbus2-shaped bus, retried and counted.

The bus is `smbus2.SMBus(1)` on the board or `BridgeBus` in the rig: both raise `OSError`
(121 when the device does not acknowledge, ETIMEDOUT from the bridge). Each driver call gets
an allowance of transactions (its budget); a failed transaction is retried while the
allowance lasts, except a timeout (its time is already spent). Every failure is counted in
the driver's `LinkHealth` (io_errors, retries, timeouts); a bus that returns something of the
wrong shape counts a bad frame. What is left after the retries is an `I2cFailure`, which the
drivers turn into a `DeviceError` and a back-off: nothing reaches the executive.
"""

from __future__ import annotations

import errno
import math

from flight.devices.interfaces import LinkHealth


class I2cFailure(Exception):
    """A transaction failed after its retries (internal to the drivers)."""


def _describe(exc: OSError) -> str:
    return f"[Errno {exc.errno}] {exc.strerror}" if exc.errno is not None else str(exc)


class I2cDevice:
    def __init__(self, bus, address: int, health: LinkHealth, max_attempts: int = 2) -> None:
        self.bus = bus
        self.address = address
        self.health = health
        self.max_attempts = max_attempts
        self._left = 0
        self.transactions = 0  # attempts made (for budget figures)

    @property
    def left(self) -> int:
        return self._left

    def allow(self, transactions: int) -> None:
        """Start a driver call with this many bus transactions, retries included."""
        self._left = transactions

    def read_byte(self, reg: int) -> int:
        value = self._do(f"read {reg:#04x}", self.bus.read_byte_data, self.address, reg)
        if type(value) is not int or not 0 <= value <= 0xFF:
            self.health.bad_frames += 1
            raise I2cFailure(f"read {reg:#04x}: bus returned {value!r}")
        return value

    def read_block(self, reg: int, length: int) -> bytes:
        data = self._do(f"read {length} from {reg:#04x}", self.bus.read_i2c_block_data, self.address, reg, length)
        try:
            out = bytes(data) if isinstance(data, (list, tuple, bytes, bytearray)) else None
        except (TypeError, ValueError):  # a value outside 0..255
            out = None
        if out is None or len(out) != length:
            self.health.bad_frames += 1
            raise I2cFailure(f"read {length} from {reg:#04x}: bus returned {data!r:.40}")
        return out

    def write_byte(self, reg: int, value: int) -> None:
        self._do(f"write {reg:#04x}", self.bus.write_byte_data, self.address, reg, value)

    def write_block(self, reg: int, data: list[int]) -> None:
        self._do(f"write {len(data)} at {reg:#04x}", self.bus.write_i2c_block_data, self.address, reg, data)

    def _do(self, what: str, fn, *args):
        attempt = 0
        while True:
            if self._left <= 0:
                raise I2cFailure(f"{what}: no transactions left in this call's budget")
            self._left -= 1
            attempt += 1
            self.transactions += 1
            try:
                return fn(*args)
            except OSError as exc:
                self.health.io_errors += 1
                timed_out = exc.errno == errno.ETIMEDOUT
                if timed_out:
                    self.health.timeouts += 1
                if timed_out or attempt >= self.max_attempts or self._left <= 0:
                    raise I2cFailure(f"{what}: {_describe(exc)}") from None
                self.health.retries += 1


class Backoff:
    """After a failure, leave the device alone for a while, doubling up to a ceiling: a dead
    device costs one attempt per interval, not one per call, and a DeviceError is returned at
    most once per interval (the executive's read loop stops at the None in between)."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._delay_s = first_s
        self.until_s = -math.inf

    def ready(self, now: float) -> bool:
        return now >= self.until_s

    def failed(self, now: float) -> None:
        self.until_s = now + self._delay_s
        self._delay_s = min(self.max_s, 2.0 * self._delay_s)

    def succeeded(self) -> None:
        self._delay_s = self.first_s
        self.until_s = -math.inf


class LazySMBus:
    """`smbus2.SMBus(bus)` opened at its first transaction, not at construction: a flight computer
    booting without its I2C bus (overlay missing, permissions) still builds its executive, and
    the failure is each transaction's `OSError` (counted, backed off, named by preflight)."""

    def __init__(self, bus: int) -> None:
        self.bus = bus
        self._smbus = None

    def _open(self):
        if self._smbus is None:
            import smbus2  # imported here: the codecs and the rig's bridge need no smbus2

            self._smbus = smbus2.SMBus(self.bus)
        return self._smbus

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._open().read_byte_data(i2c_addr, register)

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        self._open().write_byte_data(i2c_addr, register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        return self._open().read_i2c_block_data(i2c_addr, register, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int],
                             force: bool | None = None) -> None:
        self._open().write_i2c_block_data(i2c_addr, register, data)

    def close(self) -> None:
        bus, self._smbus = self._smbus, None
        if bus is not None:
            bus.close()
