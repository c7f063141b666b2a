"""One async SQL layer over SQLite (the embedded default) and PostgreSQL (psycopg 3, pooled).

Every repository in :mod:`trust.storage` is written once against :class:`Database` and runs on
both. This module is the whole contract between a repository module and the database.

Opening
    :func:`database` (normally reached through :func:`trust.storage.open_storage`) takes a URL:
    ``sqlite:///ABSOLUTE/PATH`` (a file, created 0600 in a 0700 directory; WAL, fsync as
    shipped: ``synchronous=NORMAL`` in WAL mode, never ``OFF``), ``sqlite:///:memory:`` (a
    private in-memory database, for tests), or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``
    (also ``postgres://``; any libpq parameter in the query string). Nothing is connected until
    the first statement, or :meth:`Database.open`; then the pending migrations are applied.

    SQLite runs each connection's blocking ``sqlite3`` calls on one dedicated thread (never on
    the event loop); PostgreSQL uses an ``AsyncConnectionPool`` (``psycopg_pool``). A PostgreSQL
    database is bound to the event loop that opened it.

Statements
    SQL uses ``?`` placeholders in both dialects (translated to ``%s`` for psycopg; do not put a
    literal ``?`` in SQL text). Rows are plain tuples; ``BLOB``/``BYTEA`` come back as ``bytes``.
    Portable SQL: ``INSERT ... ON CONFLICT (...) DO NOTHING | DO UPDATE SET x = excluded.x``
    (qualify the target's columns in a ``DO UPDATE ... WHERE``), ``RETURNING``, ``UNION``.
    Where the dialects differ, branch on :attr:`Database.dialect` (``"sqlite"`` or
    ``"postgresql"``), e.g. ``BLOB`` vs ``BYTEA`` in migrations, or :attr:`Database.for_update`
    (``" FOR UPDATE"`` on PostgreSQL, ``""`` on SQLite, whose write transactions are exclusive).

    ``await db.execute(sql, params) -> rowcount``, ``await db.fetch_one(...) -> tuple | None``,
    ``await db.fetch_all(...) -> list[tuple]``, ``await db.fetch_value(...)`` (first column of the
    first row, or None), ``await db.execute_many(sql, rows)``. Outside a transaction each call
    commits on its own.

Transactions (first-class; use them for anything that reads then writes)
    ::

        async with db.transaction() as tx:
            row = await tx.fetch_one("SELECT uses FROM ticket WHERE hash = ?" + db.for_update, (h,))
            ...
            await tx.execute("UPDATE ticket SET uses = uses - 1 WHERE hash = ?", (h,))

    Commit when the block ends, roll back on any exception. SQLite: ``BEGIN IMMEDIATE`` (one
    writer at a time, across processes too). PostgreSQL: ``READ COMMITTED``; make read-then-write
    atomic with ``SELECT ... FOR UPDATE`` (:attr:`Database.for_update`) or, better, one
    conditional statement: ``UPDATE ticket SET uses = uses - 1 WHERE hash = ? AND uses > 0 AND
    expires_at >= ? RETURNING ...`` is atomic on both, across processes. Transactions nest by
    *joining*: a repository method that opens ``db.transaction()`` (or calls ``db.execute``)
    inside an outer transaction of the same task runs in it, so several repository calls compose
    into one atomic unit (``async with storage.transaction(): await a.x(); await b.y()``).
    :meth:`Database.run_transaction` runs an ``async def body(tx)`` and retries it on a
    PostgreSQL serialization failure or deadlock.

    Errors: every driver error becomes :class:`~trust.errors.StorageError` naming the database
    (never its password); a unique or foreign-key violation becomes :class:`IntegrityViolation`
    (a :class:`~trust.errors.ConflictError`), so a repository can turn a lost race into its own
    one-line conflict.

Migrations (how a module adds its tables)
    A repository module declares its schema as numbered :class:`Migration` objects, one list per
    *component* (a short name, its own namespace of versions)::

        MIGRATIONS = [
            Migration("authority", 1,
                      sqlite=["CREATE TABLE ticket (hash BLOB PRIMARY KEY, uses INTEGER NOT NULL)"],
                      postgresql=["CREATE TABLE ticket (hash BYTEA PRIMARY KEY, uses BIGINT NOT NULL)"]),
            Migration("authority", 2, both=["CREATE INDEX ticket_uses ON ticket (uses)"]),
        ]

    and hands them to the database with :meth:`Database.require` (or, for a repository class
    with a ``MIGRATIONS`` attribute, ``storage.repository(TheClass)`` does it). Pending
    migrations are applied before the next statement runs, each component's in version order,
    all of them in one transaction together with their rows in ``schema_migrations
    (component, version, applied_at)`` (all or nothing). A migration is never edited once
    shipped: add the next version. Concurrent openers are safe (SQLite: ``BEGIN IMMEDIATE``;
    PostgreSQL: an advisory lock); a database that holds a *newer* version of a component than
    this code knows is refused with a :class:`~trust.errors.StorageError`. The core components (identities,
    credentials, policies, vault configurations) are required by
    :func:`trust.storage.open_storage` itself, so they are applied on open.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import functools
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from trust.errors import ConflictError, StorageError, UsageError

__all__ = [
    "Database",
    "Dialect",
    "IntegrityViolation",
    "Migration",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "Transaction",
    "database",
    "redact_url",
]

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]
T = TypeVar("T")

MAX_URL_LENGTH = 4096


class IntegrityViolation(ConflictError):
    """A unique, primary-key, foreign-key or check constraint refused a write."""


@dataclass(frozen=True)
class Migration:
    """Version ``version`` of ``component``: statements per dialect (``both`` for SQL that runs
    unchanged on either)."""

    component: str
    version: int
    sqlite: Sequence[str] = ()
    postgresql: Sequence[str] = ()
    both: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", self.component) or self.version < 1:
            raise ValueError(f"bad migration {self.component!r} {self.version}")

    def statements(self, dialect: Dialect) -> list[str]:
        return [*(self.sqlite if dialect == "sqlite" else self.postgresql), *self.both]


_SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, "
                      "version INTEGER NOT NULL, applied_at BIGINT NOT NULL, "
                      "PRIMARY KEY (component, version))")
_MIGRATION_LOCK = 0x7472757374  # pg_advisory_xact_lock key ("trust")


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = (parts.username or "") + ":***"
        return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
    except ValueError:
        return "<malformed URL>"


class Transaction(abc.ABC):
    """The statements of one open transaction (see the module's documentation); each dialect
    implements the four statement methods."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect

    @abc.abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        ...

    @abc.abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        ...

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        ...

    @abc.abstractmethod
    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        ...

    async def fetch_value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def run_sync(self, fn: Callable[[Any], T]) -> T:
        """SQLite only: ``fn(connection)`` (the ``sqlite3.Connection``) on the database's
        thread, inside this transaction: several dependent statements in one thread hop.
        sqlite3 errors become :class:`~trust.errors.StorageError` as for statements."""
        raise UsageError(f"run_sync is for SQLite, not {self.dialect}")


class Database(abc.ABC):
    """An async SQL database (SQLite or PostgreSQL); see the module's documentation. Each
    dialect implements the four hooks at the end (connect, disconnect, transactions)."""

    dialect: Dialect
    for_update: str

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self._required: dict[tuple[str, int], Migration] = {}
        self._applied = False
        self._opened = False
        self._closed = False
        self._current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
            f"tx-{id(self)}", default=None)
        self._open_lock: asyncio.Lock | None = None
        self._open_lock_loop: asyncio.AbstractEventLoop | None = None

    # -- migrations --------------------------------------------------------------------------

    def require(self, migrations: Iterable[Migration]) -> None:
        """Have ``migrations`` applied before the next statement (idempotent)."""
        for m in migrations:
            key = (m.component, m.version)
            if self._required.get(key, m) != m:
                raise ValueError(f"two different migrations {m.component} {m.version}")
            if key not in self._required:
                self._required[key] = m
                self._applied = False

    async def _up_to_date(self, known: dict[str, int]) -> bool:
        """Whether every required migration is recorded already (a plain read: no write lock,
        so opening an up-to-date database never waits for another writer)."""
        try:
            async with self._autocommit() as tx:
                rows = await tx.fetch_all("SELECT component, version FROM schema_migrations")
        except StorageError:
            return False  # no schema_migrations table yet
        done = {(str(c), int(v)) for c, v in rows}
        return all((m.component, m.version) in done for m in self._required.values()) and \
            all(v <= known.get(c, v) for c, v in done)

    async def _migrate(self) -> None:
        todo = sorted(self._required.values(), key=lambda m: (m.component, m.version))
        known: dict[str, int] = {}
        for m in todo:
            known[m.component] = max(known.get(m.component, 0), m.version)
        if await self._up_to_date(known):
            return
        async with self._raw_transaction() as tx:
            if self.dialect == "postgresql":
                await tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            await tx.execute(_SCHEMA_MIGRATIONS)
            rows = await tx.fetch_all("SELECT component, version FROM schema_migrations")
            done = {(str(c), int(v)) for c, v in rows}
            for component, newest in known.items():
                present = max((v for c, v in done if c == component), default=0)
                if present > newest:
                    raise StorageError(
                        f"the database {self.url} holds version {present} of {component!r}, newer "
                        f"than this truststack knows ({newest}): upgrade truststack")
            for m in todo:
                if (m.component, m.version) in done:
                    continue
                for stmt in m.statements(self.dialect):
                    await tx.execute(stmt)
                await tx.execute("INSERT INTO schema_migrations (component, version, applied_at) "
                                 "VALUES (?, ?, ?)", (m.component, m.version, int(time.time())))

    # -- opening -----------------------------------------------------------------------------

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._open_lock is None or self._open_lock_loop is not loop:
            self._open_lock = asyncio.Lock()
            self._open_lock_loop = loop
        return self._open_lock

    async def open(self) -> None:
        """Connect and apply pending migrations (done implicitly by the first statement)."""
        if self._opened and self._applied:
            return
        if self._current.get() is not None:
            return  # inside our own transaction: already open
        async with self._lock():
            if self._closed:
                raise StorageError(f"the database {self.url} is closed")
            if not self._opened:
                await self._connect()
                self._opened = True
            if not self._applied:
                await self._migrate()
                self._applied = True

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._opened:
            await self._disconnect()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- statements ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One atomic unit; joins the task's open transaction on this database if there is one."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        await self.open()
        async with self._raw_transaction() as tx:
            token = self._current.set(tx)
            try:
                yield tx
            finally:
                self._current.reset(token)

    async def run_transaction(self, body: Callable[[Transaction], Awaitable[T]], *,
                              attempts: int = 5) -> T:
        """``await body(tx)`` in a transaction, retried (up to ``attempts`` times) when PostgreSQL
        reports a serialization failure or a deadlock."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    return await body(tx)
            except _Retry:
                if attempt == attempts or self._current.get() is not None:
                    raise StorageError(f"the database {self.url} kept aborting a transaction "
                                       "(concurrent updates)") from None
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; its row count."""
        async with self._statement() as tx:
            return await tx.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        async with self._statement() as tx:
            return await tx.execute_many(sql, rows)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._statement() as tx:
            return await tx.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._statement() as tx:
            return await tx.fetch_one(sql, params)

    async def fetch_value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    @property
    def in_transaction(self) -> bool:
        """Whether the running task has a transaction open on this database (which statements
        and transactions then join)."""
        return self._current.get() is not None

    async def run_sync_transaction(self, fn: Callable[[Any], T]) -> T:
        """SQLite only: ``fn(connection)`` in a transaction of its own, ``BEGIN IMMEDIATE``, the
        statements and ``COMMIT`` in one call on the database's thread (rolled back when ``fn``
        raises); inside the task's open transaction, ``fn`` runs in it."""
        raise UsageError(f"run_sync_transaction is for SQLite, not {self.dialect}")

    @contextlib.asynccontextmanager
    async def _statement(self) -> AsyncIterator[Transaction]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        await self.open()
        async with self._autocommit() as tx:
            yield tx

    # -- dialect hooks ----------------------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> None:
        ...

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        ...

    @abc.abstractmethod
    def _raw_transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        ...

    @abc.abstractmethod
    def _autocommit(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        ...


class _Retry(StorageError):
    """A PostgreSQL serialization failure or deadlock: the transaction may be run again."""


# -- SQLite ------------------------------------------------------------------------------------


def _wal_mode(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the lock: SQLite
    answers "database is locked" at once (without waiting its busy timeout) when connections
    switch a new database's journal mode at the same moment, e.g. two commands started together
    on a fresh home."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)

class _SqliteTx(Transaction):
    """Statements on the SQLite thread. In a transaction, ``BEGIN IMMEDIATE`` runs with the
    first statement (one thread hop fewer); a transaction that ran none needs no COMMIT."""

    def __init__(self, db: SqliteDatabase, *, transaction: bool = False) -> None:
        super().__init__(db)
        self._db = db
        self._pending_begin = transaction
        self.started = False
        """A statement (with its BEGIN) was handed to the thread (set at once, not when it ran)."""

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        if not self._pending_begin:
            return self._db._run(fn)
        self._pending_begin = False
        self.started = True

        def begin_then(c: sqlite3.Connection) -> T:
            _rollback_if_open(c)  # (only if an abandoned transaction could not be closed)
            c.execute("BEGIN IMMEDIATE")
            return fn(c)

        return self._db._run(begin_then)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._run(lambda c: c.execute(sql, params).rowcount)

    async def run_sync(self, fn: Callable[[Any], T]) -> T:
        return await self._run(fn)

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        batch = list(rows)
        return await self._run(lambda c: c.executemany(sql, batch).rowcount)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._run(lambda c: c.execute(sql, params).fetchall())

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            cur = c.execute(sql, params)
            row: Row | None = cur.fetchone()
            cur.close()
            return row
        return await self._run(one)


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteDatabase(Database):
    """One SQLite connection served by one dedicated thread (WAL, foreign keys, secure_delete)."""

    dialect: Dialect = "sqlite"
    for_update = ""

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None,
                 busy_timeout: float = 10.0) -> None:
        super().__init__(url or f"sqlite:///{path}")
        self.path = Path(path)
        self.memory = str(path) == ":memory:"
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._gate: asyncio.Lock | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    def _gate_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate = asyncio.Lock()
            self._gate_loop = loop
        return self._gate

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise StorageError(f"the database {self.url} is closed")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.IntegrityError as e:
                raise IntegrityViolation(f"the state database refused a write: {e}") from None
            except sqlite3.Error as e:
                raise StorageError(f"state database error ({self.path}): {e}") from None

        future = asyncio.get_running_loop().run_in_executor(executor, call)
        try:
            return await future
        except asyncio.CancelledError:
            # a running statement would hold the thread (and the transaction) until it ends:
            # abort it (a statement that already finished is not affected)
            conn.interrupt()
            raise

    async def _connect(self) -> None:
        path = self.path
        if not self.memory:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not path.exists():
                    # Never open and close a descriptor of a database this process may already
                    # have open: closing it drops every POSIX lock the process holds on the
                    # file, and another process would then checkpoint and delete the WAL under
                    # our other connections (they would read a stale snapshot for ever).
                    with contextlib.suppress(FileExistsError):  # (another process won)
                        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY
                                         | getattr(os, "O_NOFOLLOW", 0), 0o600))
                os.chmod(path, 0o600)
            except OSError as e:
                raise StorageError(f"cannot open the state database {path}: "
                                   f"{e.strerror or e}") from None
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout)
            try:
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA secure_delete=ON")
                if not self.memory:
                    _wal_mode(conn, self._busy_timeout)
                    conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as e:
            executor.shutdown(wait=False)
            raise StorageError(f"cannot open the state database {path}: {e}") from None
        self._executor = executor

    async def _disconnect(self) -> None:
        conn, executor = self._conn, self._executor
        self._conn = self._executor = None
        if conn is not None and executor is not None:
            async with self._gate_lock():
                with contextlib.suppress(sqlite3.Error, RuntimeError):
                    await asyncio.get_running_loop().run_in_executor(executor, conn.close)
            executor.shutdown(wait=False)

    @contextlib.asynccontextmanager
    async def _raw_transaction(self) -> AsyncIterator[Transaction]:
        async with self._gate_lock():
            tx = _SqliteTx(self, transaction=True)
            try:
                yield tx
            except BaseException:
                if tx.started:  # queued after the statements, so it sees whether BEGIN ran
                    with contextlib.suppress(StorageError):
                        await asyncio.shield(self._run(_rollback_if_open))
                raise
            else:
                if tx.started:
                    try:
                        await self._run(lambda c: c.execute("COMMIT"))
                    except BaseException:
                        with contextlib.suppress(StorageError):
                            await asyncio.shield(self._run(_rollback_if_open))
                        raise

    @contextlib.asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[Transaction]:
        async with self._gate_lock():
            yield _SqliteTx(self)

    async def run_sync_transaction(self, fn: Callable[[Any], T]) -> T:
        current = self._current.get()
        if current is not None:
            return await current.run_sync(fn)
        await self.open()

        def whole(c: sqlite3.Connection) -> T:
            _rollback_if_open(c)
            c.execute("BEGIN IMMEDIATE")
            try:
                result = fn(c)
                c.execute("COMMIT")
            except BaseException:
                _rollback_if_open(c)
                raise
            return result

        async with self._gate_lock():
            return await self._run(whole)


# -- PostgreSQL --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx(Transaction):
    def __init__(self, db: PostgresDatabase, conn: Any) -> None:
        super().__init__(db)
        self._db = db
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._db._errors():
            cur = await self._conn.execute(_pg_sql(sql), params)
            return int(cur.rowcount)

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        batch = list(rows)
        if not batch:
            return 0
        async with self._db._errors():
            cur = self._conn.cursor()
            await cur.executemany(_pg_sql(sql), batch)
            return int(cur.rowcount)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._db._errors():
            cur = await self._conn.execute(_pg_sql(sql), params)
            return list(await cur.fetchall())

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._db._errors():
            cur = await self._conn.execute(_pg_sql(sql), params)
            row: Row | None = await cur.fetchone()
            return row


class PostgresDatabase(Database):
    """A PostgreSQL database through a psycopg 3 ``AsyncConnectionPool``."""

    dialect: Dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 10.0) -> None:
        super().__init__(url)
        self._conninfo = url
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        import psycopg
        from psycopg import errors as pge

        try:
            yield
        except (pge.SerializationFailure, pge.DeadlockDetected) as e:
            raise _Retry(f"the database {self.url} aborted a transaction (concurrent updates): "
                         f"{e.diag.message_primary or e}") from None
        except psycopg.errors.IntegrityError as e:
            raise IntegrityViolation(f"the database refused a write: "
                                     f"{e.diag.message_primary or e}") from None
        except psycopg.Error as e:
            raise StorageError(f"database error ({self.url}): "
                               f"{e.diag.message_primary or str(e).strip()}") from None

    def _check_loop(self) -> None:
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise StorageError(f"the PostgreSQL database {self.url} was opened in another event "
                               "loop; open one per loop")

    async def _connect(self) -> None:
        try:
            from psycopg_pool import AsyncConnectionPool
        except ImportError:
            raise UsageError("PostgreSQL needs the 'postgres' extra: pip install "
                             "'truststack[postgres]'") from None
        import psycopg

        self._loop = asyncio.get_running_loop()
        pool = AsyncConnectionPool(self._conninfo, min_size=self._min_size,
                                   max_size=self._max_size, open=False, timeout=self._timeout,
                                   kwargs={"autocommit": True, "connect_timeout": 10},
                                   name=f"truststack-{id(self):x}")
        try:
            await pool.open(wait=True, timeout=self._timeout)
        except (psycopg.Error, Exception) as e:
            with contextlib.suppress(Exception):
                await pool.close(timeout=1)
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StorageError(f"cannot connect to the database {self.url}: {detail}") from None
        self._pool = pool

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and asyncio.get_running_loop() is self._loop:
            with contextlib.suppress(Exception):
                await pool.close(timeout=5)
        # (closed from another loop: the pool's tasks died with their loop; its connections
        # close when it is collected)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        self._check_loop()
        pool = self._pool
        if pool is None:
            raise StorageError(f"the database {self.url} is closed")
        from psycopg_pool import PoolTimeout

        try:
            cm = pool.connection()
            conn = await cm.__aenter__()
        except PoolTimeout:
            raise StorageError(f"no connection to the database {self.url} became free in "
                               f"{self._timeout:g} s") from None
        try:
            yield conn
        except BaseException as e:
            await cm.__aexit__(type(e), e, e.__traceback__)
            raise
        else:
            await cm.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def _raw_transaction(self) -> AsyncIterator[Transaction]:
        async with self._connection() as conn:
            async with self._errors():
                tx_cm = conn.transaction()
                await tx_cm.__aenter__()
            try:
                yield _PgTx(self, conn)
            except BaseException as e:
                with contextlib.suppress(Exception):
                    await tx_cm.__aexit__(type(e), e, e.__traceback__)
                raise
            else:
                async with self._errors():
                    await tx_cm.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[Transaction]:
        async with self._connection() as conn:
            yield _PgTx(self, conn)


# -- URLs ----------------------------------------------------------------------------------------


def database(url: str, **options: Any) -> Database:
    """The (unopened) database named by ``url``; see the module's documentation."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or "\x00" in url:
        raise UsageError("a database URL is sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite://"):
            raise UsageError(f"invalid SQLite URL {redact_url(url)!r} (sqlite:///ABSOLUTE/PATH)")
        rest = url[len("sqlite://"):]
        if rest in ("", "/:memory:", ":memory:"):
            return SqliteDatabase(":memory:", url="sqlite:///:memory:", **options)
        if not rest.startswith("/"):
            raise UsageError(f"invalid SQLite URL {url!r}: the path must be absolute "
                             "(sqlite:///ABSOLUTE/PATH)")
        return SqliteDatabase(rest, url=url, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError as e:
            raise UsageError(f"invalid PostgreSQL URL {redact_url(url)!r}: {e}") from None
        if not parts.hostname and "host=" not in parts.query:
            raise UsageError(f"invalid PostgreSQL URL {redact_url(url)!r}: no host")
        return PostgresDatabase(url, **options)
    raise UsageError(f"unsupported database URL {redact_url(url)[:80]!r} "
                     "(sqlite:///PATH or postgresql://USER@HOST:PORT/DB)")

