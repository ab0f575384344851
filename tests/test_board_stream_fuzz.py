"""EMU-010: the sensor-stream parser under 100,000 hypothesis examples per property (slow).

- Any bytes, in any pieces: StreamDecoder.feed never raises, and decode_payload/decode_frame
  raise nothing but StreamError.
- Valid frames with random line noise between them (and the stream split anywhere) all come
  out, in order: the noise costs only itself.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from board.emulator import stream as st
from test_board_emulator import messages

FUZZ = settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@FUZZ
@given(s.lists(s.binary(max_size=90), max_size=4))
def test_emu010_any_bytes_never_escape_as_anything_but_stream_error(pieces):
    decoder = st.StreamDecoder()
    for piece in pieces:
        for message in decoder.feed(piece):
            assert type(message).__module__ == st.__name__
        for decode in (st.decode_payload, st.decode_frame):
            try:
                decode(piece)
            except st.StreamError:
                pass


@pytest.mark.slow
@FUZZ
@given(s.lists(s.tuples(messages, s.binary(max_size=70)), min_size=1, max_size=5),
       s.binary(max_size=70), s.data())
def test_emu010_frames_between_noise_all_come_out_in_order(items, lead, data):
    line = lead + b"".join(frame + noise for (_, frame), noise in items)
    cuts = sorted(data.draw(s.lists(s.integers(0, len(line)), max_size=4)))
    decoder = st.StreamDecoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True):
        got += decoder.feed(line[a:b])
    assert got == [message for (message, _), _ in items]
