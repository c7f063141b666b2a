"""The SQL stream backend under hostile use: a pull reads about what it returns (not its record
limit times the largest record), and the backend has the memory backend's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.streams.helpers import aio
from trust.storage.sql import Database, database
from trust.storage.streams import SqlStreams


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
async def test_a_pull_over_large_records_reads_about_max_bytes(tmp_path: Path) -> None:
    db = database(f"sqlite:///{tmp_path / 's.sqlite'}")
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
