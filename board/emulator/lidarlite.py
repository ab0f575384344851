"""Garmin LIDAR-Lite v3HP register map (I2C 0x62) as the bytes the master reads.

- ACQ_COMMAND 0x00: any non-zero write starts a measurement (0x04 with bias correction, 0x03
  without: both measure here). A zero write is ignored (on the part it resets the device; not
  emulated). Reads back 0x00.
- STATUS 0x01: bit 0 busy, set by the command and cleared when the measurement completes.
- FULL_DELAY_HIGH/LOW 0x0F/0x10: the last completed measurement in cm, big-endian; a 2-byte
  read from 0x0F auto-increments. They change only when a measurement completes: a master that
  never commands sees the same distance for ever, as on the part.
- No target (nothing within range, or no return): FULL_DELAY reads 1 cm. The v3 family is
  widely reported to give 1 cm when no return is detected; 1 cm is below the 5 cm the part can
  measure, so a driver can tell it from a real reading. A valid range is clamped to 0..65535 cm.
- Others with their reset values: SIG_COUNT_VAL 0x02 = 0x80, ACQ_CONFIG_REG 0x04 = 0x08,
  REF_COUNT_VAL 0x12 = 0x05, UNIT_ID_HIGH/LOW 0x16/0x17 (read-only serial, here 0x4C 0x4C),
  I2C_ID_HIGH/LOW 0x18/0x19 = 0, I2C_SEC_ADDR 0x1A = 0, THRESHOLD_BYPASS 0x1C = 0,
  I2C_CONFIG 0x1E = 0. Writable registers keep what the master writes (no effect on ranging).

When a measurement completes: at the next stream VALUES frame after the command (lockstep: the
rig's time advanced), or, in free-running mode, `busy_us` after the command by the emulator's
clock (the v3HP measures in well under 1 ms at its > 1 kHz rate; default 1000 us).

>>> lidar = LidarLite()
>>> lidar.set_range(1234, VALID)
>>> lidar.write(ACQ_COMMAND, b"\\x04", now_us=0)
>>> lidar.read(STATUS, 1)  # busy
b'\\x01'
>>> lidar.complete()
>>> lidar.read(STATUS, 1), lidar.read(FULL_DELAY_HIGH, 2).hex()
(b'\\x00', '04d2')
"""

ADDRESS = 0x62
ACQ_COMMAND = 0x00
STATUS = 0x01
SIG_COUNT_VAL = 0x02
ACQ_CONFIG_REG = 0x04
FULL_DELAY_HIGH = 0x0F
FULL_DELAY_LOW = 0x10
REF_COUNT_VAL = 0x12
UNIT_ID_HIGH = 0x16
UNIT_ID_LOW = 0x17
I2C_ID_HIGH = 0x18
I2C_ID_LOW = 0x19
I2C_SEC_ADDR = 0x1A
THRESHOLD_BYPASS = 0x1C
I2C_CONFIG = 0x1E

VALID = 0
NO_TARGET = 1
NO_TARGET_CM = 1
BUSY = 0x01
UNIT_ID = 0x4C4C
TICKS_MASK = 0x3FFFFFFF  # MicroPython's ticks_us wraps at 2**30

_RESET = ((SIG_COUNT_VAL, 0x80), (ACQ_CONFIG_REG, 0x08), (REF_COUNT_VAL, 0x05),
          (UNIT_ID_HIGH, UNIT_ID >> 8), (UNIT_ID_LOW, UNIT_ID & 0xFF))


class LidarLite:
    def __init__(self, busy_us: int = 1000) -> None:
        self.mem = bytearray(256)
        for reg, value in _RESET:
            self.mem[reg] = value
        self.busy_us = busy_us
        self.busy = False
        self.started_us = 0
        self.measurements = 0
        self._distance_cm = 0  # as published in FULL_DELAY
        self._next_cm = NO_TARGET_CM  # what the next completed measurement reads
        self.lie_cm: int | None = None  # fault: a fixed, wrong, valid distance

    def set_range(self, range_cm: int, status: int) -> None:
        """What the next measurement will find (from the stream)."""
        if status != VALID:
            self._next_cm = NO_TARGET_CM
        else:
            self._next_cm = 0 if range_cm < 0 else (65535 if range_cm > 65535 else range_cm)

    def write(self, reg: int, data, now_us: int = 0) -> None:
        """A master write transaction (host glue)."""
        mem = self.mem
        for i in range(len(data)):
            mem[(reg + i) & 0xFF] = data[i]
        self.on_master_write(now_us)

    def read(self, reg: int, n: int) -> bytes:
        mem = self.mem
        return bytes(mem[(reg + i) & 0xFF] for i in range(n))

    def on_master_write(self, now_us: int) -> None:
        """After a master write: start a commanded measurement, undo writes to read-only
        registers. Allocation-free (safe in a hard IRQ handler)."""
        mem = self.mem
        if mem[ACQ_COMMAND]:
            mem[ACQ_COMMAND] = 0
            self.busy = True
            self.started_us = now_us
        mem[STATUS] = BUSY if self.busy else 0
        distance = self._distance_cm
        mem[FULL_DELAY_HIGH] = distance >> 8
        mem[FULL_DELAY_LOW] = distance & 0xFF
        mem[UNIT_ID_HIGH] = UNIT_ID >> 8
        mem[UNIT_ID_LOW] = UNIT_ID & 0xFF

    def due(self, now_us: int) -> bool:
        """Free-running clock: has the busy time passed?"""
        return self.busy and ((now_us - self.started_us) & TICKS_MASK) >= self.busy_us

    def complete(self) -> None:
        """Finish a pending measurement (call with the master locked out)."""
        if not self.busy:
            return
        distance = self._next_cm if self.lie_cm is None else self.lie_cm
        self._distance_cm = distance
        mem = self.mem
        mem[FULL_DELAY_HIGH] = distance >> 8
        mem[FULL_DELAY_LOW] = distance & 0xFF
        self.busy = False
        mem[STATUS] = 0
        self.measurements += 1
