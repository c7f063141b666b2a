"""Stream messages: round trips, strict decoding (any bytes in: a value or DecodeError), and a
fuzz run of the stream service with random and mutated requests."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import mutations_of
from tests.streams.helpers import aio
from trust.errors import DecodeError
from trust.models.cbor import Reader
from trust.node import Node
from trust.streams.client import StreamClient
from trust.streams.memory import MemoryStreams
from trust.streams.messages import (
    CreateStream,
    DeleteStream,
    ErrorReply,
    IndexGet,
    IndexSave,
    ListStreams,
    Pull,
    Pulled,
    Push,
    Pushed,
    StreamInfo,
    decode_request,
    decode_response_head,
    encode_request,
)
from trust.streams.service import StreamService

names = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,30}", fullmatch=True)
operations = st.one_of(
    st.builds(CreateStream, names, st.integers(1, 64)),
    st.builds(Push, names, st.lists(st.binary(max_size=40), min_size=1, max_size=5).map(tuple),
              st.integers(0, 63)),
    st.builds(Pull, names, st.integers(0, 2**63 - 1), st.integers(1, 1000), st.integers(0, 60_000),
              st.integers(0, 63)),
    st.builds(IndexGet, names, names, st.integers(0, 63)),
    st.builds(IndexSave, names, names, st.integers(0, 2**63 - 1), st.integers(0, 63)),
    st.just(ListStreams()),
    st.builds(DeleteStream, names),
)

VECTORS = [  # (operation, exact bytes of the request with id 7): documented in docs/streams.md
    (CreateStream("orders", 1), "8307018266" + b"orders".hex() + "01"),
    (Push("orders", (b"hi",)), "8307028366" + b"orders".hex() + "00814268" + "69"),
    (Pull("orders", 5, 100, 1000), "8307038566" + b"orders".hex() + "00051864" + "1903e8"),
    (IndexGet("orders", "billing"), "8307048366" + b"orders".hex() + "67" + b"billing".hex() + "00"),
    (IndexSave("orders", "billing", 9), "8307058466" + b"orders".hex() + "67" + b"billing".hex()
     + "0009"),
    (ListStreams(), "83070680"),
    (DeleteStream("orders"), "8307078166" + b"orders".hex()),
]


@pytest.mark.parametrize(("op", "hex_"), VECTORS)
def test_request_vectors(op: object, hex_: str) -> None:
    data = encode_request(7, op)  # type: ignore[arg-type]
    assert data.hex() == hex_
    req = decode_request(data)
    assert (req.id, req.operation) == (7, op)


@given(st.integers(0, 2**32 - 1), operations)
def test_requests_round_trip(req_id: int, op: object) -> None:
    data = encode_request(req_id, op)  # type: ignore[arg-type]
    req = decode_request(data)
    assert req.id == req_id and req.operation == op
    with pytest.raises(DecodeError):
        decode_request(data + b"\x00")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_decode_error(data: bytes) -> None:
    try:
        decode_request(data)
    except DecodeError:
        pass


@given(st.data())
def test_mutated_requests_decode_or_decode_error(data: st.DataObject) -> None:
    op = data.draw(operations)
    raw = data.draw(mutations_of([encode_request(1, op)]))
    try:
        decode_request(raw)
    except DecodeError:
        pass


@given(st.integers(0, 2**40), st.lists(st.tuples(st.integers(0, 10), st.binary(max_size=20)),
                                        max_size=5))
def test_replies_round_trip(base: int, steps: list[tuple[int, bytes]]) -> None:
    records, index = [], base
    for gap, d in steps:
        index += gap
        records.append((index, d))
        index += 1
    pulled = Pulled(index, tuple(records))
    r = Reader(pulled.encode())
    assert Pulled.read(r) == pulled
    r.end("x")
    for value in (Pushed(base, 3), ErrorReply(2, "no stream named x"),
                  StreamInfo("s", 2, "sqlite")):
        r = Reader(value.encode())
        assert type(value).read(r) == value  # type: ignore[attr-defined]
        r.end("x")


def test_pulled_refuses_disordered_indexes() -> None:
    for bad in (Pulled(5, ((3, b"a"), (3, b"b"))), Pulled(4, ((4, b"a"),))):
        with pytest.raises(DecodeError):
            Pulled.read(Reader(bad.encode()))


def test_limits_are_enforced() -> None:
    with pytest.raises(DecodeError):
        Push("s", tuple(b"x" for _ in range(1001)))
    with pytest.raises(DecodeError):
        Push("s", (b"x" * (256 * 1024 + 1),))
    with pytest.raises(DecodeError):
        Pull("s", limit=0)
    with pytest.raises(DecodeError):
        CreateStream("x" * 201)
    with pytest.raises(DecodeError):
        decode_request(b"\x83\x01\x02" + b"\x00" * (5 * 1024 * 1024))


@aio(60)
async def test_stream_service_survives_a_fuzz_run() -> None:
    rng = random.Random(1234)
    node = await Node.create("streams-fuzz")
    try:
        backend = MemoryStreams(max_bytes=1 << 20)
        service = StreamService(backend)
        await node.start_worker("stream_service", service)
        client = StreamClient(node, "stream_service", timeout=2)
        await client.create("fz")
        await client.push("fz", [b"kept"])
        seeds = [encode_request(i, op) for i, (op, _) in enumerate(VECTORS)]  # type: ignore[arg-type]
        replies = 0
        for i in range(600):
            raw = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                kind = rng.random()
                if kind < 0.5 and raw:
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
                elif kind < 0.7:
                    raw.insert(rng.randrange(len(raw) + 1), rng.randrange(256))
                elif kind < 0.9 and raw:
                    del raw[rng.randrange(len(raw)):]
                else:
                    raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            if i % 50 == 0:
                raw = bytearray(rng.randbytes(rng.randint(0, 64)))
            reply = await node.send_and_receive("stream_service", bytes(raw), timeout=2)
            _, status, r = decode_response_head(reply)
            if status:
                ErrorReply.read(r)
            replies += 1
        assert replies == 600
        # still serving, and what was stored is intact
        assert (await client.pull("fz", 0)).records[0] == (0, b"kept")
        assert service.in_flight == 0
        await asyncio.sleep(0)
    finally:
        await node.stop()
