"""Every stream backend behaves the same (memory, SQLite; PostgreSQL in test_backends_pg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.kafka import Broker
from tests.streams.conftest import unique_prefix
from tests.streams.helpers import aio
from trust.errors import ConflictError, NotFoundError
from trust.storage.sql import database
from trust.storage.streams import SqlStreams
from trust.streams.backend import StreamBackend
from trust.streams.kafka import KafkaStreams
from trust.streams.memory import MemoryStreams


@asynccontextmanager
async def memory(_: Path) -> AsyncIterator[StreamBackend]:
    yield MemoryStreams()


@asynccontextmanager
async def sqlite(tmp: Path) -> AsyncIterator[StreamBackend]:
    db = database(f"sqlite:///{tmp / 'streams.sqlite'}")
    try:
        yield SqlStreams(db)
    finally:
        await db.close()


@asynccontextmanager
async def kafka(_: Path) -> AsyncIterator[StreamBackend]:
    assert BROKER is not None
    b = KafkaStreams(BROKER.bootstrap, prefix=unique_prefix())  # the broker is shared
    try:
        yield b
    finally:
        await b.close()


BACKENDS: dict[str, Callable[[Path], Any]] = {"memory": memory, "sqlite": sqlite, "kafka": kafka}
BROKER: Broker | None = None


@pytest.fixture(autouse=True)
def _broker(broker: Broker) -> Iterator[None]:
    global BROKER
    BROKER = broker
    yield
    BROKER = None


async def check_backend(b: StreamBackend) -> None:
    assert await b.streams() == []
    info = await b.create("s1", 2)
    assert (info.name, info.partitions) == ("s1", 2)
    assert await b.create("s1", 2) == info
    with pytest.raises(ConflictError):
        await b.create("s1", 1)
    assert await b.info("nope") is None
    assert await b.append("s1", 0, (b"a", b"bb")) == 0
    assert await b.append("s1", 0, (b"ccc",)) == 2
    assert await b.append("s1", 1, (b"x",)) == 0
    assert await b.read("s1", 0, 0, 10, 1 << 20) == [(0, b"a"), (1, b"bb"), (2, b"ccc")]
    assert await b.read("s1", 0, 1, 1, 1 << 20) == [(1, b"bb")]
    assert await b.read("s1", 0, 0, 10, 2) == [(0, b"a")]  # max_bytes, at least one record
    assert await b.read("s1", 0, 3, 10, 1 << 20) == []
    with pytest.raises(NotFoundError):
        await b.read("s1", 5, 0, 10, 100)
    with pytest.raises(NotFoundError):
        await b.append("nope", 0, (b"a",))
    assert await b.get_index("s1", "g", 0) is None
    await b.save_index("s1", "g", 0, 2)
    await b.save_index("s1", "g", 0, 3)
    assert await b.get_index("s1", "g", 0) == 3
    assert await b.get_index("s1", "g", 1) is None
    with pytest.raises(NotFoundError):
        await b.save_index("nope", "g", 0, 1)
    assert [i.name for i in await b.streams()] == ["s1"]
    await b.delete("s1")
    with pytest.raises(NotFoundError):
        await b.delete("s1")
    await b.create("s1", 1)  # a new stream of the same name starts empty
    assert await b.read("s1", 0, 0, 10, 100) == []
    assert await b.get_index("s1", "g", 0) is None


async def check_concurrent_appends(b: StreamBackend) -> None:
    await b.create("c", 1)

    async def producer(k: int) -> list[int]:
        return [await b.append("c", 0, (b"%d-%d" % (k, i), b"%d-%d'" % (k, i))) for i in range(20)]

    firsts = [f for fs in await asyncio.gather(*(producer(k) for k in range(5))) for f in fs]
    assert sorted(firsts) == list(range(0, 200, 2))
    records = await b.read("c", 0, 0, 1000, 1 << 20)
    assert [i for i, _ in records] == list(range(200))
    for i in range(0, 200, 2):  # each batch stayed together, in order
        assert records[i + 1][1] == records[i][1] + b"'"


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_backend_contract(kind: str, tmp_path: Path) -> None:
    @aio()
    async def run() -> None:
        async with BACKENDS[kind](tmp_path) as b:
            await check_backend(b)
            await check_concurrent_appends(b)
    run()


def test_sqlite_streams_survive_reopen(tmp_path: Path) -> None:
    @aio()
    async def run() -> None:
        async with sqlite(tmp_path) as b:
            await b.create("keep", 1)
            await b.append("keep", 0, (b"one", b"two"))
            await b.save_index("keep", "g", 0, 1)
        async with sqlite(tmp_path) as b:
            assert await b.read("keep", 0, 1, 10, 100) == [(1, b"two")]
            assert await b.get_index("keep", "g", 0) == 1
            assert await b.append("keep", 0, (b"three",)) == 2
    run()


def test_kafka_appends_waiting_their_turn_do_not_time_out(broker: Broker) -> None:
    """Many appends to one partition at once: each is delivered, in one piece. (aiokafka's
    ``send_batch`` counts its wait for the partition's pending batch against its timeout
    wrongly; appends waiting inside it together failed with KafkaTimeoutError long before the
    timeout, on a loaded machine in the suite: the streams take turns before it.)"""

    @aio()
    async def run() -> None:
        b = KafkaStreams(broker.bootstrap, prefix=unique_prefix(), request_timeout_ms=2_000)
        try:
            await b.create("many", 1)

            async def producer(k: int) -> list[int]:
                return [await b.append("many", 0, (b"%d-%d" % (k, i), b"%d-%d'" % (k, i)))
                        for i in range(10)]

            firsts = [f for fs in await asyncio.gather(*(producer(k) for k in range(40)))
                      for f in fs]
            assert sorted(firsts) == list(range(0, 800, 2))
            records = await b.read("many", 0, 0, 1000, 1 << 20)
            assert len(records) == 800
            for i in range(0, 800, 2):
                assert records[i + 1][1] == records[i][1] + b"'"
        finally:
            await b.close()
    run()
