"""Saved state of secure channels over streams (:class:`trust.streams.channel.ChannelStates`),
on the async SQL layer. The state holds channel keys: it stays in the node's database."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from trust.storage.sql import Database, Migration

__all__ = ["MIGRATIONS", "SqlChannelStates"]

MIGRATIONS = [
    Migration("stream_channels", 1,
              sqlite=["CREATE TABLE stream_channel (name TEXT PRIMARY KEY, state BLOB NOT NULL, "
                      "saved_at INTEGER NOT NULL)"],
              postgresql=["CREATE TABLE stream_channel (name TEXT PRIMARY KEY, state BYTEA NOT NULL, "
                          "saved_at BIGINT NOT NULL)"]),
]


class SqlChannelStates:
    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def load(self, name: str) -> bytes | None:
        value = await self.db.fetch_value("SELECT state FROM stream_channel WHERE name = ?",
                                          (name,))
        return None if value is None else bytes(value)

    async def save(self, name: str, state: bytes,
                   effect: Callable[[Any], Awaitable[None]] | None = None) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO stream_channel (name, state, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
                "saved_at = excluded.saved_at", (name, state, int(time.time())))
            if effect is not None:
                await effect(tx)

    async def delete(self, name: str) -> None:
        await self.db.execute("DELETE FROM stream_channel WHERE name = ?", (name,))
