"""SQL table (SQLite and PostgreSQL) of the newest change history a node has seen of each peer
identity: its change hashes, so that :class:`~trust.identities.known_histories.KnownHistories`
outlives the node process (a restart does not let a peer go back to a key it rotated away
from). Every node of a home shares it; a row only grows (a shorter history never replaces a
longer one, whichever node writes it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from trust.storage.sql import Database, Migration

__all__ = ["HASH_SIZE", "MAX_STORED_CHANGES", "MIGRATIONS", "SqlKnownHistories"]

HASH_SIZE: Final = 32
"""Bytes of one change hash (SHA-256)."""
IDENTIFIER_SIZE: Final = 32
"""Bytes of an identifier (the hash of its first change)."""
MAX_STORED_CHANGES: Final = 4096
"""Changes of one stored history at most (a row with more is skipped when loading)."""

MIGRATIONS = [
    Migration("known_histories", 1, sqlite=[
        """CREATE TABLE peer_history (
            identifier BLOB PRIMARY KEY,
            hashes BLOB NOT NULL,
            seen_at INTEGER NOT NULL
        )""",
        "CREATE INDEX peer_history_seen ON peer_history (seen_at)",
    ], postgresql=[
        """CREATE TABLE peer_history (
            identifier BYTEA PRIMARY KEY,
            hashes BYTEA NOT NULL,
            seen_at BIGINT NOT NULL
        )""",
        "CREATE INDEX peer_history_seen ON peer_history (seen_at)",
    ]),
]


def _valid(identifier: object, hashes: object) -> bool:
    return (isinstance(identifier, bytes) and len(identifier) == IDENTIFIER_SIZE
            and isinstance(hashes, bytes) and 0 < len(hashes) <= HASH_SIZE * MAX_STORED_CHANGES
            and len(hashes) % HASH_SIZE == 0)


class SqlKnownHistories:
    """The ``peer_history`` table: :meth:`load` the newest rows, :meth:`save` grown ones."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def load(self, limit: int) -> tuple[list[tuple[bytes, tuple[bytes, ...]]], int]:
        """At most ``limit`` histories, least recently seen first (identifier, change hashes),
        and how many malformed rows were skipped."""
        rows = await self.db.fetch_all(
            "SELECT identifier, hashes FROM peer_history ORDER BY seen_at DESC LIMIT ?",
            (limit,))
        out = []
        skipped = 0
        for identifier, hashes in reversed(rows):  # (BLOB and BYTEA columns read as bytes)
            if not _valid(identifier, hashes):
                skipped += 1
                continue
            out.append((identifier, tuple(hashes[i:i + HASH_SIZE]
                                          for i in range(0, len(hashes), HASH_SIZE))))
        return out, skipped

    async def save(self, histories: Iterable[tuple[bytes, tuple[bytes, ...]]], seen_at: int,
                   *, keep: int) -> None:
        """Record ``histories`` (a stored one is replaced only by a longer one), then keep the
        ``keep`` most recently seen rows; one transaction."""
        joined = [(identifier, b"".join(hashes)) for identifier, hashes in histories]
        rows = [(identifier, data, seen_at) for identifier, data in joined
                if _valid(identifier, data)]
        if not rows:
            return
        async with self.db.transaction() as tx:
            await tx.execute_many(
                "INSERT INTO peer_history (identifier, hashes, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (identifier) DO UPDATE SET seen_at = excluded.seen_at, hashes = "
                "CASE WHEN length(excluded.hashes) > length(peer_history.hashes) "
                "THEN excluded.hashes ELSE peer_history.hashes END", rows)
            count = int(await tx.fetch_value("SELECT count(*) FROM peer_history"))
            if count > keep:
                await tx.execute(
                    "DELETE FROM peer_history WHERE identifier IN (SELECT identifier FROM "
                    "peer_history ORDER BY seen_at ASC, identifier ASC LIMIT ?)",
                    (count - keep,))
