"""The stream service and client on one node, with the memory backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.streams.helpers import aio
from trust.errors import ConflictError, DecodeError, NotFoundError
from trust.node import Node
from trust.streams.client import StreamClient, StreamConsumer, StreamProducer
from trust.streams.memory import MemoryStreams
from trust.streams.messages import ErrorReply, decode_response_head
from trust.streams.service import StreamService


async def _node() -> tuple[Node, StreamService]:
    node = await Node.create("streams-test")
    service = StreamService(MemoryStreams())
    await node.start_worker("stream_service", service)
    return node, service


@aio()
async def test_create_push_pull_index() -> None:
    node, _ = await _node()
    try:
        c = StreamClient(node, "stream_service", timeout=2)
        info = await c.create("orders", 2)
        assert (info.name, info.partitions) == ("orders", 2)
        assert (await c.create("orders", 2)) == info  # idempotent
        with pytest.raises(ConflictError):
            await c.create("orders", 3)
        pushed = await c.push("orders", [b"a", b"b", b"c"])
        assert (pushed.first_index, pushed.count) == (0, 3)
        assert (await c.push("orders", [b"z"], partition=1)).first_index == 0
        pulled = await c.pull("orders", 1, limit=10)
        assert pulled.records == ((1, b"b"), (2, b"c")) and pulled.next_index == 3
        assert (await c.pull("orders", 3)).records == ()
        assert await c.get_index("orders", "g1") is None
        await c.save_index("orders", "g1", 2)
        assert await c.get_index("orders", "g1") == 2
        assert [i.name for i in await c.streams()] == ["orders"]
        await c.delete("orders")
        with pytest.raises(NotFoundError):
            await c.pull("orders")
        with pytest.raises(NotFoundError):
            await c.delete("orders")
    finally:
        await node.stop()


@aio()
async def test_long_poll_wakes_on_push_and_does_not_block_others() -> None:
    node, _ = await _node()
    try:
        c = StreamClient(node, "stream_service", timeout=5)
        await c.create("s")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        waiting = asyncio.create_task(c.pull("s", 0, timeout=3))
        await asyncio.sleep(0.1)
        # another caller is served while the long poll waits
        await c.create("other")
        assert loop.time() - t0 < 1
        await c.push("s", [b"x"])
        pulled = await waiting
        assert pulled.records == ((0, b"x"),)
        assert loop.time() - t0 < 1.5
    finally:
        await node.stop()


@aio()
async def test_malformed_requests_get_typed_error_replies_and_change_nothing() -> None:
    node, service = await _node()
    try:
        c = StreamClient(node, "stream_service", timeout=2)
        await c.create("s")
        for bad in (b"", b"\x83\x01\x63", b"\x83\x01\x09\x80", b"\x83\x01\x02\x83\x61s\x00\x80",
                    b"\x83\x01\x01\x82\x62..\x01", b"\xff" * 10, b"\x83\x01\x06\x80\x00"):
            reply = await node.send_and_receive("stream_service", bad, timeout=2)
            _, status, r = decode_response_head(reply)
            assert status == 1
            assert ErrorReply.read(r).kind == "malformed"
        with pytest.raises(DecodeError):
            await c.push("s", [])
        assert (await c.pull("s")).records == ()
        assert service.refused == 7
    finally:
        await node.stop()


@aio()
async def test_producer_and_consumer_resume_from_saved_index() -> None:
    node, _ = await _node()
    try:
        c = StreamClient(node, "stream_service", timeout=2)
        await c.create("events")
        await StreamProducer(c, "events").send([b"%d" % i for i in range(2500)])
        consumer = StreamConsumer(c, "events", "g", limit=300, poll_timeout=0.05)
        got: list[bytes] = []
        batches = consumer.batches()
        async for batch in batches:
            got.extend(d for _, d in batch)
            if len(got) >= 900:
                break
        await batches.aclose()  # the third batch was handled but not committed
        assert consumer.index == 600
        again = StreamConsumer(c, "events", "g", limit=1000, poll_timeout=0.05)
        assert await again.resume() == 600
        rest: list[bytes] = []
        while len(rest) < 1900:
            batch = await again.pull()
            rest.extend(d for _, d in batch)
            await again.commit(batch[-1][0] + 1)
        assert got[:600] + rest == [b"%d" % i for i in range(2500)]
    finally:
        await node.stop()


@aio(60)
async def test_producer_and_consumer_ride_out_a_restart_of_the_stream_node(tmp_path: Path) -> None:
    """The stream node goes away mid-stream and comes back on the same port: the producer's
    pushes and the consumer's pulls wait it out (backoff) and nothing is lost or repeated."""
    from trust.routing import Address, Route
    from trust.storage.sql import database
    from trust.storage.streams import SqlStreams
    from trust.streams.client import Backoff

    url = f"sqlite:///{tmp_path / 'streams.sqlite'}"

    async def stream_node(address: str) -> tuple[Node, str]:
        node = Node("stream-node")
        await node.start_worker("stream_service", StreamService(SqlStreams(database(url))))
        listener = await node.create_tcp_listener(address, consumers=["stream_service"])
        return node, listener.address

    server, address = await stream_node("127.0.0.1:0")
    client_node = Node("device")
    try:
        client = StreamClient(client_node, Route([Address.tcp(address), "stream_service"]),
                              timeout=1)
        await client.create("log")
        producer = StreamProducer(client, "log", backoff=Backoff(0.05, 0.3))
        consumer = StreamConsumer(client, "log", "g", limit=50, poll_timeout=0.1,
                                  backoff=Backoff(0.05, 0.3))
        await producer.send([b"a%d" % i for i in range(100)])
        first = await consumer.pull()
        await consumer.commit(first[-1][0] + 1)
        await server.stop()
        pushing = asyncio.create_task(producer.send([b"b%d" % i for i in range(100)]))
        await asyncio.sleep(1.0)  # pushes fail and retry meanwhile
        assert not pushing.done()
        server, _ = await stream_node(address)
        await asyncio.wait_for(pushing, 20)
        got = [d for _, d in first]
        while len(got) < 200:
            batch = await consumer.pull()
            got.extend(d for _, d in batch)
            if batch:
                await consumer.commit(batch[-1][0] + 1)
        assert got == [b"a%d" % i for i in range(100)] + [b"b%d" % i for i in range(100)]
    finally:
        await client_node.stop()
        await server.stop()
