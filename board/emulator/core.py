"""The emulator: four devices and the sensor stream, behind one object the glue drives.

The glue (board/pico/main.py on the Pico, hil/emulator_host.py on a laptop) moves bytes and
nothing else: it hands received bytes to from_stream / from_rangefinder / from_engine, calls
poll(now_us) often, writes out what take_stream / take_rangefinder / take_engine return, and
serves I2C from `imu.mem` / `lidar.mem` (Pico: I2CTarget mem mode) or i2c_read / i2c_write
(host: the bridge). Times are microseconds on a clock that wraps at 2**30 (MicroPython's
ticks_us); the host masks its monotonic clock the same way.

Every change of a register block the master can read happens inside `critical`: a pair
(enter() -> state, exit(state)); the Pico passes machine.disable_irq / machine.enable_irq, the
host (single-threaded: updates fall between bus transactions) passes nothing.

Clocking: VALUES frames with the lockstep flag make the rig's time_us the emulator's clock (the
engine STATUS goes out when that time crosses a 20 ms boundary; a LIDAR-Lite measurement completes
at the next VALUES), so a lockstep run is deterministic. Without the flag (the bench, or no rig),
poll(now_us) clocks STATUS at 50 Hz and completes measurements after busy_us.
"""

from . import stream as st
from .engine import STATUS_PERIOD_US, EngineController
from .icm42688 import ADDRESS as IMU_ADDRESS
from .icm42688 import Icm42688
from .lidarlite import ADDRESS as LIDAR_ADDRESS
from .lidarlite import TICKS_MASK, LidarLite
from .rangefinder import Rangefinder

ENOANSWER = 121  # EREMOTEIO: what smbus2 raises when no device acknowledges


def _no_irq_off():
    return 0


def _no_irq_on(state) -> None:
    pass


def garbage(count: int, seed: int) -> bytes:
    """A reproducible run of line noise (xorshift16): the same FAULT gives the same bytes on
    the host and on the Pico."""
    x = seed & 0xFFFF or 0xACE1
    out = bytearray(count)
    for i in range(count):
        x ^= (x << 7) & 0xFFFF
        x ^= x >> 9
        x ^= (x << 8) & 0xFFFF
        out[i] = x & 0xFF
    return bytes(out)


class Emulator:
    def __init__(self, name: str = "lander-emulator", critical=None, drain=None) -> None:
        self.imu = Icm42688()
        self.lidar = LidarLite()
        self.rangefinder = Rangefinder()
        self.engine = EngineController()
        self.stream = st.StreamDecoder()
        self.name = name
        self._irq_off, self._irq_on = critical if critical else (_no_irq_off, _no_irq_on)
        self._drain = drain  # reads every device line before an ACK (glue-provided)
        self._to_stream = bytearray()
        self._to_rangefinder = bytearray()
        self._to_engine = bytearray()
        self.lockstep = False
        self.last_step = 0
        self.contact = False
        self.controller_fault = False
        self.engine_garbage_bytes = 0
        self.unexpected_frames = 0  # well-formed frames of the emulator->laptop kinds
        self.imu_answering = True
        self.lidar_answering = True
        self.rangefinder_unplugged = False
        self.engine_unplugged = False
        self.engine_silent = False
        self.engine_lie_contact = None
        self._status_slot = -1
        self._status_last_us = None
        self._to_stream += st.encode_hello(name)

    def set_drain(self, drain) -> None:
        """The glue's function that feeds every byte already received on the device lines."""
        self._drain = drain

    # --- byte queues the glue writes out ----------------------------------------------
    def take_stream(self) -> bytes:
        out = bytes(self._to_stream)
        self._to_stream = bytearray()
        return out

    def take_rangefinder(self) -> bytes:
        out = bytes(self._to_rangefinder)
        self._to_rangefinder = bytearray()
        return out

    def take_engine(self) -> bytes:
        out = bytes(self._to_engine)
        self._to_engine = bytearray()
        return out

    # --- lines in ----------------------------------------------------------------------
    def from_rangefinder(self, data) -> None:
        if self.rangefinder_unplugged:
            return
        reply = self.rangefinder.feed(data)
        if reply:
            self._to_rangefinder += reply

    def from_engine(self, data) -> None:
        if self.engine_unplugged:
            return
        for cmd in self.engine.feed(data):
            self._to_stream += st.encode_engine(st.EngineReport(
                self.engine.frames & 0xFFFFFFFF, cmd.seq, cmd.armed, cmd.throttle_e4, cmd.pitch_e4))

    def from_stream(self, data) -> None:
        for msg in self.stream.feed(data):
            if isinstance(msg, st.Values):
                self._apply_values(msg)
            elif isinstance(msg, st.Sync):
                if self._drain is not None:
                    self._drain()
                self._to_stream += st.encode_ack(self.ack(msg.seq))
            elif isinstance(msg, st.Fault):
                self._apply_fault(msg)
            elif isinstance(msg, st.HelloRequest):
                self._to_stream += st.encode_hello(self.name)
            else:
                self.unexpected_frames += 1

    def ack(self, seq: int) -> st.Ack:
        m = 0xFFFFFFFF
        return st.Ack(seq, self.last_step, self.rangefinder.requests & m,
                      self.rangefinder.reply_bytes & m, self.engine.frames & m,
                      self.engine.bad_frames & m, self.engine.status_sent & m,
                      (self.stream.bad_frames + self.unexpected_frames) & m)

    # --- I2C, host side (the Pico's I2CTarget serves imu.mem / lidar.mem itself) --------
    def i2c_write(self, addr: int, reg: int, data, now_us: int = 0) -> int:
        """0, or the errno the bus reports (121: nobody acknowledged)."""
        if addr == IMU_ADDRESS and self.imu_answering:
            self.imu.write(reg, data)
            return 0
        if addr == LIDAR_ADDRESS and self.lidar_answering:
            self.lidar.write(reg, data, now_us)
            return 0
        return ENOANSWER

    def i2c_read(self, addr: int, reg: int, n: int):
        """bytes, or None when nobody acknowledges."""
        if addr == IMU_ADDRESS and self.imu_answering:
            return self.imu.read(reg, n)
        if addr == LIDAR_ADDRESS and self.lidar_answering:
            return self.lidar.read(reg, n)
        return None

    # --- time ----------------------------------------------------------------------------
    def poll(self, now_us: int) -> None:
        """Call often (every main-loop pass / selector wake-up)."""
        if self.imu.dirty:
            self.poll_imu()
        if self.lockstep:
            return
        if self.lidar.due(now_us):
            self._complete_measurement()
        last = self._status_last_us
        if last is None or ((now_us - last) & TICKS_MASK) >= STATUS_PERIOD_US:
            # keep the 50 Hz grid unless the loop fell more than a period behind
            behind = last is None or ((now_us - last) & TICKS_MASK) >= 2 * STATUS_PERIOD_US
            self._status_last_us = now_us if behind else (last + STATUS_PERIOD_US) & TICKS_MASK
            self._send_status()

    def _complete_measurement(self) -> None:
        state = self._irq_off()
        try:
            self.lidar.complete()
        finally:
            self._irq_on(state)

    def _send_status(self) -> None:
        if self.engine_silent or self.engine_unplugged:
            return
        contact = self.contact if self.engine_lie_contact is None else self.engine_lie_contact
        self._to_engine += self.engine.status_frame(contact, self.controller_fault)

    # --- the stream's messages -----------------------------------------------------------
    def _apply_values(self, v) -> None:
        self.last_step = v.step
        self.imu.set_values(v.accel_mps2, v.gyro_radps, v.temperature_c)  # computed outside...
        state = self._irq_off()
        try:
            self.imu.commit()  # ...published atomically
            self.lidar.set_range((v.lidar_range_mm + 5) // 10, v.lidar_status)
            self.lidar.complete()
        finally:
            self._irq_on(state)
        self.rangefinder.set_measurement((v.rangefinder_range_mm + 5) // 10, v.rangefinder_status,
                                         v.rangefinder_error_code)
        self.contact = v.contact
        self.controller_fault = v.controller_fault
        self.lockstep = v.lockstep
        if v.lockstep:
            slot = v.time_us // STATUS_PERIOD_US
            if slot != self._status_slot:
                self._status_slot = slot
                self._send_status()
        else:
            self._status_slot = -1

    def _apply_fault(self, f) -> None:
        devices = (st.DEV_IMU, st.DEV_LIDAR, st.DEV_RANGEFINDER, st.DEV_ENGINE) \
            if f.device == st.DEV_ALL else (f.device,)
        for device in devices:
            self._fault_one(device, f)

    def _fault_one(self, device: int, f) -> None:
        kind = f.kind
        if device == st.DEV_IMU:
            if kind in (st.FAULT_CLEAR, st.FAULT_LIE):
                self.imu_answering = True
                self.imu.lie_accel_z_mps2 = f.value if kind == st.FAULT_LIE else None
                self.imu.dirty = True
                self.poll_imu()
            elif kind in (st.FAULT_SILENT, st.FAULT_UNPLUG):
                self.imu_answering = False
        elif device == st.DEV_LIDAR:
            if kind == st.FAULT_CLEAR:
                self.lidar_answering = True
                self.lidar.lie_cm = None
            elif kind == st.FAULT_LIE:
                cm = int(round(f.value * 100.0))
                self.lidar.lie_cm = 0 if cm < 0 else (65535 if cm > 65535 else cm)
            elif kind in (st.FAULT_SILENT, st.FAULT_UNPLUG):
                self.lidar_answering = False
        elif device == st.DEV_RANGEFINDER:
            rf = self.rangefinder
            if kind == st.FAULT_CLEAR:
                rf.silent = False
                rf.lie_cm = None
                self.rangefinder_unplugged = False
            elif kind == st.FAULT_SILENT:
                rf.silent = True
            elif kind == st.FAULT_LIE:
                cm = int(round(f.value * 100.0))
                rf.lie_cm = 0 if cm < 0 else (9999999 if cm > 9999999 else cm)
            elif kind == st.FAULT_UNPLUG:
                self.rangefinder_unplugged = True
                self._to_rangefinder = bytearray()
            elif kind == st.FAULT_GARBAGE and not self.rangefinder_unplugged:
                self._to_rangefinder += garbage(f.count, f.seed)
                rf.count_written(f.count)
        elif device == st.DEV_ENGINE:
            if kind == st.FAULT_CLEAR:
                self.engine_silent = False
                self.engine_lie_contact = None
                self.engine_unplugged = False
            elif kind == st.FAULT_SILENT:
                self.engine_silent = True
            elif kind == st.FAULT_LIE:
                self.engine_lie_contact = f.value != 0.0
            elif kind == st.FAULT_UNPLUG:
                self.engine_unplugged = True
                self._to_engine = bytearray()
            elif kind == st.FAULT_GARBAGE and not self.engine_unplugged:
                self._to_engine += garbage(f.count, f.seed)
                self.engine_garbage_bytes += f.count

    def poll_imu(self) -> None:
        """Follow up a master write to the IMU (power, full scale, soft reset)."""
        state = self._irq_off()
        try:
            if self.imu.service():
                self.imu.commit()
        finally:
            self._irq_on(state)
