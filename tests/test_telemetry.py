"""TLM-001..006: packets from the dictionary, authenticated commands, links, the flight log."""

import os
import signal
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
from flight.telemetry.flightlog import BOOT, TM, FlightLog, log_files, parse_log, read_log, record
from flight.telemetry.links import SerialLink, UdpLink
from flight.telemetry.packets import TelemetryEncoder, TelemetryError, decode_tm

D = load()
KEY = b"k" * 32

STRUCT_VALUES = {
    "d": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "f": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "B": st.integers(0, 255), "H": st.integers(0, 65535), "I": st.integers(0, 2**32 - 1),
    "Q": st.integers(0, 2**64 - 1),
    "16s": st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=16),
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


@given(st.sampled_from(["PING", "ARM", "START_DESCENT", "ABORT"]), st.integers(1, 2**32 - 2))
def test_tlm003_authentic_commands_accepted_once(name, seq):
    """TLM-003: a command with the right key and a new sequence is accepted; the same packet
    again is a replay."""
    gate = CommandGate(KEY)
    pkt = build_command(KEY, name, seq, epoch=gate.epoch)
    first = gate.check(pkt)
    assert isinstance(first, Telecommand) and first.name == name and first.sequence == seq
    again = gate.check(pkt)
    assert isinstance(again, Rejection) and again.code == D.rejections["replayed"]


@given(st.integers(0, 200), st.integers(1, 255))
def test_tlm003_tampered_commands_refused(position, flip):
    """TLM-003: flipping any bit anywhere in the packet gets it refused (CRC or HMAC)."""
    gate = CommandGate(KEY)
    pkt = bytearray(build_command(KEY, "SET_PARAM", 7, 0, 2.5, epoch=gate.epoch))
    position %= len(pkt)
    pkt[position] ^= flip
    result = gate.check(bytes(pkt))
    assert isinstance(result, Rejection)


def test_tlm003_wrong_key_old_sequence_and_bad_arguments_refused():
    gate = CommandGate(KEY)
    gate.last_sequence = 10
    e = gate.epoch
    assert gate.check(build_command(b"x" * 32, "ARM", 11, epoch=e)).code == D.rejections["unauthenticated"]
    assert gate.check(build_command(KEY, "ARM", 10, epoch=e)).code == D.rejections["replayed"]
    assert gate.check(build_command(KEY, "SET_PARAM", 12, 0, float("nan"), epoch=e)).code == D.rejections["bad_argument"]
    assert gate.check(build_command(KEY, "ARM", 13, epoch=e ^ 1)).code == D.rejections["unauthenticated"]  # old epoch
    assert CommandGate(None).check(build_command(KEY, "ARM", 1, epoch=e)).code == D.rejections["unauthenticated"]
    assert gate.rejected == 4 and gate.accepted == 0


def test_tlm003_a_maximal_sequence_starts_a_new_epoch_instead_of_locking_commanding_out():
    """TLM-003: sequence 0xFFFFFFFF is accepted once; the gate then draws a new epoch and
    counts from 1 again, so the ground is never locked out; the old epoch is dead."""
    draws = iter([bytes(8), bytes([1] * 8)])
    gate = CommandGate(KEY, random_bytes=lambda n: next(draws))
    first = gate.epoch
    assert isinstance(gate.check(build_command(KEY, "PING", 0xFFFFFFFF, epoch=first)), Telecommand)
    assert gate.epoch != first and gate.epochs == 2
    assert isinstance(gate.check(build_command(KEY, "PING", 1, epoch=gate.epoch)), Telecommand)
    assert gate.check(build_command(KEY, "PING", 2, epoch=first)).code == D.rejections["unauthenticated"]


def test_tlm003_key_file_must_be_private(tmp_path):
    key = tmp_path / "command.key"
    key.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(str(key))
    key.chmod(0o600)
    assert load_key(str(key)) == b"0123456789abcdef0123456789abcdef\n"  # the bytes as they are: unstripped
    with pytest.raises(KeyFileError, match="does not exist|No such file"):
        load_key(str(tmp_path / "missing.key"))
    link = tmp_path / "link.key"
    link.symlink_to(key)
    with pytest.raises(KeyFileError, match="symbolic links|Too many levels"):  # O_NOFOLLOW
        load_key(str(link))
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(str(tmp_path))
    short = tmp_path / "short.key"
    short.write_bytes(b"tiny")
    short.chmod(0o600)
    with pytest.raises(KeyFileError, match="must hold 16"):
        load_key(str(short))


# runs of non-zero bytes around the 254-byte block boundary, joined by zeros: where COBS has its
# edge cases (a frame ending on a full block takes no closing code byte)
boundary_runs = st.lists(st.integers(0, 3).flatmap(
    lambda k: st.integers(max(0, 254 * k - 2), 254 * k + 2).map(lambda n: b"\x07" * n)), max_size=4).map(b"\x00".join)


@given(st.one_of(st.binary(max_size=1200), boundary_runs))
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
    cmd = build_command(KEY, "ARM", 1, epoch=0)
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


WRITER = """
import sys
from flight.telemetry.flightlog import FlightLog, TM
log = FlightLog(sys.argv[1], start_thread=False)
i = 0
while True:
    log.append(TM, b"record-%08d-" % i + bytes(i % 97))
    i += 1
    if i % 25 == 0:
        log.flush()  # handed to the OS: must survive kill -9
        print(i, flush=True)
"""


@pytest.mark.parametrize("kill_after", [1, 7, 40])
def test_tlm006_flight_log_survives_kill_9(tmp_path, kill_after):
    """TLM-006: kill -9 a writer mid-stream; every record handed to the OS reads back, in order
    and intact; a torn tail is detected and reported, never misread."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    flushed = 0
    for _ in range(kill_after):
        flushed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (path,) = log_files(tmp_path)
    contents = read_log(path)
    kinds = [k for k, _ in contents.records]
    assert kinds[0] == BOOT and len(contents.records) - 1 >= flushed and contents.problem == ""
    for i, (kind, payload) in enumerate(contents.records[1:]):
        assert kind == TM and payload == b"record-%08d-" % i + bytes(i % 97)
    with open(path, "ab") as fh:  # a record torn by power loss mid-write
        fh.write(record(TM, b"x" * 500)[:40])
    torn = read_log(path)
    assert torn.records == contents.records and "torn record" in torn.problem and torn.torn_tail_bytes == 40


def test_tlm006_the_reader_resyncs_past_corrupt_bytes_and_reports_what_it_skipped(tmp_path):
    """TLM-006: one torn or corrupt record never hides the records after it."""
    good = [record(TM, bytes([i]) * 10) for i in range(6)]
    corrupt = bytearray(good[2])
    corrupt[-3] ^= 0xFF  # a payload byte of the third record
    data = good[0] + good[1] + bytes(corrupt) + b"\x00garbage\xa5L" + good[3] + good[4][:9] + good[5]
    out = parse_log(data)
    assert [p for _, p in out.records] == [bytes([i]) * 10 for i in (0, 1, 3, 5)]
    assert [s.reason for s in out.skipped] == ["corrupt record", "corrupt record"]  # (the garbage went with the first)
    assert out.torn_tail_bytes == 0 and "corrupt record" in out.problem


@given(st.lists(st.binary(max_size=40), max_size=8), st.binary(max_size=200), st.integers(0, 10_000))
def test_tlm006_any_damage_costs_only_the_damaged_records(payloads, garbage, where):
    """TLM-006 (property): garbage spliced anywhere loses at most the records it touches, and
    the reader never raises."""
    data = b"".join(record(TM, p) for p in payloads)
    at = where % (len(data) + 1)
    out = parse_log(data[:at] + garbage + data[at:])
    got = [p for _, p in out.records]
    untouched = []
    offset = 0
    for p in payloads:
        size = len(record(TM, p))
        if offset + size <= at or offset >= at:
            untouched.append(p)
        offset += size
    assert all(p in got for p in untouched)


def test_tlm006_each_boot_starts_a_new_file_and_old_files_are_pruned(tmp_path):
    first = FlightLog(tmp_path, start_thread=False)
    first.append(TM, b"boot one")
    first.flush()
    os.close(first._fd)  # power lost mid-flight: the file ends in a torn record
    with open(first.current, "ab") as fh:
        fh.write(record(TM, b"y" * 100)[:30])
    second = FlightLog(tmp_path, start_thread=False, max_file_bytes=4096, max_total_bytes=3 * 4096)
    assert second.boot == 2 and second.current != first.current
    for i in range(400):
        second.append(TM, bytes(100))
        second.flush()
    second.close()
    files = log_files(tmp_path)
    assert sum(f.stat().st_size for f in files) <= 3 * 4096 + 4096 + 200  # the cap (the current file may be over)
    assert all(read_log(f).records[0][0] == BOOT for f in files)  # every part starts with its boot record
    assert read_log(files[-1]).problem == "" and second.part > 3


def test_tlm006_a_full_disk_costs_records_not_the_flight(tmp_path):
    """TLM-006: writes that fail (ENOSPC from /dev/full) are counted and dropped; the log keeps
    trying and comes back when the disk does."""
    log = FlightLog(tmp_path, start_thread=False)
    os.close(log._fd)
    log._fd = os.open("/dev/full", os.O_WRONLY)
    log.append(TM, b"lost")
    log.flush()  # never raises
    assert log.write_errors == 1 and log.lost == 1 and "space" in log.last_error
    for _ in range(5):  # the disk stays full: each flush fails, and no part file is added for it
        log._fd = os.open("/dev/full", os.O_WRONLY)
        log.append(TM, b"lost")
        log.flush()
    assert log.write_errors == 6 and len(log_files(tmp_path)) == 1
    log.append(TM, b"kept")
    log.flush()  # the same part again, once the disk takes writes
    log.close()
    assert len(log_files(tmp_path)) == 1
    assert [p for k, p in read_log(log_files(tmp_path)[-1]).records if k == TM] == [b"kept"]


def test_tlm006_a_slow_disk_drops_and_counts_beyond_the_queue(tmp_path):
    log = FlightLog(tmp_path, start_thread=False, queue_bytes=4096)
    for _ in range(100):
        log.append(TM, bytes(100))
    assert log.dropped > 0 and log.records + log.dropped == 100
    log.close()


def test_tlm003_without_a_key_file_the_flight_refuses_every_command():
    """TLM-003: no key configured means no command gets in, whatever key the sender used."""
    from flight import wiring

    system = wiring.build({"executive": {"clock": "lockstep"}})
    for key in (KEY, b"no key configured: " + bytes(16), bytes(32)):
        result = system.commands.handle(build_command(key, "ARM", 1, epoch=system.commands.gate.epoch))
        assert isinstance(result, Rejection) and result.code == D.rejections["unauthenticated"]
    assert system.commands.executed == []


def test_tlm001_every_event_the_flight_emits_is_in_the_dictionary_with_its_arity():
    """An event missing from the dictionary is only counted as a failed emit in flight, so the
    operator would never see it: every `emit("NAME", ...)` in flight/ is checked here."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "flight"
    import re

    events = D.events
    seen = 0
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                name = node.args[0].value
                seen += 1
                assert name in events, f"{path.relative_to(root.parent)}:{node.lineno} emits {name}, not in the dictionary"
                if not any(isinstance(a, ast.Starred) for a in node.args[1:]):
                    arity = len(re.findall(r"\d*[a-zA-Z]", events[name].args))
                    assert len(node.args) - 1 == arity, \
                        f"{path.relative_to(root.parent)}:{node.lineno}: {name} takes {arity} arguments"
    assert seen > 10
