"""Pico sensor emulator firmware (MicroPython >= 1.26, Raspberry Pi Pico / RP2040).

Thin glue around the `emulator` package (board/emulator copied to the device root as
`emulator/`): it moves bytes between the pins and emulator.core.Emulator and owns nothing else.
- I2C0 target 0x68: TDK ICM-42688-P; I2C1 target 0x62: Garmin LIDAR-Lite v3HP. Both in mem
  mode (the master reads `imu.mem` / `lidar.mem` directly); a hard IRQ at the end of each master
  write lets the core react (start a measurement, undo writes to read-only registers) before
  the next transaction. The core publishes new register blocks under machine.disable_irq(), so
  the master never reads half an update.
- UART0: the km-class laser rangefinder (ASCII); UART1: the engine controller (COBS frames).
- USB serial: the sensor stream to/from the laptop (sys.stdin.buffer / sys.stdout.buffer after
  micropython.kbd_intr(-1), so a 0x03 byte in a frame is data, not Ctrl-C).
Pins: the PINS table below, and board/README.md for the wiring to the Pi.
"""

import select
import sys
import time

import machine
import micropython
from emulator.core import Emulator
from emulator.icm42688 import ADDRESS as IMU_ADDRESS
from emulator.lidarlite import ADDRESS as LIDAR_ADDRESS
from emulator.lidarlite import TICKS_MASK
from machine import UART, I2CTarget, Pin

# GPIO numbers (physical pin in the comment). Pico I2C0 and I2C1 both go to the Pi's I2C1 bus.
PINS = {
    "rangefinder_tx": 0,  # pin 1, UART0 TX -> Pi GPIO15 RXD (pin 10), /dev/serial0
    "rangefinder_rx": 1,  # pin 2, UART0 RX <- Pi GPIO14 TXD (pin 8)
    "engine_tx": 4,  # pin 6, UART1 TX -> Pi GPIO5 RXD3 (pin 29), dtoverlay=uart3
    "engine_rx": 5,  # pin 7, UART1 RX <- Pi GPIO4 TXD3 (pin 7)
    "imu_sda": 8,  # pin 11, I2C0 SDA <-> Pi GPIO2 SDA1 (pin 3)
    "imu_scl": 9,  # pin 12, I2C0 SCL <-> Pi GPIO3 SCL1 (pin 5)
    "lidar_sda": 6,  # pin 9, I2C1 SDA <-> Pi GPIO2 SDA1 (pin 3)
    "lidar_scl": 7,  # pin 10, I2C1 SCL <-> Pi GPIO3 SCL1 (pin 5)
    "safe_mode": 15,  # pin 20: jumper to GND at boot = do not start (keeps the REPL for mpremote)
}
RANGEFINDER_BAUD = 115200
ENGINE_BAUD = 115200

emu = Emulator(name="lander-emulator pico", critical=(machine.disable_irq, machine.enable_irq))
imu = emu.imu
lidar = emu.lidar


_BOOT_TICKS = time.ticks_us()


def ticks_us() -> int:
    """The core's clock: microseconds since boot, modulo 2**30 (ticks_us' own period)."""
    return time.ticks_diff(time.ticks_us(), _BOOT_TICKS) & TICKS_MASK


def end_of_write(target) -> None:
    """Hard IRQ after any master write, to either target. Both follow-ups are allocation-free
    and do nothing when their map did not change, so one handler serves both (it does not
    matter which target fired, nor whether a port shares one IRQ object between targets)."""
    imu.on_master_write()
    lidar.on_master_write(ticks_us())


TARGETS = {
    # key: (I2C block, address, backing map, SDA, SCL)
    "imu": (0, IMU_ADDRESS, imu.mem, PINS["imu_sda"], PINS["imu_scl"]),
    "lidar": (1, LIDAR_ADDRESS, lidar.mem, PINS["lidar_sda"], PINS["lidar_scl"]),
}


def place_target(targets: dict, key: str, answering: bool) -> None:
    """A device told to stop answering has no target on the bus at all: the master sees NACK."""
    if answering and key not in targets:
        i2c_id, addr, mem, sda, scl = TARGETS[key]
        target = I2CTarget(i2c_id, addr, mem=mem, mem_addrsize=8, scl=Pin(scl), sda=Pin(sda))
        target.irq(end_of_write, trigger=I2CTarget.IRQ_END_WRITE, hard=True)
        targets[key] = target
    elif not answering and key in targets:
        targets.pop(key).deinit()


def main() -> None:
    if Pin(PINS["safe_mode"], Pin.IN, Pin.PULL_UP).value() == 0:
        print("safe mode: emulator not started")
        return
    micropython.kbd_intr(-1)
    rangefinder = UART(0, baudrate=RANGEFINDER_BAUD, tx=Pin(PINS["rangefinder_tx"]),
                       rx=Pin(PINS["rangefinder_rx"]), rxbuf=256)
    engine = UART(1, baudrate=ENGINE_BAUD, tx=Pin(PINS["engine_tx"]), rx=Pin(PINS["engine_rx"]),
                  rxbuf=256)
    targets = {}

    def drain() -> None:  # before an ACK: what the Pi already sent on the UARTs
        if rangefinder.any():
            emu.from_rangefinder(rangefinder.read() or b"")
        if engine.any():
            emu.from_engine(engine.read() or b"")

    emu.set_drain(drain)
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    incoming = bytearray()
    while True:
        place_target(targets, "imu", emu.imu_answering)
        place_target(targets, "lidar", emu.lidar_answering)
        while poller.poll(0) and len(incoming) < 512:
            incoming += stdin.read(1) or b""
        if incoming:
            emu.from_stream(incoming)
            incoming = bytearray()
        drain()
        emu.poll(ticks_us())
        out = emu.take_rangefinder()
        if out:
            rangefinder.write(out)
        out = emu.take_engine()
        if out:
            engine.write(out)
        out = emu.take_stream()
        if out:
            stdout.write(out)


main()
