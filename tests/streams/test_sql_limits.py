"""The SQL stream backend under hostile use: a pull reads about what it returns (not its record
limit times the largest record), and the backend has the memory backend's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.streams.helpers import aio
from trust.errors import StorageError
from trust.node import Node
from trust.storage.sql import Database, database
from trust.storage.streams import MIGRATIONS, SqlStreams
from trust.streams.client import StreamClient
from trust.streams.memory import MemoryStreams
from trust.streams.messages import StreamInfo
from trust.streams.service import StreamService


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database (SQLite, or on the session's PostgreSQL server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


class _Counting:
    """The database, counting the record bytes its queries return."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.bytes_read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def fetch_all(self, sql: str, params: Any = ()) -> Any:
        rows = await self.db.fetch_all(sql, params)
        self.bytes_read += sum(len(v) for r in rows for v in r if isinstance(v, (bytes, memoryview)))
        return rows


@aio()
async def test_a_pull_over_large_records_reads_about_max_bytes(url: str) -> None:
    db = database(url)
    try:
        streams = SqlStreams(db)
        await streams.create("big", 1)
        record = bytes(64 * 1024)
        await streams.append("big", 0, (record,) * 100)
        counting = _Counting(db)
        streams.db = counting  # type: ignore[assignment]
        got = await streams.read("big", 0, 0, 100, 200 * 1024)
        assert [i for i, _ in got] == [0, 1, 2] and all(r == record for _, r in got)
        assert counting.bytes_read <= 200 * 1024
        # the first record always comes, whatever its size; an empty read is still empty
        counting.bytes_read = 0
        got = await streams.read("big", 0, 5, 100, 1)
        assert [i for i, _ in got] == [5] and counting.bytes_read == len(record)
        assert await streams.read("big", 0, 100, 100, 1) == []
    finally:
        await db.close()


@aio()
async def test_sql_streams_have_the_memory_backends_limits(url: str) -> None:
    db = database(url)
    try:
        streams = SqlStreams(db, max_streams=3, max_bytes=1000, max_groups=2)
        for name in ("a", "b", "c"):
            await streams.create(name, 1)
        await streams.create("a", 1)  # (exists: counts nothing)
        with pytest.raises(StorageError):
            await streams.create("d", 1)
        assert await streams.info("d") is None
        # bytes: a batch past the limit stores nothing, takes no index
        assert await streams.append("a", 0, (bytes(600),)) == 0
        with pytest.raises(StorageError):
            await streams.append("b", 0, (bytes(300), bytes(200)))
        assert await streams.read("b", 0, 0, 10, 10_000) == []
        assert await streams.append("b", 0, (bytes(400),)) == 0
        # saved indexes (group, partition pairs)
        await streams.save_index("a", "g1", 0, 1)
        await streams.save_index("b", "g2", 0, 1)
        await streams.save_index("a", "g1", 0, 2)  # (an update)
        with pytest.raises(StorageError):
            await streams.save_index("c", "g3", 0, 1)
        assert await streams.usage() == (1000, 3, 2)
        # a deleted stream gives back its room
        await streams.delete("a")
        assert await streams.usage() == (400, 2, 1)
        await streams.create("d", 1)
        assert await streams.append("d", 0, (bytes(600),)) == 0
        await streams.save_index("c", "g3", 0, 1)
        # the counts live in the database: another SqlStreams on it sees them
        again = SqlStreams(db, max_streams=3)
        with pytest.raises(StorageError):
            await again.create("e", 1)
    finally:
        await db.close()


class _ManyStreams(MemoryStreams):
    async def streams(self) -> list[StreamInfo]:
        return [StreamInfo(f"{i:06d}" + "x" * 194, 64, "k" * 200) for i in range(21_000)]


@aio()
async def test_a_list_of_many_streams_fits_in_one_reply() -> None:
    node = await Node.create("streams-many")
    try:
        await node.start_worker("stream_service", StreamService(_ManyStreams()))
        got = await StreamClient(node, "stream_service", timeout=5).streams()
        assert 10_000 <= len(got) < 21_000
        assert [i.name for i in got] == [f"{i:06d}" + "x" * 194 for i in range(len(got))]
    finally:
        await node.stop()


@aio()
async def test_the_usage_of_an_older_database_is_counted_when_it_is_upgraded(url: str) -> None:
    old = database(url)
    try:
        old.require(MIGRATIONS[:2])  # the schema before the limits
        await old.execute("INSERT INTO stream (name, partitions, created_at) VALUES ('a', 1, 0)")
        await old.execute("INSERT INTO stream_partition (stream, part, next_index) VALUES ('a', 0, 2)")
        await old.execute("INSERT INTO stream_record (stream, part, idx, data) VALUES "
                          "('a', 0, 0, ?), ('a', 0, 1, ?)", (bytes(100), bytes(23)))
        await old.execute("INSERT INTO stream_index (stream, grp, part, idx) VALUES ('a', 'g', 0, 1)")
    finally:
        await old.close()
    db = database(url)
    try:
        assert await SqlStreams(db).usage() == (123, 1, 1)
    finally:
        await db.close()
