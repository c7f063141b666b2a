"""Property tests: chunking never changes what the decoder yields; garbage is a DecodeError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trust.errors import DecodeError
from trust.routing import (
    PREAMBLE,
    Address,
    FrameDecoder,
    LocalMessage,
    Route,
    decode_body,
    encode_body,
    encode_frame,
)

addresses = st.builds(Address, st.integers(0, 255), st.binary(max_size=40))
routes = st.lists(addresses, max_size=4).map(Route)
messages = st.builds(
    LocalMessage,
    st.lists(addresses, min_size=1, max_size=4).map(Route),
    routes,
    st.binary(max_size=300),
    st.just(()),
    st.none() | st.text(max_size=30),
)


def _frames(msgs: list[LocalMessage]) -> bytes:
    return PREAMBLE + b"".join(
        encode_frame(m.onward_route, m.return_route, m.payload, m.tracing_context) for m in msgs)


@given(st.lists(messages, max_size=8), st.lists(st.integers(1, 97), min_size=1, max_size=40),
       st.integers(16, 512))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_messages(msgs: list[LocalMessage], cuts: list[int],
                                              buffer_size: int) -> None:
    data = _frames(msgs)
    d = FrameDecoder(buffer_size=buffer_size)
    out: list[LocalMessage] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        i += 1
        if i % 3 == 1:
            d.feed(data[pos : pos + n])
            pos += n
            out.extend(d)
        elif i % 3 == 2:
            buf = d.get_buffer(-1)
            k = min(n, len(buf), len(data) - pos)
            buf[:k] = data[pos : pos + k]
            d.buffer_updated(k)
            pos += k
            out.extend(d)
        else:  # the asyncio.Protocol path: decode from the received bytes
            assert d.receive(data[pos : pos + n], out.append) is None
            pos += n
    assert out == msgs
    assert d.buffered == 0


@given(st.lists(messages, min_size=1, max_size=8), st.integers(0, 7), st.integers(1, 400))
@settings(max_examples=100, deadline=None)
def test_receive_stops_when_told_and_keeps_the_rest(msgs: list[LocalMessage], stop_at: int,
                                                    chunk: int) -> None:
    """A delivery that says "stop" keeps every later byte; draining later continues in order."""
    data = _frames(msgs)
    d = FrameDecoder()
    out: list[LocalMessage] = []
    stopped = False

    def deliver(m: LocalMessage) -> str | None:
        nonlocal stopped
        if len(out) == stop_at and not stopped:
            stopped = True
            return "full"
        out.append(m)
        return None

    pending = None
    for pos in range(0, len(data), chunk):
        if pending is not None:
            d.feed(data[pos : pos + chunk])  # reading is paused: bytes are only kept
            continue
        pending = d.receive(data[pos : pos + chunk], deliver)
    if pending is not None:
        out.append(pending[0])
        assert pending[1] == "full"
        assert d.drain(deliver) is None
    assert out == msgs


@given(messages)
def test_body_round_trip(m: LocalMessage) -> None:
    body = encode_body(m.onward_route, m.return_route, m.payload, m.tracing_context)
    assert decode_body(body) == m
    assert encode_body(*(lambda x: (x.onward_route, x.return_route, x.payload,
                                    x.tracing_context))(decode_body(body))) == body


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_garbage_body_is_a_value_or_decode_error(data: bytes) -> None:
    try:
        m = decode_body(data)
    except DecodeError:
        return
    assert encode_body(m.onward_route, m.return_route, m.payload, m.tracing_context) == data


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), min_size=1, max_size=10))
@settings(max_examples=500)
def test_garbage_stream_is_messages_or_decode_error(data: bytes, cuts: list[int]) -> None:
    d = FrameDecoder(max_frame_size=1 << 16)
    pos = 0
    i = 0
    try:
        while pos < len(data):
            n = cuts[i % len(cuts)]
            i += 1
            d.feed(data[pos : pos + n])
            pos += n
            for m in d:
                assert m.onward_route
    except DecodeError:
        pass


@given(st.binary(max_size=64))
def test_address_and_route_decoders(data: bytes) -> None:
    for fn in (Address.decode, Route.decode):
        try:
            v = fn(data)
        except DecodeError:
            continue
        assert v.encode() == data


@given(messages, messages)
def test_mutating_after_a_frame_does_not_corrupt_the_next(a: LocalMessage, b: LocalMessage
                                                           ) -> None:
    d = FrameDecoder(preamble=False, buffer_size=64)
    fa = encode_frame(a.onward_route, a.return_route, a.payload, a.tracing_context)
    fb = encode_frame(b.onward_route, b.return_route, b.payload, b.tracing_context)
    first = d.decode(fa)
    second = d.decode(fb)
    assert first == [a] and second == [b]
