"""Secure channels over streams: exactly once through duplicates, refusal, catch-up after being
offline, and a receiver killed with SIGKILL that resumes the same channel."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.channels.node_helpers import live
from tests.fixtures.kafka import Broker
from tests.streams.conftest import unique_prefix
from tests.streams.helpers import aio, channel_states
from trust.channels import PeerAuthenticator, TrustIdentifier
from trust.errors import TrustError
from trust.node import Node
from trust.storage.sql import database
from trust.storage.stream_channels import SqlChannelStates
from trust.storage.streams import SqlStreams
from trust.streams.channel import StreamChannel, StreamChannelClosed
from trust.streams.client import StreamClient
from trust.streams.kafka import KafkaStreams
from trust.streams.memory import MemoryStreams
from trust.streams.service import StreamService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _parties() -> None:
    live()  # built (cached) outside the tests' event loops


async def _service(node: Node, kind: str = "memory", where: Path | None = None,
                   bootstrap: str = "") -> Any:
    backend: Any
    if kind == "memory":
        backend = MemoryStreams()
    elif kind == "sqlite":
        assert where is not None
        backend = SqlStreams(database(f"sqlite:///{where / 'streams.sqlite'}"))
    else:
        backend = KafkaStreams(bootstrap, prefix=unique_prefix())
    await node.start_worker("stream_service", StreamService(backend))
    return backend


BACKENDS = ("sqlite", "kafka")


async def _open(node: Node, tmp: Path, *, bob_trusts: str | None = None, timeout: float = 5
                ) -> tuple[StreamChannel, StreamChannel, SqlChannelStates, SqlChannelStates]:
    w = live()
    client = StreamClient(node, "stream_service", timeout=5)
    await client.create("ab")
    await client.create("ba")
    a_states = channel_states(tmp, "alice")
    b_states = channel_states(tmp, "bob")
    bob_auth = PeerAuthenticator(TrustIdentifier(bob_trusts) if bob_trusts else None)
    alice, bob = await asyncio.gather(
        StreamChannel.initiate(client, w.alice, PeerAuthenticator(), a_states, "to-bob",
                               out_stream="ab", in_stream="ba", timeout=timeout),
        StreamChannel.accept(client, w.bob, bob_auth, b_states, "from-alice",
                             in_stream="ab", out_stream="ba", timeout=timeout),
        return_exceptions=True)
    if isinstance(bob, BaseException):
        assert isinstance(alice, StreamChannel)
        raise bob
    assert isinstance(alice, StreamChannel) and isinstance(bob, StreamChannel)
    return alice, bob, a_states, b_states


async def _drain(ch: StreamChannel, want: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < want:
        r = await ch.receive(limit=1000, timeout=1)
        got.extend(r.messages)
        await ch.commit(r)
    return got


@aio()
async def test_channel_over_streams_exactly_once_and_only_ciphertext_stored(tmp_path: Path) -> None:
    node = await Node.create("streams-channel")
    try:
        backend = await _service(node)
        alice, bob, *_ = await _open(node, tmp_path)
        assert bob.peer_identifier == live().alice.identifier
        assert alice.peer_identifier == live().bob.identifier
        msgs = [b"secret-%05d" % i for i in range(250)]
        await alice.send(msgs[:120])
        # at-least-once below the channel: the broker hands some records out twice
        client = StreamClient(node, "stream_service")
        stored = (await client.pull("ab", 0, limit=1000)).records
        await client.push("ab", [rec for _, rec in stored[-50:]])
        await alice.send(msgs[120:])
        got = await _drain(bob, 250)
        assert got == msgs and bob.duplicates == 50
        # replies flow the other way
        await bob.send([b"ack"])
        assert (await alice.receive(timeout=2)).messages == [b"ack"]
        # the stream storage never held plaintext
        everything = b""
        for s in ("ab", "ba"):
            everything += b"".join(rec for _, rec in (await client.pull(s, 0, limit=1000)).records)
        assert b"secret-" not in everything and b"ack" not in everything
        assert backend.used > 250 * 24
        await alice.close()
        r = await bob.receive(timeout=2)
        assert bob.closed and r.messages == []
        with pytest.raises(StreamChannelClosed):
            await alice.send([b"late"])
    finally:
        await node.stop()


@aio()
async def test_refused_initiator_gets_close_and_no_channel(tmp_path: Path) -> None:
    node = await Node.create("streams-refuse")
    try:
        await _service(node)
        with pytest.raises(TrustError):  # (bob refuses alice, then finds no other opening)
            await _open(node, tmp_path, bob_trusts=live().carol.identifier, timeout=1)
        states = channel_states(tmp_path, "bob")
        assert await states.load("from-alice") is None
        resumed = await StreamChannel.resume(StreamClient(node, "stream_service"),
                                             channel_states(tmp_path, "alice"),
                                             "to-bob")
        r = await resumed.receive(timeout=1)
        assert resumed.closed and r.messages == []
    finally:
        await node.stop()


@pytest.mark.parametrize("kind", BACKENDS)
def test_offline_consumer_catches_up_10000(kind: str, tmp_path: Path, broker: Broker) -> None:
    asyncio.run(asyncio.wait_for(_offline(kind, tmp_path, broker), 60))


async def _offline(kind: str, tmp_path: Path, broker: Broker) -> None:
    node = await Node.create("streams-offline")
    backend = await _service(node, kind, tmp_path, broker.bootstrap)
    try:
        alice, _, _, b_states = await _open(node, tmp_path)
        msgs = [b"plaintext-%05d" % i for i in range(10_000)]
        for i in range(0, len(msgs), 500):
            await alice.send(msgs[i:i + 500])
        # bob was offline: a new process resumes its channel from the saved state
        again = await StreamChannel.resume(StreamClient(node, "stream_service"), b_states,
                                           "from-alice")
        assert await _drain(again, 10_000) == msgs
        if kind == "kafka":  # the topic's bytes, read by a plain Kafka consumer
            stored = await _topic_bytes(broker.bootstrap, backend.prefix + "ab")
            assert len(stored) > 10_000 * 24 and b"plaintext-" not in stored
    finally:
        await node.stop()
        await backend.close()


async def _topic_bytes(bootstrap: str, topic: str) -> bytes:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        out = bytearray()
        seen = 0
        while seen < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            for m in batch.get(tp, []):
                out += m.value or b""
                seen = m.offset + 1
        return bytes(out)
    finally:
        await consumer.stop()


CONSUMER = r'''
import asyncio, os, signal, sys, time
from trust.node import Node
from trust.node.resolve import route_from_text
from trust.storage.sql import database
from trust.storage.stream_channels import SqlChannelStates
from trust.storage.streams import SqlStreams
from trust.streams.channel import StreamChannel
from trust.streams.client import StreamClient

async def main(state_path, service, total, die_after):
    node = await Node.create("consumer")
    db = database("sqlite:///" + state_path)
    await db.execute("CREATE TABLE IF NOT EXISTS app (payload BLOB NOT NULL)")
    client = StreamClient(node, route_from_text(service), timeout=5)
    ch = await StreamChannel.resume(client, SqlChannelStates(db), "from-alice")
    while (await db.fetch_value("SELECT count(*) FROM app")) < total:
        r = await ch.receive(limit=50, timeout=1)
        async def effect(tx, msgs=r.messages):
            await tx.execute_many("INSERT INTO app (payload) VALUES (?)", [(m,) for m in msgs])
            if die_after and ch.in_index >= die_after:  # killed mid-batch, before the commit
                os.kill(os.getpid(), signal.SIGKILL)
        await ch.commit(r, effect)
        print("committed", ch.in_index, flush=True)
        time.sleep(0.02)  # slow consumer: the test kills it mid-way
    await node.stop()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
'''


@pytest.mark.parametrize("kind", BACKENDS)
def test_consumer_killed_with_sigkill_resumes_the_same_channel(kind: str, tmp_path: Path,
                                                               broker: Broker) -> None:
    total = 2000
    backend: Any = None

    async def setup() -> tuple[Node, str]:
        nonlocal backend
        node = await Node.create("streams-kill")
        backend = await _service(node, kind, tmp_path, broker.bootstrap)
        listener = await node.create_tcp_listener("127.0.0.1:0", consumers=["stream_service"])
        alice, _, _, _ = await _open(node, tmp_path)
        for i in range(0, total, 250):
            await alice.send([b"p%d" % j for j in range(i, i + 250)])
        return node, listener.address

    async def scenario() -> None:
        node, address = await setup()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-c", CONSUMER, str(tmp_path / "bob.sqlite"),
                f"/ip4/{address.replace(':', '/tcp/')}/service/stream_service", str(total)]
        try:
            # killed inside its sixth batch's transaction: that batch is pulled again
            dying = await asyncio.create_subprocess_exec(*args, "250", stdout=subprocess.PIPE,
                                                         env=env)
            out, _ = await asyncio.wait_for(dying.communicate(), 40)
            assert dying.returncode == -signal.SIGKILL
            assert out.count(b"committed") == 5
            first = subprocess.Popen([*args, "0"], stdout=subprocess.PIPE, env=env)
            try:
                assert first.stdout is not None
                loop = asyncio.get_running_loop()
                for _ in range(5):  # let it commit a few batches, then kill it mid-way
                    line = await loop.run_in_executor(None, first.stdout.readline)
                    assert line.startswith(b"committed"), line
                first.send_signal(signal.SIGKILL)
            finally:
                first.kill()
                await loop.run_in_executor(None, first.wait)
            second = await asyncio.create_subprocess_exec(*args, "0", stdout=subprocess.DEVNULL,
                                                          env=env)
            try:
                assert await asyncio.wait_for(second.wait(), 40) == 0
            finally:
                if second.returncode is None:
                    second.kill()
                    await second.wait()
        finally:
            await node.stop()
            await backend.close()
        db = database(f"sqlite:///{tmp_path / 'bob.sqlite'}")
        rows = [bytes(r[0]) for r in await db.fetch_all("SELECT payload FROM app ORDER BY rowid")]
        await db.close()
        assert rows == [b"p%d" % i for i in range(total)]

    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert time.monotonic() - t0 < 60
