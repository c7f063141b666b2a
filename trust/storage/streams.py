"""The SQL stream backend (:class:`~trust.streams.backend.StreamBackend`) on the async SQL
layer: SQLite (the embedded default, on the node's database) and PostgreSQL alike.

Appends are atomic and ordered: each partition keeps its next index in ``stream_partition``,
advanced by one conditional ``UPDATE … RETURNING`` inside the transaction that inserts the
records, so concurrent producers (in one process or many) never get the same index.

The backend has the memory backend's limits (:class:`~trust.errors.StorageError` beyond them):
at most ``max_streams`` streams, ``max_bytes`` of record data and ``max_groups`` saved indexes
(group and partition pairs) in all. One row of ``stream_usage`` counts them, changed by
conditional ``UPDATE … RETURNING`` in the transaction that changes the streams, so the limits
hold across processes too.
"""

from __future__ import annotations

import time

from trust.errors import ConflictError, NotFoundError, StorageError, UsageError
from trust.storage.sql import Database, IntegrityViolation, Migration, Transaction
from trust.streams.memory import DEFAULT_MAX_BYTES, MAX_GROUPS, MAX_STREAMS
from trust.streams.messages.stream_info import StreamInfo

__all__ = ["MIGRATIONS", "SqlStreamLocations", "SqlStreams"]

MIGRATIONS = [
    Migration(
        "streams", 1,
        sqlite=[
            "CREATE TABLE stream (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, "
            "created_at INTEGER NOT NULL)",
            "CREATE TABLE stream_partition (stream TEXT NOT NULL, part INTEGER NOT NULL, "
            "next_index INTEGER NOT NULL, PRIMARY KEY (stream, part))",
            "CREATE TABLE stream_record (stream TEXT NOT NULL, part INTEGER NOT NULL, "
            "idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (stream, part, idx))",
            "CREATE TABLE stream_index (stream TEXT NOT NULL, grp TEXT NOT NULL, "
            "part INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (stream, grp, part))",
        ],
        postgresql=[
            "CREATE TABLE stream (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, "
            "created_at BIGINT NOT NULL)",
            "CREATE TABLE stream_partition (stream TEXT NOT NULL, part INTEGER NOT NULL, "
            "next_index BIGINT NOT NULL, PRIMARY KEY (stream, part))",
            "CREATE TABLE stream_record (stream TEXT NOT NULL, part INTEGER NOT NULL, "
            "idx BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (stream, part, idx))",
            "CREATE TABLE stream_index (stream TEXT NOT NULL, grp TEXT NOT NULL, "
            "part INTEGER NOT NULL, idx BIGINT NOT NULL, PRIMARY KEY (stream, grp, part))",
        ],
    ),
    Migration("streams", 2, both=["CREATE TABLE stream_location (name TEXT PRIMARY KEY, "
                                  "url TEXT NOT NULL)"]),
    Migration(
        "streams", 3,
        both=["CREATE TABLE stream_usage (id INTEGER PRIMARY KEY, n_bytes BIGINT NOT NULL, "
              "n_streams BIGINT NOT NULL, n_indexes BIGINT NOT NULL)",
              "INSERT INTO stream_usage (id, n_bytes, n_streams, n_indexes) SELECT 0, "
              "(SELECT COALESCE(SUM(length(data)), 0) FROM stream_record), "
              "(SELECT COUNT(*) FROM stream), (SELECT COUNT(*) FROM stream_index)"],
    ),
]


class SqlStreams:
    """Streams in the tables above, in ``db``."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_streams: int = MAX_STREAMS, max_groups: int = MAX_GROUPS) -> None:
        if min(max_bytes, max_streams, max_groups) < 1:
            raise UsageError("the stream limits must be positive")
        self.db = db
        self.max_bytes = max_bytes
        self.max_streams = max_streams
        self.max_groups = max_groups
        db.require(MIGRATIONS)

    @property
    def description(self) -> str:
        return self.db.dialect

    async def usage(self) -> tuple[int, int, int]:
        """``(bytes of record data, streams, saved indexes)`` stored, what the limits bound."""
        row = await self.db.fetch_one("SELECT n_bytes, n_streams, n_indexes FROM stream_usage "
                                      "WHERE id = 0")
        assert row is not None  # (inserted by the migration)
        return int(row[0]), int(row[1]), int(row[2])

    @staticmethod
    async def _take(tx: Transaction, column: str, amount: int, limit: int, what: str) -> None:
        """Count ``amount`` more in ``column`` of the usage row, or StorageError past ``limit``."""
        got = await tx.fetch_value(
            f"UPDATE stream_usage SET {column} = {column} + ? WHERE id = 0 AND "
            f"{column} + ? <= ? RETURNING {column}", (amount, amount, limit))
        if got is None:
            raise StorageError(f"the stream storage is full (at most {limit} {what})")

    async def create(self, name: str, partitions: int) -> StreamInfo:
        async with self.db.transaction() as tx:
            row = await tx.fetch_one("SELECT partitions FROM stream WHERE name = ?", (name,))
            if row is None:
                await self._take(tx, "n_streams", 1, self.max_streams, "streams")
                try:
                    await tx.execute("INSERT INTO stream (name, partitions, created_at) "
                                     "VALUES (?, ?, ?)", (name, partitions, int(time.time())))
                except IntegrityViolation:
                    raise ConflictError(f"stream {name} was created at the same time") from None
                await tx.execute_many(
                    "INSERT INTO stream_partition (stream, part, next_index) VALUES (?, ?, 0)",
                    [(name, p) for p in range(partitions)])
            elif row[0] != partitions:
                raise ConflictError(f"stream {name} exists with {row[0]} partitions")
        return StreamInfo(name, partitions, self.description)

    async def info(self, name: str) -> StreamInfo | None:
        n = await self.db.fetch_value("SELECT partitions FROM stream WHERE name = ?", (name,))
        return None if n is None else StreamInfo(name, int(n), self.description)

    async def streams(self) -> list[StreamInfo]:
        rows = await self.db.fetch_all("SELECT name, partitions FROM stream ORDER BY name")
        return [StreamInfo(r[0], int(r[1]), self.description) for r in rows]

    async def delete(self, name: str) -> None:
        async with self.db.transaction() as tx:
            if not await tx.execute("DELETE FROM stream WHERE name = ?", (name,)):
                raise NotFoundError(f"no stream named {name}")
            size = await tx.fetch_value("SELECT COALESCE(SUM(length(data)), 0) FROM stream_record "
                                        "WHERE stream = ?", (name,))
            indexes = await tx.fetch_value("SELECT COUNT(*) FROM stream_index WHERE stream = ?",
                                           (name,))
            await tx.execute("UPDATE stream_usage SET n_streams = n_streams - 1, "
                             "n_bytes = n_bytes - ?, n_indexes = n_indexes - ? WHERE id = 0",
                             (int(size), int(indexes)))
            for table in ("stream_partition", "stream_record", "stream_index"):
                await tx.execute(f"DELETE FROM {table} WHERE stream = ?", (name,))

    async def _missing(self, name: str, partition: int) -> NotFoundError:
        if await self.info(name) is None:
            return NotFoundError(f"no stream named {name}")
        return NotFoundError(f"stream {name} has no partition {partition}")

    async def append(self, name: str, partition: int, records: tuple[bytes, ...]) -> int:
        n = len(records)
        async with self.db.transaction() as tx:
            nxt = await tx.fetch_value(
                "UPDATE stream_partition SET next_index = next_index + ? "
                "WHERE stream = ? AND part = ? RETURNING next_index", (n, name, partition))
            if nxt is None:
                raise await self._missing(name, partition)
            first = int(nxt) - n
            await self._take(tx, "n_bytes", sum(len(r) for r in records), self.max_bytes,
                             "bytes of records")
            await tx.execute_many(
                "INSERT INTO stream_record (stream, part, idx, data) VALUES (?, ?, ?, ?)",
                [(name, partition, first + i, rec) for i, rec in enumerate(records)])
        return first

    async def read(self, name: str, partition: int, from_index: int, limit: int,
                   max_bytes: int) -> list[tuple[int, bytes]]:
        # The sizes first (length() reads no record data in SQLite or PostgreSQL), then only
        # the records that fit: a pull reads about max_bytes, not limit records of any size.
        sizes = await self.db.fetch_all(
            "SELECT idx, length(data) FROM stream_record WHERE stream = ? AND part = ? "
            "AND idx >= ? ORDER BY idx LIMIT ?", (name, partition, from_index, limit))
        if not sizes:
            exists = await self.db.fetch_value(
                "SELECT next_index FROM stream_partition WHERE stream = ? AND part = ?",
                (name, partition))
            if exists is None:
                raise await self._missing(name, partition)
            return []
        count = total = 0
        for _, size in sizes:
            if count and total + int(size) > max_bytes:
                break
            count += 1
            total += int(size)
        rows = await self.db.fetch_all(
            "SELECT idx, data FROM stream_record WHERE stream = ? AND part = ? AND idx >= ? "
            "AND idx <= ? ORDER BY idx", (name, partition, from_index, int(sizes[count - 1][0])))
        return [(int(idx), bytes(data)) for idx, data in rows]

    async def get_index(self, name: str, group: str, partition: int) -> int | None:
        row = await self.db.fetch_one(
            "SELECT idx FROM stream_index WHERE stream = ? AND grp = ? AND part = ?",
            (name, group, partition))
        if row is not None:
            return int(row[0])
        if await self.db.fetch_value("SELECT next_index FROM stream_partition WHERE stream = ? "
                                     "AND part = ?", (name, partition)) is None:
            raise await self._missing(name, partition)
        return None

    async def save_index(self, name: str, group: str, partition: int, index: int) -> None:
        async with self.db.transaction() as tx:
            if await tx.fetch_value("SELECT next_index FROM stream_partition WHERE stream = ? "
                                    "AND part = ?", (name, partition)) is None:
                raise await self._missing(name, partition)
            if await tx.fetch_value("SELECT idx FROM stream_index WHERE stream = ? AND grp = ? "
                                    "AND part = ?", (name, group, partition)) is None:
                await self._take(tx, "n_indexes", 1, self.max_groups, "saved indexes")
            await tx.execute(
                "INSERT INTO stream_index (stream, grp, part, idx) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (stream, grp, part) DO UPDATE SET idx = excluded.idx",
                (name, group, partition, index))

    async def close(self) -> None:
        return None


class SqlStreamLocations:
    """Which streams live in a Kafka cluster (:class:`trust.streams.catalog.StreamLocations`)."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def all(self) -> dict[str, str]:
        rows = await self.db.fetch_all("SELECT name, url FROM stream_location ORDER BY name")
        return {r[0]: r[1] for r in rows}

    async def set(self, name: str, url: str) -> None:
        await self.db.execute("INSERT INTO stream_location (name, url) VALUES (?, ?) "
                              "ON CONFLICT (name) DO UPDATE SET url = excluded.url", (name, url))

    async def delete(self, name: str) -> None:
        await self.db.execute("DELETE FROM stream_location WHERE name = ?", (name,))
