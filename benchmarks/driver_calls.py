"""Benchmark: what one driver call costs, each driver against a device played in this process.

Run:  .venv/bin/python benchmarks/driver_calls.py

Serial drivers over real ptys (the device end answers between ticks); I2C drivers over the
bridge (a unix socket) to the register-array test server in a thread. Each "tick" is what the
estimation / guidance task does: read() until None, or command() + closed(). Reported per
call: median, p99 and worst, in microseconds. On the board the I2C figures are the bus's
(400 kHz: ~0.4 ms for the IMU's 14-byte burst); here they are the socket round trip.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flight.devices.engine_link import EngineLink, EngineStatus, encode_status, frame
from flight.devices.i2c_bridge import BridgeBus
from flight.devices.icm42688 import Icm42688
from flight.devices.lidarlite import LidarLite
from flight.devices.rangefinder import REQUEST, Rangefinder
from tests.driver_helpers import FlightClock, PtyDevice
from tests.i2c_server import I2cTestServer, ImuModel, LidarModel

TICKS = 3000


def timed(fn, times, *args):
    t0 = time.perf_counter_ns()
    out = fn(*args)
    times.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def read_loop(driver, times):
    while timed(driver.read, times) is not None:
        pass


def report(name, times) -> str:
    times = sorted(times)
    p99 = times[int(0.99 * (len(times) - 1))]
    return f"{name:<12} calls={len(times):>6}  p50_us={statistics.median(times):7.1f}  p99_us={p99:7.1f}  max_us={times[-1]:8.1f}"


def main() -> int:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        clock = FlightClock()
        device = PtyDevice(Path(tmp) / "lrf")
        lrf = Rangefinder(str(device.path), clock, rate_hz=10.0)
        times: list[float] = []
        for _ in range(TICKS):
            clock.advance(0.01)
            got = device.read()
            for _ in range(got.count(REQUEST)):
                device.write(b"v0005950D9\r")
            read_loop(lrf, times)
        lines.append(report("rangefinder", times))
        lrf.close()
        device.close()

        clock = FlightClock()
        device = PtyDevice(Path(tmp) / "engine")
        link = EngineLink(str(device.path), clock)
        times = []
        for i in range(TICKS):
            clock.advance(0.01)
            device.read()
            if i % 2 == 0:
                device.write(frame(encode_status(EngineStatus(i & 0xFFFF, False, False, False, 0, 0, 0, 0))))
            if i % 10 == 0:
                timed(link.command, times, 0.5, 0.01)
            timed(link.closed, times)
        lines.append(report("engine_link", times))
        link.close()
        device.close()

        server = I2cTestServer(Path(tmp) / "i2c.sock", {0x62: LidarModel(), 0x68: ImuModel()}).start()
        bus = BridgeBus(server.path, timeout_s=0.05)
        for name, driver in (("lidarlite", LidarLite(bus, clock)), ("icm42688", Icm42688(bus, clock))):
            times = []
            for _ in range(TICKS):
                clock.advance(0.01)
                read_loop(driver, times)
            lines.append(report(name, times))
        bus.close()
        server.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
