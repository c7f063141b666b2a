"""The SQL layer itself (trust/storage/sql.py): URLs, migrations, transactions, atomicity across
connections, errors, and SQLite off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import SHARED, Run
from trust.errors import ConflictError, StorageError, UsageError
from trust.storage import Storage, open_storage
from trust.storage.sql import Database, IntegrityViolation, Migration, Transaction, database

COUNTER = [
    Migration("test_counter", 1,
              sqlite=["CREATE TABLE counter (id INTEGER PRIMARY KEY, uses INTEGER NOT NULL, "
                      "note BLOB)"],
              postgresql=["CREATE TABLE counter (id BIGINT PRIMARY KEY, uses BIGINT NOT NULL, "
                          "note BYTEA)"]),
]


class Counters:
    """A repository of another module, as trust/storage/authority.py adds one."""

    MIGRATIONS = COUNTER

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, counter_id: int, uses: int) -> None:
        await self.db.execute("INSERT INTO counter (id, uses) VALUES (?, ?)", (counter_id, uses))

    async def take(self, counter_id: int) -> bool:
        """One use, atomically (the shape of a ticket redemption)."""
        left = await self.db.fetch_value(
            "UPDATE counter SET uses = uses - 1 WHERE id = ? AND uses > 0 RETURNING uses",
            (counter_id,))
        return left is not None

    async def uses(self, counter_id: int) -> int | None:
        value = await self.db.fetch_value("SELECT uses FROM counter WHERE id = ?", (counter_id,))
        return None if value is None else int(value)


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "needle"), [
    ("", "database URL"),
    ("sqlite://relative/path", "must be absolute"),
    ("sqlite:relative", "invalid SQLite URL"),
    ("mysql://u@h/db", "unsupported database URL"),
    ("postgresql:///db", "no host"),
    ("postgresql://u@h:99999999/db", "invalid PostgreSQL URL"),
    ("sqlite:///" + "x" * 5000, "database URL"),
    ("sqlite:///a\x00b", "database URL"),
])
def test_bad_urls_are_usage_errors(url: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        database(url)


def test_the_default_is_the_homes_state_database(tmp_path: Path, run: Run[Any]) -> None:
    storage = open_storage(home=tmp_path / "home")
    assert storage.dialect == "sqlite" and storage.url.endswith("/home/state.sqlite")

    async def go() -> None:
        async with storage:
            await storage.schemas.list()

    run(go())
    path = tmp_path / "home" / "state.sqlite"
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600


def test_an_unreachable_postgresql_is_one_storage_error_without_the_password(
        run: Run[Any]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = open_storage(f"postgresql://alice:s3cr3t-pw@127.0.0.1:{port}/db", timeout=0.5)
    assert "s3cr3t" not in storage.url and "alice:***@" in storage.url
    with pytest.raises(StorageError) as e:
        run(storage.open())
    assert "s3cr3t" not in str(e.value) and "cannot connect" in str(e.value)
    assert "\n" not in str(e.value)


# -- migrations ---------------------------------------------------------------------------------


def test_core_migrations_are_applied_on_open_and_recorded(storage: Storage, run: Run[Any]) -> None:
    rows = run(storage.db.fetch_all("SELECT component, version FROM schema_migrations "
                                    "ORDER BY component, version"))
    assert rows == [("credentials", 1), ("identities", 1), ("identities", 2), ("policies", 1),
                    ("vault_configs", 1)]


@pytest.mark.parametrize("engine", SHARED)
def test_a_modules_migrations_apply_once_in_order_and_later_versions_later(
        url: str, run: Run[Any]) -> None:
    async def go() -> None:
        async with open_storage(url) as storage:
            counters = storage.repository(Counters)
            assert storage.repository(Counters) is counters  # one shared instance
            await counters.create(1, 3)
        later = [*COUNTER, Migration("test_counter", 2, both=[
            "ALTER TABLE counter ADD COLUMN label TEXT",
            "UPDATE counter SET label = 'v2'"])]
        async with open_storage(url) as storage:
            storage.db.require(later)
            assert await storage.db.fetch_one("SELECT uses, label FROM counter") == (3, "v2")
            applied = await storage.db.fetch_all(
                "SELECT version FROM schema_migrations WHERE component = 'test_counter' "
                "ORDER BY version")
            assert applied == [(1,), (2,)]
        async with open_storage(url) as storage:  # nothing is applied twice
            storage.db.require(later)
            assert await storage.db.fetch_one("SELECT uses, label FROM counter") == (3, "v2")

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_a_database_migrated_by_a_newer_version_is_refused(url: str, run: Run[Any]) -> None:
    async def go() -> None:
        async with open_storage(url) as storage:
            await storage.db.execute("INSERT INTO schema_migrations (component, version, "
                                     "applied_at) VALUES ('identities', 99, 0)")
        with pytest.raises(StorageError, match=r"holds version 99 of 'identities'.*upgrade"):
            async with open_storage(url):
                pass

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_concurrent_openers_apply_each_migration_once(url: str, run: Run[Any]) -> None:
    async def go() -> None:
        storages = [open_storage(url) for _ in range(6)]
        try:
            await asyncio.gather(*(s.open() for s in storages))
            rows = await storages[0].db.fetch_all(
                "SELECT component, version, count(*) FROM schema_migrations "
                "GROUP BY component, version")
            assert len(rows) == 5 and all(r[2] == 1 for r in rows)
        finally:
            for s in storages:
                await s.close()

    run(go())


def test_fresh_sqlite_databases_opened_by_many_at_once_never_report_locked(
        tmp_path: Path, run: Run[Any]) -> None:
    """Connections switching a new database to WAL at the same moment: SQLite may answer
    "database is locked" at once, without its busy wait; opening retries (a CI run saw it)."""
    async def go(url: str) -> None:
        storages = [open_storage(url) for _ in range(6)]
        try:
            await asyncio.gather(*(s.open() for s in storages))
        finally:
            for s in storages:
                await s.close()

    for i in range(20):
        run(go(f"sqlite:///{tmp_path / f'state-{i}.sqlite'}"))


@pytest.mark.parametrize("engine", ["sqlite"])
def test_opening_an_up_to_date_database_takes_no_write_lock(url: str, run: Run[Any]) -> None:
    """Every command opens the database: when nothing is pending that is a plain read, so it
    does not wait behind (or fail on) another process's long write transaction."""
    async def go() -> None:
        async with open_storage(url) as writer:
            await writer.schemas.list()
            async with writer.transaction() as tx:
                await tx.execute("DELETE FROM seen_nonce")  # holds the write lock
                reader = open_storage(url, busy_timeout=0.2)
                try:
                    assert await reader.schemas.list() == []
                finally:
                    await reader.close()

    run(go())


def test_a_home_made_before_migrations_is_adopted_with_its_data(tmp_path: Path,
                                                                run: Run[Any]) -> None:
    path = tmp_path / "state.sqlite"
    legacy = sqlite3.connect(path)
    legacy.executescript("""
        CREATE TABLE known_identity (identifier TEXT PRIMARY KEY, change_history BLOB NOT NULL,
            updated_at INTEGER NOT NULL);
        CREATE TABLE local_identity (name TEXT PRIMARY KEY, identifier TEXT NOT NULL UNIQUE,
            vault TEXT NOT NULL, key_handle TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL);
        CREATE TABLE vault (name TEXT PRIMARY KEY, backend TEXT NOT NULL, params TEXT NOT NULL,
            created_at INTEGER NOT NULL);
        INSERT INTO local_identity VALUES ('alice', 'I00', 'default', 'h', 1, 5);
        INSERT INTO vault VALUES ('default', 'file', '{}', 7);
    """)
    legacy.close()

    async def go() -> None:
        async with open_storage(f"sqlite:///{path}") as storage:
            alice = await storage.local_identities.get("alice")
            assert alice is not None and alice.is_default and alice.created_at == 5
            assert [c.name for c in await storage.vault_configs.list()] == ["default"]
            assert await storage.schemas.list() == []  # the missing tables were created
            assert len(await storage.db.fetch_all("SELECT * FROM schema_migrations")) == 5

    run(go())


def test_conflicting_definitions_of_one_migration_are_a_defect() -> None:
    db = database("sqlite:///:memory:")
    db.require([Migration("x", 1, both=["CREATE TABLE x (a TEXT)"])])
    with pytest.raises(ValueError, match="two different migrations x 1"):
        db.require([Migration("x", 1, both=["CREATE TABLE x (b TEXT)"])])
    with pytest.raises(ValueError):
        Migration("Bad-Name", 1)


# -- transactions -------------------------------------------------------------------------------


def test_a_transaction_commits_at_the_end_and_rolls_back_on_an_exception(
        storage: Storage, run: Run[Any]) -> None:
    counters = storage.repository(Counters)

    async def go() -> None:
        async with storage.transaction() as tx:
            await counters.create(1, 1)  # a repository call joins the transaction
            await tx.execute("UPDATE counter SET uses = 5 WHERE id = 1")
        assert await counters.uses(1) == 5
        with pytest.raises(RuntimeError):
            async with storage.transaction():
                await counters.create(2, 1)
                assert await counters.take(1)
                async with storage.transaction() as inner:  # nested: the same transaction
                    assert await inner.fetch_value("SELECT uses FROM counter WHERE id = 1") == 4
                raise RuntimeError("abandon")
        assert await counters.uses(1) == 5 and await counters.uses(2) is None

    run(go())


def test_a_transaction_cancelled_mid_statement_is_rolled_back_and_the_database_stays_usable(
        storage: Storage, run: Run[Any]) -> None:
    counters = storage.repository(Counters)

    async def go() -> None:
        await counters.create(1, 7)

        async def slow_update() -> None:
            async with storage.transaction() as tx:
                await tx.execute("UPDATE counter SET uses = 0 WHERE id = 1")
                await tx.fetch_value(  # slow: cancelled while it runs
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                    "WHERE x < 3000000) SELECT count(*) FROM c")

        task = asyncio.create_task(slow_update())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await counters.uses(1) == 7
        async with storage.transaction():  # a new transaction can start
            assert await counters.take(1)
        assert await counters.uses(1) == 6

    run(go())


def test_a_constraint_violation_is_a_conflict_and_leaves_the_transaction_undone(
        storage: Storage, run: Run[Any]) -> None:
    counters = storage.repository(Counters)

    async def go() -> None:
        await counters.create(1, 1)
        with pytest.raises(IntegrityViolation) as e:
            async with storage.transaction():
                await counters.create(2, 1)
                await counters.create(1, 1)
        assert isinstance(e.value, ConflictError)
        assert await counters.uses(2) is None
        await counters.create(2, 1)  # the connection is usable again

    run(go())


def test_bytes_round_trip_and_a_question_mark_or_percent_in_values_is_data(
        storage: Storage, run: Run[Any]) -> None:
    async def go() -> None:
        await storage.repository(Counters).create(1, 1)
        blob = bytes(range(256)) * 10
        await storage.db.execute("UPDATE counter SET note = ? WHERE id = ?", (blob, 1))
        assert await storage.db.fetch_value("SELECT note FROM counter WHERE id = 1") == blob
        assert await storage.db.fetch_value(
            "SELECT count(*) FROM counter WHERE id = ? AND note IS NOT NULL", (1,)) == 1
        value = await storage.db.fetch_value("SELECT ?", ("100% sure? yes",))
        assert value == "100% sure? yes"

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_an_atomic_take_of_a_one_use_counter_succeeds_once_across_connections(
        url: str, run: Run[Any]) -> None:
    """50 concurrent takes through two independent connections (two processes, in effect) of a
    counter with one use: exactly one succeeds."""
    async def go() -> None:
        async with open_storage(url) as a, open_storage(url) as b:
            await a.repository(Counters).create(1, 1)
            results = await asyncio.gather(*(s.repository(Counters).take(1)
                                             for _ in range(25) for s in (a, b)))
            assert results.count(True) == 1 and len(results) == 50
            assert await b.repository(Counters).uses(1) == 0

    run(go())


@pytest.mark.parametrize("engine", ["postgresql"])
def test_run_transaction_retries_a_deadlock(url: str, run: Run[Any]) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one (deadlock); it
    is run again and both updates land."""
    async def go() -> None:
        async with open_storage(url) as a, open_storage(url) as b:
            await a.repository(Counters).create(1, 0)
            await a.repository(Counters).create(2, 0)
            both_locked = asyncio.Barrier(2)
            attempts = {"a": 0, "b": 0}

            def body(name: str, first: int, second: int) -> Any:
                async def tx_body(tx: Transaction) -> None:
                    attempts[name] += 1
                    await tx.execute("SET LOCAL deadlock_timeout = '20ms'")
                    await tx.execute("UPDATE counter SET uses = uses + 1 WHERE id = ?", (first,))
                    if attempts[name] == 1:
                        await both_locked.wait()
                    await tx.execute("UPDATE counter SET uses = uses + 1 WHERE id = ?", (second,))
                return tx_body

            await asyncio.gather(a.db.run_transaction(body("a", 1, 2)),
                                 b.db.run_transaction(body("b", 2, 1)))
            assert sorted(attempts.values()) == [1, 2]
            assert await a.repository(Counters).uses(1) == 2
            assert await a.repository(Counters).uses(2) == 2

    run(go())


# -- engines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite"])
def test_sqlite_statements_run_off_the_event_loop(storage: Storage, run: Run[Any]) -> None:
    """While a slow SQLite statement runs, the event loop keeps serving other tasks."""
    async def go() -> None:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = time.monotonic()
        await storage.db.fetch_value(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 600000) "
            "SELECT count(*) FROM c")
        elapsed = time.monotonic() - start
        done = True
        await task
        assert elapsed > 0.03, "the statement was too fast to tell"
        assert ticks >= elapsed / 0.005 / 4, (ticks, elapsed)

    run(go())


def test_writes_of_another_process_stay_visible_after_this_process_opens_another_connection(
        tmp_path: Path, run: Run[Any]) -> None:
    """Regression: opening a second connection to the same SQLite file used to open and close a
    descriptor of it, dropping the first connection's locks; the other process then deleted the
    WAL at its close and the first connection read a stale snapshot for ever."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    writer = ("import asyncio, sys\nfrom trust.storage import open_storage\n"
              "async def main():\n"
              "    async with open_storage(sys.argv[1]) as s:\n"
              "        await s.policies.set_policy('true', resource=sys.argv[2])\n"
              "asyncio.run(main())\n")

    async def go() -> None:
        async with open_storage(url) as first:
            assert await first.policies.list_policies() == []
            async with open_storage(url) as second:
                await second.schemas.list()
            for i, name in enumerate(("a", "b", "c")):
                subprocess.run([sys.executable, "-c", writer, url, name], check=True, timeout=60)
                assert len(await first.policies.list_policies()) == i + 1

    run(go())


def test_a_closed_storage_refuses_statements(url: str, run: Run[Any]) -> None:
    storage = open_storage(url)

    async def go() -> None:
        await storage.open()
        await storage.close()
        await storage.close()  # idempotent
        with pytest.raises(StorageError, match="closed"):
            await storage.schemas.list()

    run(go())


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_postgresql_storage_is_bound_to_its_event_loop(url: str) -> None:
    storage = open_storage(url)
    asyncio.run(storage.open())
    try:
        with pytest.raises(StorageError, match="another event loop"):
            asyncio.run(storage.schemas.list())
    finally:
        asyncio.run(storage.close())
