"""SQL table (SQLite and PostgreSQL) of vault configurations (name, backend, parameters).
Never holds a secret: a passphrase or PIN is recorded as the *name* of an environment variable
or the path of a file."""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from trust.errors import ConflictError, NotFoundError, StorageError
from trust.storage.sql import Database, IntegrityViolation, Migration
from trust.vault_config import VaultConfig

MIGRATIONS = [
    Migration("vault_configs", 1, sqlite=[
        # IF NOT EXISTS: homes made before migrations existed already hold this table.
        """CREATE TABLE IF NOT EXISTS vault (
            name TEXT PRIMARY KEY,
            backend TEXT NOT NULL,
            params TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )""",
    ], postgresql=[
        """CREATE TABLE vault (
            name TEXT PRIMARY KEY,
            backend TEXT NOT NULL,
            params TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )""",
    ]),
]


MAX_PARAMS_TEXT = 65536


def _config(row: Any) -> VaultConfig:
    """A stored row as a :class:`VaultConfig`; :class:`StorageError` when it was tampered with."""
    name, backend, text, created_at = row
    try:
        if not isinstance(text, str) or len(text) > MAX_PARAMS_TEXT:
            raise ValueError("too long")
        params = json.loads(text)
    except (ValueError, RecursionError):
        params = None
    if not isinstance(name, str) or not isinstance(backend, str) or not isinstance(params, dict) \
            or type(created_at) is not int \
            or not all(isinstance(v, (str, int, float, bool)) for v in params.values()):
        raise StorageError(f"the stored configuration of vault {name!r} is malformed")
    return VaultConfig(name, backend, params, created_at)


class SqlVaultConfigs:
    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def add(self, config: VaultConfig) -> None:
        try:
            added = await self.db.execute(
                "INSERT INTO vault (name, backend, params, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (config.name, config.backend, json.dumps(config.params, sort_keys=True),
                 config.created_at or int(time.time())))
        except IntegrityViolation:
            added = 0
        if added != 1:
            raise ConflictError(f"a vault named {config.name!r} already exists")

    async def get(self, name: str) -> VaultConfig:
        row = await self.db.fetch_one(
            "SELECT name, backend, params, created_at FROM vault WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no vault named {name!r} (see: truststack vault list)")
        return _config(row)

    async def find(self, name: str) -> VaultConfig | None:
        try:
            return await self.get(name)
        except NotFoundError:
            return None

    async def list(self) -> builtins.list[VaultConfig]:
        rows = await self.db.fetch_all(
            "SELECT name, backend, params, created_at FROM vault ORDER BY name")
        return [_config(r) for r in rows]

    async def delete(self, name: str) -> None:
        if await self.db.execute("DELETE FROM vault WHERE name = ?", (name,)) == 0:
            raise NotFoundError(f"no vault named {name!r}")
