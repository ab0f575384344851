"""TDK ICM-42688-P register map (I2C 0x68, bank 0) as the bytes the master reads.

- WHO_AM_I 0x75 = 0x47; REG_BANK_SEL 0x76 (stored and read back; only bank 0 is emulated).
- DEVICE_CONFIG 0x11: writing bit 0 (soft reset) restores every register to its reset value.
- PWR_MGMT0 0x4E (reset 0x00: accel and gyro off): ACCEL_MODE bits 1:0 (2 low power, 3 low
  noise: on), GYRO_MODE bits 3:2 (3 low noise: on), TEMP_DIS bit 5.
- GYRO_CONFIG0 0x4F / ACCEL_CONFIG0 0x50 (reset 0x06): full scale in bits 7:5; ODR bits 3:0
  are stored but do not change what is read.
- TEMP 0x1D-0x1E, ACCEL X/Y/Z 0x1F-0x24, GYRO X/Y/Z 0x25-0x2A: big-endian int16; a 14-byte
  burst from 0x1D reads all. Encoded with the configured full scale, rounded to nearest (CPython
  and MicroPython round halves to even), saturating at +-32767. A sensor that is off reads
  -32768 (0x8000) on its axes: TDK's own driver treats that value as "no valid data"
  (INVALID_VALUE_FIFO); the temperature reads -32768 while both sensors are off or TEMP_DIS is set.
- INT_STATUS 0x2D bit 3 DATA_RDY reads 1 while accel or gyro is on.
Read-only registers written by the master keep their value, as on the part.

Scales: accel +-16/8/4/2 g = 2048/4096/8192/16384 LSB/g (g = 9.80665 m/s^2); gyro
+-2000/1000/500/250/125/62.5/31.25/15.625 dps = 16.4/32.8/65.5/131/262/524.3/1048.6/2097.2
LSB/(deg/s); temperature raw = (T - 25 degC) x 132.48.

Atomic updates: set_values() only computes the new data block; commit() copies it into `mem`
and must run where the master cannot read in between (under machine.disable_irq() on the Pico,
between two bus transactions on the host). on_master_write() allocates nothing, so the Pico can
call it from a hard IRQ handler.

>>> imu = Icm42688()
>>> imu.read(WHO_AM_I, 1)
b'G'
>>> imu.write(PWR_MGMT0, b"\\x0f")
>>> imu.set_values((0.0, 0.0, 9.80665), (0.0, 0.0, 0.0), 25.0)
>>> imu.commit()
>>> imu.read(TEMP_DATA1, 14).hex()  # +1 g on z at +-16 g = 2048 LSB
'0000000000000800000000000000'
"""

import math

WHO_AM_I = 0x75
WHO_AM_I_VALUE = 0x47
REG_BANK_SEL = 0x76
DEVICE_CONFIG = 0x11
TEMP_DATA1 = 0x1D
ACCEL_DATA_X1 = 0x1F
GYRO_DATA_X1 = 0x25
DATA_LEN = 14
INT_STATUS = 0x2D
PWR_MGMT0 = 0x4E
GYRO_CONFIG0 = 0x4F
ACCEL_CONFIG0 = 0x50
ADDRESS = 0x68

STANDARD_GRAVITY = 9.80665
ACCEL_LSB_PER_G = (2048.0, 4096.0, 8192.0, 16384.0)  # ACCEL_FS_SEL 0..3 (4..7 reserved: +-2 g)
GYRO_LSB_PER_DPS = (16.4, 32.8, 65.5, 131.0, 262.0, 524.3, 1048.6, 2097.2)
TEMP_LSB_PER_C = 132.48
RAW_INVALID = -32768
_DEG_PER_RAD = 180.0 / math.pi

_CONFIG_REGS = (PWR_MGMT0, GYRO_CONFIG0, ACCEL_CONFIG0)  # a module constant: iterating it allocates nothing
_RESET = ((PWR_MGMT0, 0x00), (GYRO_CONFIG0, 0x06), (ACCEL_CONFIG0, 0x06), (WHO_AM_I, WHO_AM_I_VALUE),
          (REG_BANK_SEL, 0x00), (DEVICE_CONFIG, 0x00), (INT_STATUS, 0x10))


def _saturate(x: float) -> int:
    r = round(x)
    return 32767 if r > 32767 else (-32767 if r < -32767 else r)


def _put16(buf, at: int, value: int) -> None:
    value &= 0xFFFF
    buf[at] = value >> 8
    buf[at + 1] = value & 0xFF


class Icm42688:
    def __init__(self) -> None:
        self.mem = bytearray(256)  # what the master reads: the Pico's I2CTarget serves this buffer
        self._staged = bytearray(DATA_LEN)
        self._committed = bytearray(DATA_LEN)  # the data block as last committed
        self._config = bytearray(256)  # the master-written registers as last seen
        self._values = None
        self.dirty = False  # config changed: the data block must be recomputed (service())
        self.lie_accel_z_mps2: float | None = None  # fault: a stuck z accelerometer
        self.reset()

    def reset(self) -> None:
        mem = self.mem
        for i in range(256):
            mem[i] = 0
        for reg, value in _RESET:
            mem[reg] = value
        self._config[:] = mem
        self._render()
        self._copy_in()

    # --- what the master sees ---------------------------------------------------------
    def accel_on(self) -> bool:
        return (self.mem[PWR_MGMT0] & 0x03) >= 2

    def gyro_on(self) -> bool:
        return (self.mem[PWR_MGMT0] & 0x0C) == 0x0C

    def write(self, reg: int, data) -> None:
        """A master write transaction (host glue): bytes land from reg on, auto-incrementing."""
        mem = self.mem
        for i in range(len(data)):
            mem[(reg + i) & 0xFF] = data[i]
        self.on_master_write()
        if self.service():
            self.commit()

    def read(self, reg: int, n: int) -> bytes:
        """A master read transaction (host glue)."""
        mem = self.mem
        return bytes(mem[(reg + i) & 0xFF] for i in range(n))

    def on_master_write(self) -> None:
        """After a master write: undo writes to read-only registers, note config changes.
        Allocation-free (safe in a hard IRQ handler)."""
        mem = self.mem
        committed = self._committed
        for i in range(DATA_LEN):
            mem[TEMP_DATA1 + i] = committed[i]
        mem[WHO_AM_I] = WHO_AM_I_VALUE
        mem[INT_STATUS] = self._config[INT_STATUS]
        config = self._config
        if mem[DEVICE_CONFIG] & 0x01:
            self.dirty = True
        for reg in _CONFIG_REGS:
            if mem[reg] != config[reg]:
                config[reg] = mem[reg]
                self.dirty = True

    def service(self) -> bool:
        """Main-loop follow-up of a master write: soft reset, or a new power/full-scale setting
        re-encodes the last values. Returns True when `commit()` is due."""
        if not self.dirty:
            return False
        self.dirty = False
        if self.mem[DEVICE_CONFIG] & 0x01:
            self.reset()
            return False
        self._config[INT_STATUS] = 0x18 if (self.accel_on() or self.gyro_on()) else 0x10
        self._render()
        return True

    # --- what the stream sets ---------------------------------------------------------
    def set_values(self, accel_mps2, gyro_radps, temperature_c: float) -> None:
        """Body-frame specific force (m/s^2), angular rate (rad/s), die temperature (degC).
        Computes the new data block; commit() publishes it."""
        self._values = (tuple(accel_mps2), tuple(gyro_radps), temperature_c)
        self._render()

    def _render(self) -> None:
        staged = self._staged
        mem = self.mem
        accel_on = self.accel_on()
        gyro_on = self.gyro_on()
        temp_on = (accel_on or gyro_on) and not (mem[PWR_MGMT0] & 0x20)
        if self._values is None:
            accel, gyro, temp_c = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 25.0
        else:
            accel, gyro, temp_c = self._values
        if self.lie_accel_z_mps2 is not None:
            accel = (accel[0], accel[1], self.lie_accel_z_mps2)
        a_scale = ACCEL_LSB_PER_G[min(mem[ACCEL_CONFIG0] >> 5, 3)] / STANDARD_GRAVITY
        g_scale = GYRO_LSB_PER_DPS[mem[GYRO_CONFIG0] >> 5] * _DEG_PER_RAD
        _put16(staged, 0, _saturate((temp_c - 25.0) * TEMP_LSB_PER_C) if temp_on else RAW_INVALID)
        for axis in range(3):
            _put16(staged, 2 + 2 * axis, _saturate(accel[axis] * a_scale) if accel_on else RAW_INVALID)
            _put16(staged, 8 + 2 * axis, _saturate(gyro[axis] * g_scale) if gyro_on else RAW_INVALID)

    def commit(self) -> None:
        """Publish the staged data block (call with the master locked out)."""
        self._copy_in()

    def _copy_in(self) -> None:
        mem = self.mem
        staged = self._staged
        committed = self._committed
        for i in range(DATA_LEN):
            committed[i] = staged[i]
            mem[TEMP_DATA1 + i] = staged[i]
        mem[INT_STATUS] = self._config[INT_STATUS]
