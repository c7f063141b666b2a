"""The embedded SQLite database (``state.sqlite`` in the home) shared by the repositories.

Each repository module declares its own tables as a list of ``CREATE ... IF NOT EXISTS``
statements and calls :meth:`Database.ensure_schema` once; the statements run once per open
database. Calls are synchronous and fast (a local file); the async repositories call them
directly.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from trust.errors import StorageError
from trust.home import state_db_path


class Database:
    """One SQLite connection (WAL, foreign keys on, secure_delete on, file mode 0600)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        memory = str(path) == ":memory:"
        if not memory:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            os.chmod(self.path, 0o600)
        try:
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA secure_delete=ON")
            if not memory:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the state database {path}: {e}") from None
        self._schemas: set[str] = set()
        self._lock = threading.RLock()

    @classmethod
    def open_home(cls, home: str | os.PathLike[str] | None = None) -> Database:
        return cls(state_db_path(home))

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        if name in self._schemas:
            return
        with self.transaction():
            for stmt in statements:
                self.conn.execute(stmt)
        self._schemas.add(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StorageError(f"cannot write the state database: {e}") from None
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as e:
                    raise StorageError(f"cannot write the state database: {e}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.conn.execute(sql, params)
            except sqlite3.Error as e:
                raise StorageError(f"state database error: {e}") from None

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.execute(sql, params).fetchone()
        return row

    def query_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
