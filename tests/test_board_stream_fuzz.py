"""EMU-010: the sensor-stream parser under 100,000 hypothesis examples per property (slow).

- Any bytes, in any two pieces: StreamDecoder.feed never raises, and decode_payload and
  decode_frame raise nothing but StreamError.
- Valid frames of every kind with random line noise between them (and the line split anywhere)
  all come out, in order: the noise costs only itself.
Hypothesis draws a seed per example for the second property and the messages, noise and cuts
are built from it: 100k examples of the rich strategies in test_board_emulator would take ten
times as long, and those strategies already run there (EMU-007).
"""

import math
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from board.emulator import stream as st

FUZZ = settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@FUZZ
@given(s.binary(max_size=160), s.integers(0, 160))
def test_emu010_any_bytes_never_escape_as_anything_but_stream_error(data, cut):
    decoder = st.StreamDecoder()
    for message in decoder.feed(data[:cut]) + decoder.feed(data[cut:]):
        assert type(message).__module__ == st.__name__
    for decode in (st.decode_payload, st.decode_frame):
        try:
            decode(data)
        except st.StreamError:
            pass


def _f32(r: random.Random) -> float:
    while True:
        x = struct.unpack(">f", r.randbytes(4))[0]
        if math.isfinite(x):
            return x


def _message(r: random.Random):
    kind = r.randrange(7)
    u32 = lambda: r.randrange(2**32)
    if kind == 0:
        m = st.Values(u32(), r.randrange(2**64), [_f32(r) for _ in range(3)], [_f32(r) for _ in range(3)],
                      _f32(r), u32(), r.randrange(3), r.randrange(1000), u32(), r.randrange(2),
                      r.random() < 0.5, r.random() < 0.5, r.random() < 0.5)
        return m, st.encode_values(m)
    if kind == 1:
        m = st.Fault(r.choice((1, 2, 3, 4, 255)), r.randrange(5), _f32(r), r.randrange(65536), r.randrange(65536))
        return m, st.encode_fault(m)
    if kind == 2:
        m = st.Sync(u32())
        return m, st.encode_sync(m.seq)
    if kind == 3:
        return st.HelloRequest(), st.encode_hello_request()
    if kind == 4:
        name = "".join(chr(r.randrange(32, 127)) for _ in range(r.randrange(49)))
        return st.Hello(name), st.encode_hello(name)
    if kind == 5:
        m = st.Ack(*[u32() for _ in range(8)])
        return m, st.encode_ack(m)
    m = st.EngineReport(u32(), r.randrange(65536), r.random() < 0.5, r.randrange(10001), r.randrange(-32768, 32768))
    return m, st.encode_engine(m)


@pytest.mark.slow
@FUZZ
@given(s.integers(0, 2**64 - 1))
def test_emu010_frames_between_noise_all_come_out_in_order(seed):
    r = random.Random(seed)
    sent, line = [], r.randbytes(r.randrange(80))
    for _ in range(r.randrange(1, 6)):
        message, frame = _message(r)
        sent.append(message)
        line += frame + r.randbytes(r.randrange(80))
    cuts = sorted(r.randrange(len(line) + 1) for _ in range(r.randrange(5)))
    decoder = st.StreamDecoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True):
        got += decoder.feed(line[a:b])
    assert got == sent
