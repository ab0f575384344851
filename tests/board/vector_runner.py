"""Checks an emulator package against vectors.json. Runs on CPython and on MicroPython.

run(vectors, pkg) -> list of failure strings (empty: all passed). `pkg` is the emulator
package: board.emulator on CPython, emulator under MicroPython. It also replays SCENARIO (one
lockstep exchange through the Emulator) and returns its output bytes, so the two interpreters
can be compared byte for byte.
"""

import binascii


def _hex(data) -> str:
    return binascii.hexlify(bytes(data)).decode()


def _unhex(text: str) -> bytes:
    return binascii.unhexlify(text)


def run(vectors, pkg) -> list:
    framing = pkg.framing
    failures = []

    def check(name, got, want):
        if got != want:
            failures.append("%s: got %r, want %r" % (name, got, want))

    for v in vectors["crc16"]:
        check("crc16 %s" % v["data"][:16], framing.crc16(_unhex(v["data"])), v["crc"])
    for v in vectors["cobs"]:
        check("cobs_encode %s" % v["raw"][:16], _hex(framing.cobs_encode(_unhex(v["raw"]))), v["encoded"])
        check("cobs_decode %s" % v["raw"][:16], _hex(framing.cobs_decode(_unhex(v["encoded"]))), v["raw"])
    for bad in vectors["cobs_bad"]:
        try:
            framing.cobs_decode(_unhex(bad))
            failures.append("cobs_decode accepted %s" % bad[:16])
        except framing.FrameError:
            pass

    rfmod = pkg.rangefinder
    for v in vectors["rangefinder"]:
        rf = rfmod.Rangefinder()
        rf.set_measurement(v["range_cm"], v["status"], v["code"])
        check("rangefinder %r" % v, _hex(rf.feed(b"\x07garbage>M>Md1\r")), v["reply"])

    icm = pkg.icm42688
    for v in vectors["icm42688"]:
        imu = icm.Icm42688()
        imu.write(icm.GYRO_CONFIG0, bytes((v["gyro_cfg"], v["accel_cfg"])))
        imu.write(icm.PWR_MGMT0, bytes((v["pwr"],)))
        imu.set_values(v["accel"], v["gyro"], v["temp_c"])
        imu.commit()
        check("icm42688 %r" % v, _hex(imu.read(icm.TEMP_DATA1, 14)), v["data"])
        check("icm42688 who_am_i", imu.read(icm.WHO_AM_I, 1), b"\x47")

    ll = pkg.lidarlite
    for v in vectors["lidarlite"]:
        lidar = ll.LidarLite()
        lidar.set_range(v["range_cm"], v["status"])
        lidar.write(ll.ACQ_COMMAND, b"\x04", 0)
        check("lidar busy", lidar.read(ll.STATUS, 1), b"\x01")
        lidar.complete()
        check("lidar %r" % v, (lidar.read(ll.STATUS, 1), _hex(lidar.read(ll.FULL_DELAY_HIGH, 2))),
              (b"\x00", v["full_delay"]))
    lidar = ll.LidarLite()
    for reg, value in vectors["lidar_default_registers"].items():
        check("lidar register %s" % reg, lidar.read(int(reg, 16), 1)[0], value)

    eng = pkg.engine
    ctl = eng.EngineController()
    for v in vectors["engine_command"]:
        check("engine encode %r" % v, _hex(eng.encode_command(v["seq"], v["armed"], v["throttle_e4"],
                                                              v["pitch_e4"])), v["frame"])
    for v in vectors["engine_command"]:
        got = [(c.seq, c.armed, c.throttle_e4, c.pitch_e4) for c in ctl.feed(_unhex(v["frame"]))]
        check("engine decode %r" % v, got, [(v["seq"], v["armed"], v["throttle_e4"], v["pitch_e4"])])
    ctl = eng.EngineController()
    ctl.feed(_unhex(vectors["engine_command"][0]["frame"]))
    for bad in vectors["engine_refused"]:
        check("engine refuses %s" % bad[:16], ctl.feed(_unhex(bad)), [])
    s = vectors["engine_status"]
    check("engine status", _hex(ctl.status_frame(s["contact"], s["fault"])), s["frame"])

    st = pkg.stream
    for v in vectors["stream"]:
        kind = v["kind"]
        if kind == "sync":
            msg = st.Sync(v["seq"])
            frame = st.encode_sync(v["seq"])
        elif kind == "hello_request":
            msg = st.HelloRequest()
            frame = st.encode_hello_request()
        elif kind == "fault":
            msg = st.Fault(v["device"], v["fault"], v["value"], v["count"], v["seed"])
            frame = st.encode_fault(msg)
        elif kind == "values":
            msg = st.Values(v["step"], v["time_us"], v["accel"], v["gyro"], v["temp_c"], v["rf_mm"],
                            v["rf_status"], v["rf_code"], v["lidar_mm"], v["lidar_status"],
                            v["contact"], v["fault"], v["lockstep"])
            frame = st.encode_values(msg)
        elif kind == "ack":
            msg = st.Ack(*v["fields"])
            frame = st.encode_ack(msg)
        elif kind == "engine":
            msg = st.EngineReport(*v["fields"])
            frame = st.encode_engine(msg)
        else:
            msg = st.Hello(v["name"])
            frame = st.encode_hello(v["name"])
        check("stream encode %s" % kind, _hex(frame), v["frame"])
        check("stream decode %s" % kind, st.decode_frame(_unhex(v["frame"])), msg)
    return failures + irq_paths_allocate(pkg)


def irq_paths_allocate(pkg) -> list:
    """Under MicroPython: the end-of-write handlers run with the heap locked, as in a hard IRQ
    (an allocation there raises MemoryError and would kill the firmware). [] on CPython."""
    try:
        import micropython
    except ImportError:
        return []
    emu = pkg.core.Emulator()
    imu, lidar = emu.imu, emu.lidar
    imu.mem[0x4E] = 0x0F  # what a master write leaves in mem before the IRQ
    imu.mem[0x20] = 0x55
    lidar.mem[0x00] = 0x04
    failures = []
    allocated = False  # a local: setting it under the lock allocates nothing
    micropython.heap_lock()
    try:
        imu.on_master_write()
        lidar.on_master_write(123456)
    except MemoryError:
        allocated = True
    finally:
        micropython.heap_unlock()
    if allocated:
        failures.append("an end-of-write handler allocates")
    if not (imu.dirty and lidar.busy and imu.mem[0x20] != 0x55):
        failures.append("the end-of-write handlers did not act")
    return failures


def scenario(pkg) -> str:
    """One lockstep exchange through the Emulator; returns every byte it wrote, per line."""
    st = pkg.stream
    emu = pkg.core.Emulator(name="vector-run")
    out = []
    emu.i2c_write(0x68, 0x4E, b"\x0f")
    for step in range(6):
        values = st.Values(step, step * 10000, (0.01 * step, -0.02, 1.62 + 0.001 * step),
                           (0.001, -0.002 * step, 0.0), 20.0 + step, 1500000 - 5555 * step,
                           0 if step != 3 else 1, 301, 39000 - 1000 * step, step == 5, step >= 4,
                           False, True)
        emu.from_stream(st.encode_values(values))
        emu.from_rangefinder(b">Md1\r")
        emu.from_engine(pkg.engine.encode_command(step, step > 1, 1000 * step, -50 * step))
        emu.i2c_write(0x62, 0x00, b"\x04")
        if step == 2:
            emu.from_stream(st.encode_fault(st.Fault(4, 2, 0.0, 12, 99)))
            emu.from_engine(b"\x01\x02\x03\x00")
        emu.from_stream(st.encode_sync(100 + step))
        out.append("imu=" + _hex(emu.i2c_read(0x68, 0x1D, 14)))
        out.append("lidar=" + _hex(emu.i2c_read(0x62, 0x0F, 2)))
    out.append("stream=" + _hex(emu.take_stream()))
    out.append("rangefinder=" + _hex(emu.take_rangefinder()))
    out.append("engine=" + _hex(emu.take_engine()))
    return "\n".join(out)
