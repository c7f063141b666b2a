"""The peers' newest change histories outlive the node process: the table keeps the longest
history of each identity (whichever writer), the most recently seen ones, skips malformed rows;
a :class:`HistoryStore` loads them into a new :class:`KnownHistories`, which then refuses the
history from before a rotation, and saves what it accepts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.channels.helpers import NOW, alice_rotations, world
from tests.storage.conftest import SHARED, Run
from trust.errors import VerificationError
from trust.identities.creation import create_identity
from trust.identities.known_histories import KnownHistories
from trust.node.known_histories_store import HistoryStore
from trust.storage import Storage, open_storage
from trust.storage.known_histories import SqlKnownHistories
from vaults.keys import KeyType
from vaults.software import SoftwareVault

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32
H1, H2, H3 = b"1" * 32, b"2" * 32, b"3" * 32


def test_rows_only_grow_and_the_most_recently_seen_are_kept(storage: Storage,
                                                            run: Run[Any]) -> None:
    table = storage.repository(SqlKnownHistories)

    async def go() -> None:
        await table.save([(A, (H1, H2))], 10, keep=10)
        await table.save([(A, (H1,))], 11, keep=10)  # shorter: kept as it was
        assert (await table.load(10))[0] == [(A, (H1, H2))]
        await table.save([(A, (H1, H2, H3)), (B, (H1,))], 12, keep=10)
        await table.save([(C, (H2,))], 13, keep=2)  # three rows, keep two: A and B seen at 12
        entries, skipped = await table.load(10)
        assert skipped == 0
        assert sorted(entries) == sorted([(B, (H1,)), (C, (H2,))]) or \
            sorted(entries) == sorted([(A, (H1, H2, H3)), (C, (H2,))])
        assert entries[-1] == (C, (H2,))  # least recently seen first
        assert len(await table.load(1)) == 2 and (await table.load(1))[0] == [(C, (H2,))]

    run(go())


def test_malformed_rows_are_skipped_and_counted(storage: Storage, run: Run[Any]) -> None:
    table = storage.repository(SqlKnownHistories)

    async def go() -> None:
        await table.save([(A, (H1,))], 10, keep=10)
        for identifier, hashes in ((b"x" * 31, H1), (B, b""), (C, H1 + b"\x00")):
            await storage.db.execute(
                "INSERT INTO peer_history (identifier, hashes, seen_at) VALUES (?, ?, ?)",
                (identifier, hashes, 20))
        entries, skipped = await table.load(10)
        assert entries == [(A, (H1,))] and skipped == 3

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_a_restarted_node_refuses_the_history_from_before_a_rotation(url: str,
                                                                     run: Run[Any]) -> None:
    w = world()
    rotated, fork = alice_rotations()

    async def first_life() -> None:
        storage = open_storage(url)
        store = await HistoryStore.open(KnownHistories(), storage)
        store.histories.accept(w.alice.identity)
        store.histories.accept(rotated)  # newer: saved soon after, in the background (one row
        for _ in range(300):             # for both, as they came in one turn)
            if store.saved:
                break
            await asyncio.sleep(0.01)
        assert store.saved == 1
        store.histories.accept(rotated)  # the same: nothing to save
        await asyncio.sleep(0.05)
        assert store.saved == 1
        await store.close()
        await storage.close()

    async def second_life() -> None:
        storage = open_storage(url)
        store = await HistoryStore.open(KnownHistories(), storage)
        assert len(store.histories) == 1
        with pytest.raises(VerificationError, match="older than one seen before"):
            store.histories.accept(w.alice.identity)
        with pytest.raises(VerificationError, match="conflicts with one seen before"):
            store.histories.accept(fork)
        store.histories.accept(rotated)
        await store.close()
        await storage.close()

    run(first_life())
    run(second_life())


def test_close_saves_what_waits(tmp_path: Path, run: Run[Any]) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    w = world()

    async def go() -> None:
        storage = open_storage(url)
        store = await HistoryStore.open(KnownHistories(), storage)
        store.histories.accept(w.alice.identity)
        await store.close()  # at once: the background task may not have run
        assert store.histories.on_change is None
        entries, _ = await storage.repository(SqlKnownHistories).load(10)
        assert entries == [(w.alice.identity.identifier_bytes,
                            tuple(c.change_hash for c in w.alice.identity.changes))]
        await storage.close()

    run(go())


class _FailingTable:
    """A table whose saves fail (a full disk, a locked database)."""

    def __init__(self) -> None:
        self.tries = 0

    async def load(self, limit: int) -> tuple[list[Any], int]:
        return [], 0

    async def save(self, *args: Any, **kwargs: Any) -> None:
        self.tries += 1
        raise OSError("disk full")


def test_while_saves_fail_what_waits_stays_bounded_and_the_node_goes_on(run: Run[Any]) -> None:
    class Storage:
        def repository(self, cls: type) -> _FailingTable:
            return table

    table = _FailingTable()

    async def go() -> None:
        vault = SoftwareVault()
        peers = [await create_identity(vault, await vault.generate_key(KeyType.ED25519),
                                       now=NOW) for _ in range(10)]
        store = await HistoryStore.open(KnownHistories(capacity=3), Storage())
        for peer in peers:
            store.histories.accept(peer)  # each handshake goes on
            await asyncio.sleep(0)
        await store.flush()
        assert table.tries >= 1 and store.failures >= 1
        assert store.waiting == 3 and len(store.histories) == 3
        await store.close()  # the last try fails too: logged, not raised
        assert store.waiting == 3

    run(go())
