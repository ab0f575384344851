"""Writes tests/board/vectors.json: fixed byte vectors for the board-side codecs.

Every expected value here comes from the datasheet or protocol text and from references that
share no code with board/emulator: binascii.crc_hqx (CRC-16/CCITT-FALSE), the `cobs` package,
struct, and hand arithmetic written out below. Both the CPython tests and the MicroPython
(WebAssembly) run check board/emulator against this file. Re-run only when a protocol changes:
    .venv/bin/python tests/board/make_vectors.py
"""

import binascii
import json
import math
import struct
from pathlib import Path

from cobs import cobs


def crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def framed(payload: bytes) -> str:
    return (cobs.encode(payload + crc(payload).to_bytes(2, "big")) + b"\x00").hex()


def stream_framed(payload: bytes) -> str:
    return "00" + framed(payload)  # the stream puts a delimiter before each frame too


def be16(*values: int) -> str:
    return b"".join(struct.pack(">h", v) for v in values).hex()


def rf_reply(head: str) -> str:
    return (head + "%02X" % (sum(head.encode()) & 0xFF) + "\r").encode().hex()


vectors = {
    "crc16": [
        {"data": b"123456789".hex(), "crc": 0x29B1},  # the CRC catalogue's check value
        {"data": "", "crc": 0xFFFF},
        {"data": "00", "crc": crc(b"\x00")},
        {"data": bytes(range(256)).hex(), "crc": crc(bytes(range(256)))},
    ],
    "cobs": [  # (raw, encoded) pairs from the COBS paper's examples and the 254-byte block rule
        {"raw": raw.hex(), "encoded": cobs.encode(raw).hex()}
        for raw in (b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", b"\x11\x22\x33\x44",
                    b"\x11\x00\x00\x00", bytes(range(1, 255)), bytes(range(255)),
                    bytes(range(1, 256)), bytes(range(2, 256)) + b"\x00", bytes(range(3, 256)) + b"\x00\x01")
    ],
    "cobs_bad": ["00", "05112233", "0211000233", "ff" + "01" * 200],
    "rangefinder": [
        {"status": 0, "range_cm": 5950, "code": 0, "reply": rf_reply("v0005950")},  # sensors.md: v0005950D9
        {"status": 0, "range_cm": 0, "code": 0, "reply": rf_reply("v0000000")},
        {"status": 0, "range_cm": 9999999, "code": 0, "reply": rf_reply("v9999999")},
        {"status": 1, "range_cm": 0, "code": 301, "reply": rf_reply("R000E301")},
        {"status": 2, "range_cm": 123, "code": 0, "reply": rf_reply("R0000000")},
        {"status": 0, "range_cm": 10000000, "code": 0, "reply": rf_reply("R0000000")},  # beyond 7 digits
    ],
    # (PWR_MGMT0, GYRO_CONFIG0, ACCEL_CONFIG0, accel m/s^2, gyro rad/s, temp degC) -> 14 bytes from 0x1D
    "icm42688": [
        {"pwr": 0x00, "gyro_cfg": 0x06, "accel_cfg": 0x06, "accel": [0, 0, 9.80665], "gyro": [0, 0, 0],
         "temp_c": 30.0, "data": be16(-32768, -32768, -32768, -32768, -32768, -32768, -32768)},
        # +-16 g: 1 g = 2048 LSB; +-2000 dps: 16.4 LSB/dps, 100 dps = 1640; 35 degC: 10 x 132.48 = 1324.8
        {"pwr": 0x0F, "gyro_cfg": 0x06, "accel_cfg": 0x06, "accel": [0, -9.80665, 9.80665],
         "gyro": [math.radians(100.0), 0, -math.radians(100.0)], "temp_c": 35.0,
         "data": be16(1325, 0, -2048, 2048, 1640, 0, -1640)},
        # saturation at +-32767 (never the -32768 'invalid' code): 20 g on +-16 g; 2500 dps on +-2000
        {"pwr": 0x0F, "gyro_cfg": 0x06, "accel_cfg": 0x06, "accel": [196.133, -196.133, 0],
         "gyro": [math.radians(2500.0), math.radians(-2500.0), 0], "temp_c": 25.0,
         "data": be16(0, 32767, -32767, 0, 32767, -32767, 0)},
        # +-2 g (ACCEL_FS_SEL 011): 16384 LSB/g; +-250 dps (GYRO_FS_SEL 011): 131 LSB/dps, 10 dps = 1310
        {"pwr": 0x0F, "gyro_cfg": 0x66, "accel_cfg": 0x66, "accel": [4.903325, 0, 0],
         "gyro": [0, math.radians(10.0), 0], "temp_c": 24.0, "data": be16(-132, 8192, 0, 0, 0, 1310, 0)},
        # accel only (low noise), gyro off: gyro axes read -32768
        {"pwr": 0x03, "gyro_cfg": 0x06, "accel_cfg": 0x06, "accel": [0, 0, 1.0], "gyro": [1, 1, 1],
         "temp_c": 25.0, "data": be16(0, 0, 0, 209, -32768, -32768, -32768)},  # 2048/9.80665 = 208.8
    ],
    "lidarlite": [
        {"range_cm": 1234, "status": 0, "full_delay": "04d2"},
        {"range_cm": 4000, "status": 0, "full_delay": "0fa0"},
        {"range_cm": 70000, "status": 0, "full_delay": "ffff"},
        {"range_cm": 500, "status": 1, "full_delay": "0001"},  # no target reads 1 cm
    ],
    "engine_command": [  # HELLO-brief layout: type 01 | seq | flags | throttle | pitch | crc
        {"seq": 5, "armed": True, "throttle_e4": 2500, "pitch_e4": -1000,
         "frame": framed(struct.pack(">BHBHh", 1, 5, 1, 2500, -1000))},
        {"seq": 65535, "armed": False, "throttle_e4": 10000, "pitch_e4": 32767,
         "frame": framed(struct.pack(">BHBHh", 1, 65535, 0, 10000, 32767))},
        {"seq": 0, "armed": True, "throttle_e4": 0, "pitch_e4": 0,
         "frame": framed(struct.pack(">BHBHh", 1, 0, 1, 0, 0))},
    ],
    "engine_refused": [
        framed(struct.pack(">BHBHh", 1, 1, 1, 10001, 0)),  # throttle above 10000
        framed(struct.pack(">BHBHh", 2, 1, 1, 100, 0)),  # not a COMMAND
        framed(struct.pack(">BHBH", 1, 1, 1, 100)),  # short
        (cobs.encode(struct.pack(">BHBHh", 1, 1, 1, 100, 0) + b"\x12\x34") + b"\x00").hex(),  # bad CRC
    ],
    # after COMMAND seq 5 armed 2500 -1000 and the refused frames above: STATUS seq 0, contact
    "engine_status": {"contact": True, "fault": False,
                      "frame": framed(struct.pack(">BHBHhHH", 0x81, 0, 0x03, 2500, -1000, 5, 4))},
    "lidar_default_registers": {"02": 0x80, "04": 0x08, "12": 0x05},
    "stream": [
        {"kind": "sync", "seq": 7, "frame": stream_framed(bytes((1, 3)) + struct.pack(">I", 7))},
        {"kind": "hello_request", "frame": stream_framed(bytes((1, 4)))},
        {"kind": "fault", "device": 3, "fault": 2, "value": 0.0, "count": 16, "seed": 1234,
         "frame": stream_framed(bytes((1, 2)) + struct.pack(">BBfHH", 3, 2, 0.0, 16, 1234))},
        {"kind": "values", "step": 42, "time_us": 420000, "accel": [0.5, -0.25, 9.75],
         "gyro": [0.0, 0.125, -0.0625], "temp_c": 31.5, "rf_mm": 1234567, "rf_status": 0, "rf_code": 0,
         "lidar_mm": 12345, "lidar_status": 0, "contact": True, "fault": False, "lockstep": True,
         "frame": stream_framed(bytes((1, 1)) + struct.pack(">IQ7fIBHIBB", 42, 420000, 0.5, -0.25, 9.75, 0.0,
                                                      0.125, -0.0625, 31.5, 1234567, 0, 0, 12345, 0, 0x05))},
        {"kind": "ack", "fields": [9, 42, 3, 33, 4, 1, 21, 0],
         "frame": stream_framed(bytes((1, 0x81)) + struct.pack(">8I", 9, 42, 3, 33, 4, 1, 21, 0))},
        {"kind": "engine", "fields": [4, 5, True, 2500, -1000],
         "frame": stream_framed(bytes((1, 0x82)) + struct.pack(">IHBHh", 4, 5, 1, 2500, -1000))},
        {"kind": "hello", "name": "lander-emulator",
         "frame": stream_framed(bytes((1, 0x80)) + b"lander-emulator")},
    ],
}

Path(__file__).with_name("vectors.json").write_text(json.dumps(vectors, indent=1) + "\n")
