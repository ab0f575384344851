"""TLM-001..006: packets from the dictionary, authenticated commands, links, the flight log."""

import os
import signal
import struct
import subprocess
import sys
import time

import pytest
import serial
from cobs import cobs as reference_cobs
from hypothesis import given
from hypothesis import strategies as st

from flight.telemetry import cobs
from flight.telemetry.commands import (
    CommandGate,
    KeyFileError,
    Rejection,
    Telecommand,
    build_command,
    load_key,
)
from flight.telemetry.dictionary import load, parse
from flight.telemetry.flightlog import FlightLogWriter, read_log
from flight.telemetry.links import SerialLink, UdpLink
from flight.telemetry.packets import TelemetryEncoder, TelemetryError, decode_tm

D = load()
KEY = b"k" * 32

STRUCT_VALUES = {
    "d": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "f": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "B": st.integers(0, 255), "H": st.integers(0, 65535), "I": st.integers(0, 2**32 - 1),
}


@given(st.data())
def test_tlm001_housekeeping_encode_decode_is_identity(data):
    """TLM-001: encode then decode gives back every housekeeping channel exactly."""
    values = {c.name: data.draw(STRUCT_VALUES[c.type]) for c in D.channels}
    t = data.draw(st.floats(0, 1e6))
    out = decode_tm(TelemetryEncoder().housekeeping(t, values))
    assert out.kind == "housekeeping" and out.time_s == t and out.values == values
    assert out.apid == D.apids["housekeeping"]


@given(st.sampled_from(sorted(D.events)), st.data())
def test_tlm001_every_event_round_trips(name, data):
    e = D.events[name]
    args = tuple(data.draw(STRUCT_VALUES[c]) for c in e.args)
    out = decode_tm(TelemetryEncoder().event(2.0, name, *args))
    assert (out.kind, out.name, out.values) == ("event", name, args)


def test_tlm001_verification_and_ping_round_trip_and_sequence_counts():
    enc = TelemetryEncoder()
    v = decode_tm(enc.verification(1.0, 2, 0xDEADBEEF, D.rejections["replayed"]))
    assert v.values == (2, 0xDEADBEEF, D.rejections["replayed"]) and v.name == "replayed"
    assert decode_tm(enc.ping_reply(1.0)).kind == "ping"
    seqs = [decode_tm(enc.event(0.0, "PHASE", 1)).seq for _ in range(3)]
    assert seqs == [0, 1, 2]


@given(st.binary(max_size=300))
def test_tlm002_any_bytes_decode_to_a_packet_or_our_error(raw):
    """TLM-002: the ground decoder raises nothing but TelemetryError."""
    try:
        decode_tm(raw)
    except TelemetryError:
        pass


@given(st.binary(max_size=300))
def test_tlm002_any_bytes_to_the_command_gate_give_a_command_or_a_rejection(raw):
    result = CommandGate(KEY).check(raw)
    assert isinstance(result, (Telecommand, Rejection))


def test_tlm002_dictionary_rejects_duplicates():
    from importlib import resources

    text = resources.files("flight.telemetry").joinpath("dictionary.toml").read_text()
    with pytest.raises(ValueError, match="duplicate event id"):
        parse(text.replace("id = 2\n", "id = 1\n", 1))


@given(st.sampled_from(["PING", "ARM", "START_DESCENT", "ABORT"]), st.integers(1, 2**32 - 1))
def test_tlm003_authentic_commands_accepted_once(name, seq):
    """TLM-003: a command with the right key and a new sequence is accepted; the same packet
    again is a replay."""
    gate = CommandGate(KEY)
    pkt = build_command(KEY, name, seq)
    first = gate.check(pkt)
    assert isinstance(first, Telecommand) and first.name == name and first.sequence == seq
    again = gate.check(pkt)
    assert isinstance(again, Rejection) and again.code == D.rejections["replayed"]


@given(st.integers(0, 200), st.integers(1, 255))
def test_tlm003_tampered_commands_refused(position, flip):
    """TLM-003: flipping any bit anywhere in the packet gets it refused (CRC or HMAC)."""
    pkt = bytearray(build_command(KEY, "SET_PARAM", 7, 0, 2.5))
    position %= len(pkt)
    pkt[position] ^= flip
    result = CommandGate(KEY).check(bytes(pkt))
    assert isinstance(result, Rejection)


def test_tlm003_wrong_key_old_sequence_and_bad_arguments_refused():
    gate = CommandGate(KEY, last_sequence=10)
    assert gate.check(build_command(b"x" * 32, "ARM", 11)).code == D.rejections["unauthenticated"]
    assert gate.check(build_command(KEY, "ARM", 10)).code == D.rejections["replayed"]
    assert gate.check(build_command(KEY, "SET_PARAM", 12, 0, float("nan"))).code == D.rejections["bad_argument"]
    assert CommandGate(None).check(build_command(KEY, "ARM", 1)).code == D.rejections["unauthenticated"]
    assert gate.rejected == 3 and gate.accepted == 0


def test_tlm003_key_file_must_be_private(tmp_path):
    key = tmp_path / "command.key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(str(key))
    key.chmod(0o600)
    assert load_key(str(key)) == b"0123456789abcdef0123456789abcdef"
    with pytest.raises(KeyFileError, match="does not exist|No such file"):
        load_key(str(tmp_path / "missing.key"))


@given(st.binary(max_size=1200))
def test_tlm004_cobs_matches_the_reference_and_round_trips(data):
    assert cobs.encode(data) == reference_cobs.encode(data)
    assert cobs.decode(cobs.encode(data)) == data
    assert 0 not in cobs.encode(data)


@given(st.binary(max_size=40))
def test_tlm004_cobs_decode_errors_agree_with_the_reference(frame):
    try:
        ref = reference_cobs.decode(frame)
    except reference_cobs.DecodeError:
        ref = None
    try:
        ours = cobs.decode(frame)
    except cobs.CobsError:
        ours = None
    assert ours == ref


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    port = serial.Serial(os.ttyname(slave), 921600, timeout=0)
    yield master, port
    port.close()
    os.close(master)
    os.close(slave)


def read_frames(master_fd, timeout=2.0):
    import select

    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master_fd], [], [], 0.05)
        if r:
            buf += os.read(master_fd, 4096)
            if buf.endswith(b"\0"):
                break
    return [cobs.decode(f) for f in buf.split(b"\0") if f]


def test_tlm005_serial_link_over_a_real_pty(pty_pair):
    """TLM-005: packets go out COBS-framed; garbage and torn frames are counted and dropped;
    the good packets around them arrive whole."""
    master, port = pty_pair
    link = SerialLink(port)
    enc = TelemetryEncoder()
    pkt = enc.event(1.0, "PHASE", 2)
    link.send(pkt)
    assert read_frames(master) == [pkt]
    cmd = build_command(KEY, "ARM", 1)
    os.write(master, b"\0" + cobs.encode(cmd) + b"\0" + b"\x05\x01\x00" + cobs.encode(cmd)[:5])
    time.sleep(0.05)
    got = link.receive()
    assert got == [cmd] and link.bad_frames == 1
    os.write(master, cobs.encode(cmd)[5:] + b"\0")  # the rest of the torn frame
    time.sleep(0.05)
    assert link.receive() == [cmd]


def test_tlm005_unplugged_serial_port_is_counted_not_fatal(pty_pair):
    _, port = pty_pair
    link = SerialLink(port)
    port.close()  # the cable is pulled
    link.send(b"abc")
    assert link.receive() == []
    assert link.io_errors == 2


def test_tlm005_udp_link_on_loopback():
    ground = UdpLink(("127.0.0.1", 0), ("127.0.0.1", 9))
    flight = UdpLink(("127.0.0.1", 0), ground.address)
    ground.remote = flight.address
    flight.send(b"telemetry")
    ground.send(b"command")
    time.sleep(0.05)
    assert ground.receive() == [b"telemetry"] and flight.receive() == [b"command"]
    flight.close()
    ground.close()


WRITER = r"""
import sys, time
from flight.telemetry.flightlog import FlightLogWriter
w = FlightLogWriter(sys.argv[1], flush_period_s=0.0 if sys.argv[2] == "0" else 3600)
i = 0
while True:
    w.append(b"record-%08d-" % i + bytes(i % 97))
    i += 1
    if i % 25 == 0:
        w.flush()
        print(w.flushed_records, flush=True)
"""


@pytest.mark.parametrize("kill_after", [1, 7, 40])
def test_tlm006_flight_log_survives_kill_9(tmp_path, kill_after):
    """TLM-006: kill -9 a writer mid-stream; every record up to the last flush reads back,
    in order and intact; a torn tail is detected, not misread."""
    path = str(tmp_path / "flight.log")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path, "1"], stdout=subprocess.PIPE, text=True)
    flushed = 0
    for _ in range(kill_after):
        flushed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    contents = read_log(path)
    assert len(contents.records) >= flushed
    for i, rec in enumerate(contents.records):
        assert rec == b"record-%08d-" % i + bytes(i % 97)
    with open(path, "ab") as fh:  # a record torn by power loss mid-write
        fh.write(struct.pack(">2sHI", b"LR", 500, 0) + b"partial")
    torn = read_log(path)
    assert torn.records == contents.records and "torn record" in torn.problem and torn.torn_tail_bytes == 15


def test_tlm006_corrupted_record_stops_the_reader_with_a_reason(tmp_path):
    path = str(tmp_path / "f.log")
    w = FlightLogWriter(path)
    for i in range(5):
        w.append(bytes([i]) * 10)
    w.close()
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    data[3 * 18 + 12] ^= 0xFF  # a payload byte of the fourth record
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    out = read_log(path)
    assert len(out.records) == 3 and "CRC mismatch" in out.problem


def test_tlm003_without_a_key_file_the_flight_refuses_every_command():
    """TLM-003: no key configured means no command gets in, whatever key the sender used."""
    from flight import wiring

    system = wiring.build({"executive": {"clock": "lockstep"}})
    for key in (KEY, b"no key configured: " + bytes(16), bytes(32)):
        result = system.commands.handle(build_command(key, "ARM", 1))
        assert isinstance(result, Rejection) and result.code == D.rejections["unauthenticated"]
    assert system.commands.executed == []
