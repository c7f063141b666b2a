"""Ockam's TCP frame format (wire spec §2.1, §8.7), byte for byte, and the incremental decoder."""

from __future__ import annotations

import json
import time

import pytest

from trust.errors import DecodeError
from trust.models.cbor import head
from trust.routing import (
    MAX_FRAME_SIZE,
    MAX_ROUTE_HOPS,
    PREAMBLE,
    FrameDecoder,
    FrameTooLargeError,
    LocalMessage,
    Route,
    decode_body,
    encode_body,
    encode_frame,
    encode_heartbeat,
    encode_string,
)
from trust.routing.tcp_frame import encode_frame_addrs, frame_header

WORKED_FRAME = "0000001983818200466563686f657281820043617070460548656c6c6f"
TRACEPARENT = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'


def test_worked_example_byte_for_byte() -> None:
    payload = encode_string("Hello")
    assert payload.hex() == "0548656c6c6f"
    frame = encode_frame(Route(["echoer"]), Route(["app"]), payload)
    assert frame.hex() == WORKED_FRAME
    body = encode_body(Route(["echoer"]), Route(["app"]), payload)
    assert body.hex() == WORKED_FRAME[8:]
    assert PREAMBLE == b"\x01"


def test_worked_example_decodes() -> None:
    msgs = FrameDecoder().decode(PREAMBLE + bytes.fromhex(WORKED_FRAME))
    assert msgs == [LocalMessage(Route(["echoer"]), Route(["app"]), bytes.fromhex("0548656c6c6f"))]


def test_tracing_context_vector() -> None:
    body = encode_body(Route(["echoer"]), Route(["app"]), encode_string("Hello"), TRACEPARENT)
    expected = "84818200466563686f657281820043617070460548656c6c6f7849" + TRACEPARENT.encode().hex()
    assert body.hex() == expected
    m = decode_body(bytes.fromhex(expected))
    assert m.tracing_context == TRACEPARENT and json.loads(m.tracing_context)
    # the tracing context survives a frame round trip
    frame = encode_frame(Route(["echoer"]), Route(["app"]), b"x", TRACEPARENT)
    assert FrameDecoder(preamble=False).decode(frame)[0].tracing_context == TRACEPARENT


def test_header_plus_payload_equals_frame() -> None:
    on, ret = Route(["a", "b"]), Route(["c"])
    for size in (0, 23, 24, 255, 256, 65535, 65536):
        payload = bytes(size)
        assert frame_header(on.addresses, ret.addresses, size) + payload == encode_frame_addrs(
            on.addresses, ret.addresses, payload)


def test_heartbeat_is_checked_and_skipped() -> None:
    d = FrameDecoder()
    hb = encode_heartbeat()
    assert hb.hex() == "000000048380804" "0"
    msgs = d.decode(PREAMBLE + hb + bytes.fromhex(WORKED_FRAME) + hb)
    assert len(msgs) == 1 and d.heartbeats == 2


def test_preamble_each_way() -> None:
    with pytest.raises(DecodeError, match="protocol version 2"):
        FrameDecoder().decode(b"\x02" + bytes.fromhex(WORKED_FRAME))
    d = FrameDecoder()
    assert d.decode(b"\x01") == [] and d.next_message() is None
    assert len(d.decode(bytes.fromhex(WORKED_FRAME))) == 1


def test_oversize_frame_rejected_from_its_header() -> None:
    d = FrameDecoder()
    with pytest.raises(DecodeError, match="larger than"):
        d.decode(PREAMBLE + (MAX_FRAME_SIZE + 1).to_bytes(4, "big"))
    with pytest.raises(DecodeError):  # the decoder stays failed
        d.decode(bytes.fromhex(WORKED_FRAME))


def test_frame_at_the_limit_is_accepted() -> None:
    on, ret = Route(["a"]), Route(["b"])
    overhead = len(frame_header(on.addresses, ret.addresses, 1 << 20)) - 4
    payload = bytes(MAX_FRAME_SIZE - overhead)
    frame = encode_frame(on, ret, payload)
    assert int.from_bytes(frame[:4], "big") == MAX_FRAME_SIZE
    d = FrameDecoder(preamble=False)
    for i in range(0, len(frame), 1 << 20):
        d.feed(frame[i : i + (1 << 20)])
    [m] = list(d)
    assert m.payload == payload
    assert d.capacity <= FrameDecoder.DEFAULT_BUFFER_SIZE  # the big buffer was released
    with pytest.raises(FrameTooLargeError):
        encode_frame(on, ret, payload + b"\x00")


def test_small_limit_and_garbage() -> None:
    d = FrameDecoder(preamble=False, max_frame_size=100)
    with pytest.raises(DecodeError):
        d.decode(encode_frame(Route(["a"]), Route(["b"]), bytes(200)))
    for garbage in ["00000003ffffff", "0000000183", "00000002a000", "0000000480808040ff"]:
        with pytest.raises(DecodeError):
            FrameDecoder(preamble=False).decode(bytes.fromhex(garbage))


@pytest.mark.parametrize(("hexbody", "field"), [
    ("82808040", "frame"),                       # 2 elements
    ("85808040" "6000", "frame"),                # 5 elements
    ("838080" "6161", "payload"),                # text payload
    ("838182006161" "80" "4161", "onward_route"),  # address inner is text
    ("838080" "5800", "payload"),                # non-shortest bstr head
    ("848080" "4061" "f6", "tracing_context"),   # null tracing
    ("848080" "40" "61ff", "tracing_context"),   # invalid UTF-8
    ("838080" "40" "00", "frame"),               # trailing byte
    ("83a080" "40", "onward_route"),             # map instead of array
    ("9f808040ff", "frame"),                     # indefinite array
    ("83818300404040", "onward_route"),          # address with 3 elements
])
def test_body_rejects(hexbody: str, field: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_body(bytes.fromhex(hexbody))
    assert e.value.field is not None and e.value.field.startswith(field)


def test_a_route_of_more_than_max_route_hops_is_rejected_before_it_is_built() -> None:
    """One frame of millions of 3-byte addresses made the decoder build every one of them."""
    hop = bytes.fromhex("820040")  # [0, b""]
    ok = bytes([0x83, 0x81]) + bytes.fromhex("82004161") + head(4, MAX_ROUTE_HOPS) \
        + hop * MAX_ROUTE_HOPS + b"\x40"
    assert len(decode_body(ok).return_route.addresses) == MAX_ROUTE_HOPS
    n = (MAX_FRAME_SIZE - 64) // 3
    huge = bytes([0x83, 0x81]) + bytes.fromhex("82004161") + head(4, n) + hop * n + b"\x40"
    decoder = FrameDecoder(preamble=False)
    started = time.perf_counter()
    with pytest.raises(DecodeError) as e:
        decoder.decode(len(huge).to_bytes(4, "big") + huge)
    assert time.perf_counter() - started < 0.5
    assert e.value.field == "return_route" and f"at most {MAX_ROUTE_HOPS}" in str(e.value)
    for route in ("onward_route", "return_route"):
        one_more = head(4, MAX_ROUTE_HOPS + 1) + hop * (MAX_ROUTE_HOPS + 1)
        body = (bytes([0x83]) + one_more + b"\x80\x40" if route == "onward_route"
                else bytes([0x83, 0x81]) + bytes.fromhex("82004161") + one_more + b"\x40")
        with pytest.raises(DecodeError) as e:
            decode_body(body)
        assert e.value.field == route


def test_route_cache_does_not_change_results() -> None:
    """Frames with the same routes decode through the cached-prefix path: same results."""
    d = FrameDecoder(preamble=False)
    on, ret = Route(["x", "y"]), Route(["r"])
    sizes = (0, 1, 30, 300, 70000)
    frames = [encode_frame(on, ret, bytes([i % 256]) * i) for i in sizes]
    frames.append(encode_frame(on, ret, b"t", "trace"))
    got = d.decode(b"".join(frames))
    assert [m.payload for m in got] == [bytes([i % 256]) * i for i in sizes] + [b"t"]
    assert got[-1].tracing_context == "trace"
    assert all(m.onward_route == on and m.return_route == ret for m in got)
    # a cached prefix followed by a non-shortest payload head is still rejected
    bad = bytearray(encode_frame(on, ret, b"z"))
    body_routes = len(encode_body(on, ret, b"")) - 1
    bad[4 + body_routes :] = b"\x58\x01z"
    bad[:4] = (len(bad) - 4).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="shortest"):
        d.decode(bytes(bad))


def test_buffered_protocol_interface() -> None:
    d = FrameDecoder(buffer_size=64)
    data = PREAMBLE + bytes.fromhex(WORKED_FRAME) * 50
    out = []
    pos = 0
    while pos < len(data):
        buf = d.get_buffer(-1)
        n = min(len(buf), 7, len(data) - pos)
        buf[:n] = data[pos : pos + n]
        d.buffer_updated(n)
        pos += n
        out.extend(d)
    assert len(out) == 50 and d.buffered == 0


def test_an_idle_decoder_holds_no_buffer() -> None:
    """Memory follows the bytes received: nothing is allocated until bytes must be kept, and
    the buffer is released as soon as everything in it is decoded (issue 9, item 1)."""
    d = FrameDecoder()
    assert d.capacity == 0
    got: list[LocalMessage] = []
    frame = encode_frame(Route(["echo"]), Route(["app"]), b"hello")
    # the preamble and whole frames in one read: decoded straight from it, nothing kept
    assert d.receive(PREAMBLE + frame * 3, got.append) is None
    assert len(got) == 3 and d.capacity == 0
    # a frame split across reads is kept only until it is complete
    big = encode_frame(Route(["echo"]), Route(["app"]), bytes(300_000))
    assert d.receive(big[:1000], got.append) is None
    assert d.capacity >= 1000 and d.buffered == 1000
    assert d.receive(big[1000:], got.append) is None
    assert len(got) == 4 and d.capacity == 0
    d.feed(frame[:3])
    assert d.capacity > 0
    d.release()
    assert d.capacity == 0 and d.buffered == 0


@pytest.mark.parametrize("path", ["feed", "receive"])
def test_a_trickled_large_frame_costs_linear_time(path: str) -> None:
    """A frame sent one byte at a time: the bytes moved inside the buffer stay linear in the
    frame size (the buffer grows geometrically), not quadratic (issue 9, item 5)."""
    payload = bytes(range(256)) * 1024  # 256 KiB
    frame = encode_frame(Route(["echo"]), Route(["app"]), payload)
    d = FrameDecoder(preamble=False)
    got: list[LocalMessage] = []
    view = memoryview(frame)
    for i in range(len(frame)):
        if path == "feed":
            d.feed(view[i : i + 1])
        else:
            d.receive(frame[i : i + 1], got.append)
    if path == "feed":
        got = list(d)
    assert [m.payload for m in got] == [payload]
    assert d.copied <= 4 * len(frame), d.copied  # exact-size growth copied ~len²/2 bytes
    assert d.capacity == 0


def test_public_fast_frame_api_writes_what_encode_frame_writes() -> None:
    from trust.routing import Address, Route
    from trust.routing.tcp_frame import SMALL_PAYLOAD_HEADS, encode_frame, pack_u32, routes_prefix

    onward = (Address.local("echo"), Address.tcp("127.0.0.1:4000"))
    ret = (Address.local("app"),)
    for n in (0, 1, 23, 24, 255):
        payload = bytes(range(n % 256))[:n].ljust(n, b"x")
        prefix = routes_prefix(onward, ret)
        assert prefix is not None and routes_prefix(onward, ret) is prefix  # cached
        head = SMALL_PAYLOAD_HEADS[n]
        frame = pack_u32(len(prefix) + len(head) + n) + prefix + head + payload
        assert frame == encode_frame(Route.from_tuple(onward), Route.from_tuple(ret), payload)
    long = tuple(Address.local("a" * 200) for _ in range(3))
    assert routes_prefix(long, ()) is None  # too long for the fast path: use encode_frame
    assert Route.from_tuple(onward) == Route(list(onward))


def test_receive_gives_large_payloads_as_views_of_the_immutable_read() -> None:
    from trust.routing.tcp_frame import VIEW_FROM

    on, ret = Route(["decryptor"]), Route(["peer"])
    big, small = b"b" * VIEW_FROM, b"s" * 100
    got: list[LocalMessage] = []
    dec = FrameDecoder()
    # the first read: routes not yet known, decoded by the checking path (copies)
    assert dec.receive(PREAMBLE + encode_frame(on, ret, big), got.append) is None
    second = encode_frame(on, ret, big) + encode_frame(on, ret, small) + \
        encode_frame(on, ret, b"c" * (VIEW_FROM + 7))
    assert dec.receive(second, got.append) is None
    assert [m.payload for m in got] == [big, big, small, b"c" * (VIEW_FROM + 7)]
    assert [type(m.payload) for m in got] == [bytes, memoryview, bytes, memoryview]
    view = got[1].payload
    assert view.readonly and view.obj is second  # type: ignore[attr-defined]
    # a frame split across reads is completed in the reused buffer: a copy, never a view
    frame = encode_frame(on, ret, big)
    dec.receive(frame[:100], got.append)
    dec.receive(frame[100:], got.append)
    assert type(got[-1].payload) is bytes and got[-1].payload == big
    # the bytearray path (feed/drain) always copies
    dec.feed(bytearray(encode_frame(on, ret, big)))
    got.clear()
    dec.drain(got.append)
    assert type(got[0].payload) is bytes and got[0].payload == big


def test_with_views_a_frame_completed_in_the_buffer_is_a_transient_view() -> None:
    """``views=True`` (the TCP connection's receiver): a large frame completed in the reused
    buffer reaches ``deliver`` as a writable view of it, valid during the call; a message
    ``deliver`` refuses is returned owning its bytes, which later reads cannot change."""
    from trust.routing.tcp_frame import VIEW_FROM

    on, ret = Route(["decryptor"]), Route(["peer"])
    big = bytes(range(256)) * (VIEW_FROM // 256 + 1)
    seen: list[tuple[type, bool, bytes]] = []

    def deliver(msg: LocalMessage) -> object:
        p: object = msg.payload
        seen.append((type(p), isinstance(p, memoryview) and not p.readonly, bytes(msg.payload)))
        return None

    dec = FrameDecoder()
    dec.receive(PREAMBLE + encode_frame(on, ret, b"x"), deliver, views=True)  # (routes learnt)
    frame = encode_frame(on, ret, big)
    dec.receive(frame[:1000], deliver, views=True)
    dec.receive(frame[1000:], deliver, views=True)
    assert seen[-1] == (memoryview, True, big)
    # refused: the message owns its bytes before the decoder buffers anything more
    dec.receive(frame[:1000], deliver, views=True)
    blocked = dec.receive(frame[1000:] + frame[:500], lambda msg: "full", views=True)
    assert blocked is not None and blocked[1] == "full"
    assert type(blocked[0].payload) is bytes and blocked[0].payload == big
    dec.feed(bytes(len(frame)))  # (more reads land in the buffer)
    assert blocked[0].payload == big
