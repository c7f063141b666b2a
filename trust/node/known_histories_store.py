"""Keeps a node's :class:`~trust.identities.known_histories.KnownHistories` in its database
(:class:`~trust.storage.known_histories.SqlKnownHistories`): loaded before the node's channels
accept peers, every new or grown history saved soon after it is accepted (a background task
writes what waits in one transaction; the handshake never waits for the database), and what
waits saved when the node stops."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from trust.identities.known_histories import KnownHistories
from trust.logsafe import safe_text, warn_limited
from trust.storage.known_histories import SqlKnownHistories

__all__ = ["HistoryStore"]

log = logging.getLogger("trust.node")


class HistoryStore:
    """The link between one :class:`KnownHistories` and its table (see the module docstring).
    What waits is at most one entry per identity, and at most the store's capacity."""

    def __init__(self, histories: KnownHistories, table: SqlKnownHistories) -> None:
        self.histories = histories
        self.table = table
        self._waiting: dict[bytes, tuple[bytes, ...]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.saved = 0
        self.failures = 0

    @classmethod
    async def open(cls, histories: KnownHistories, storage: Any) -> HistoryStore:
        """Load the stored histories into ``histories`` and save its changes from now on."""
        store = cls(histories, storage.repository(SqlKnownHistories))
        entries, skipped = await store.table.load(histories.capacity)
        histories.load(entries)
        if skipped:
            log.warning("%d malformed stored peer histories were skipped", skipped)
        histories.on_change = store._changed
        store._task = asyncio.get_running_loop().create_task(store._run())
        return store

    @property
    def waiting(self) -> int:
        """Histories accepted and not saved yet."""
        return len(self._waiting)

    def _changed(self, identifier: bytes, hashes: tuple[bytes, ...]) -> None:
        self._waiting.pop(identifier, None)  # (re-inserted last: the oldest go first below)
        self._waiting[identifier] = hashes
        self._bound()
        self._wake.set()

    def _bound(self) -> None:
        """While saves fail, keep at most as many waiting as the store remembers (the oldest
        are dropped: the in-memory store has forgotten them too)."""
        while len(self._waiting) > self.histories.capacity:
            del self._waiting[next(iter(self._waiting))]

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Save what waits now (a failure is logged; those entries wait for the next try)."""
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, {}
        try:
            await self.table.save(batch.items(), int(time.time()), keep=self.histories.capacity)
            self.saved += len(batch)
        except BaseException as e:  # (a full disk, a locked database: the node goes on)
            self._waiting = {**batch, **self._waiting}  # (newer ones that came meanwhile win)
            self._bound()
            if not isinstance(e, Exception):  # cancelled (close): close saves them
                raise
            self.failures += 1
            warn_limited(log, "known_histories", "peer histories not saved (%d waiting): %s",
                         len(self._waiting), safe_text(e))

    async def close(self) -> None:
        """Stop saving in the background, save what waits, stop listening to changes."""
        if self.histories.on_change == self._changed:
            self.histories.on_change = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.flush()
