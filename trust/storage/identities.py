"""SQL implementations (SQLite and PostgreSQL) of the identity repositories: known identities,
local named identities, purpose keys. Pure storage: deciding whether a history may replace the
stored one is :meth:`trust.identities.manager.IdentityManager.remember`'s job."""

from __future__ import annotations

import builtins

from trust.errors import ConflictError
from trust.identities.repositories import LocalIdentity, StoredPurposeKey
from trust.storage.sql import Database, IntegrityViolation, Migration

MIGRATIONS = [
    Migration("identities", 1, sqlite=[
        # IF NOT EXISTS: homes made before migrations existed already hold these tables.
        """CREATE TABLE IF NOT EXISTS known_identity (
            identifier TEXT PRIMARY KEY,
            change_history BLOB NOT NULL,
            updated_at INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS local_identity (
            name TEXT PRIMARY KEY,
            identifier TEXT NOT NULL UNIQUE,
            vault TEXT NOT NULL,
            key_handle TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS purpose_key (
            identifier TEXT NOT NULL,
            purpose TEXT NOT NULL,
            vault TEXT NOT NULL,
            key_handle TEXT NOT NULL,
            attestation BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (identifier, purpose, key_handle)
        )""",
    ], postgresql=[
        """CREATE TABLE known_identity (
            identifier TEXT PRIMARY KEY,
            change_history BYTEA NOT NULL,
            updated_at BIGINT NOT NULL
        )""",
        """CREATE TABLE local_identity (
            name TEXT PRIMARY KEY,
            identifier TEXT NOT NULL UNIQUE,
            vault TEXT NOT NULL,
            key_handle TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL
        )""",
        """CREATE TABLE purpose_key (
            identifier TEXT NOT NULL,
            purpose TEXT NOT NULL,
            vault TEXT NOT NULL,
            key_handle TEXT NOT NULL,
            attestation BYTEA NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (identifier, purpose, key_handle)
        )""",
    ]),
    # At most one default identity, even when two processes add identities at once.
    Migration("identities", 2, both=[
        "CREATE UNIQUE INDEX IF NOT EXISTS local_identity_one_default ON local_identity "
        "(is_default) WHERE is_default = 1",
    ]),
]


class SqlKnownIdentities:
    """Change histories of identities this home knows, by identifier (compare-and-set writes)."""

    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def get(self, identifier: str) -> bytes | None:
        value = await self.db.fetch_value(
            "SELECT change_history FROM known_identity WHERE identifier = ?", (identifier,))
        return None if value is None else bytes(value)

    async def add(self, identifier: str, change_history: bytes, *, now: int) -> bool:
        return await self.db.execute(
            "INSERT INTO known_identity (identifier, change_history, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (identifier) DO NOTHING", (identifier, change_history, now)) == 1

    async def replace(self, identifier: str, change_history: bytes, *, previous: bytes,
                      now: int) -> bool:
        return await self.db.execute(
            "UPDATE known_identity SET change_history = ?, updated_at = ? "
            "WHERE identifier = ? AND change_history = ?",
            (change_history, now, identifier, previous)) == 1

    async def list(self) -> builtins.list[str]:
        return [r[0] for r in await self.db.fetch_all(
            "SELECT identifier FROM known_identity ORDER BY identifier")]

    async def delete(self, identifier: str) -> bool:
        return await self.db.execute("DELETE FROM known_identity WHERE identifier = ?",
                                     (identifier,)) > 0


def _local(row: tuple) -> LocalIdentity:  # type: ignore[type-arg]
    return LocalIdentity(row[0], row[1], row[2], row[3], row[4] == _DEFAULT, int(row[5]))


# local_identity.is_default: 1 the default identity, 0 may become it, -1 never implicitly (a
# node's own identity).
_DEFAULT, _ELIGIBLE, _NEVER_DEFAULT = 1, 0, -1

_LOCAL_COLS = "name, identifier, vault, key_handle, is_default, created_at"


class SqlLocalIdentities:
    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def _conflict(self, local: LocalIdentity) -> None:
        if await self.get(local.name) is not None:
            raise ConflictError(f"an identity named {local.name!r} already exists")
        if await self.by_identifier(local.identifier) is not None:
            raise ConflictError(f"identity {local.identifier} is already a local identity")

    async def add(self, local: LocalIdentity, *, may_be_default: bool = True) -> None:
        for _ in range(3):  # a lost race for the default flag is retried
            await self._conflict(local)
            try:
                async with self.db.transaction() as tx:
                    if not may_be_default:
                        flag = _NEVER_DEFAULT
                    elif await tx.fetch_one("SELECT 1 FROM local_identity WHERE is_default = ?",
                                            (_DEFAULT,)):
                        flag = _ELIGIBLE
                    else:
                        flag = _DEFAULT
                    await tx.execute(
                        f"INSERT INTO local_identity ({_LOCAL_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                        (local.name, local.identifier, local.vault, local.key_handle, flag,
                         local.created_at))
                return
            except IntegrityViolation:
                continue
        await self._conflict(local)
        raise ConflictError(f"could not add identity {local.name!r} (concurrent changes)")

    async def get(self, name: str) -> LocalIdentity | None:
        row = await self.db.fetch_one(f"SELECT {_LOCAL_COLS} FROM local_identity WHERE name = ?",
                                      (name,))
        return _local(row) if row else None

    async def by_identifier(self, identifier: str) -> LocalIdentity | None:
        row = await self.db.fetch_one(
            f"SELECT {_LOCAL_COLS} FROM local_identity WHERE identifier = ?", (identifier,))
        return _local(row) if row else None

    async def default(self) -> LocalIdentity | None:
        row = await self.db.fetch_one(
            f"SELECT {_LOCAL_COLS} FROM local_identity WHERE is_default = ?", (_DEFAULT,))
        return _local(row) if row else None

    async def list(self) -> builtins.list[LocalIdentity]:
        return [_local(r) for r in await self.db.fetch_all(
            f"SELECT {_LOCAL_COLS} FROM local_identity ORDER BY name")]

    async def update_key(self, name: str, vault: str, key_handle: str) -> None:
        await self.db.execute("UPDATE local_identity SET vault = ?, key_handle = ? WHERE name = ?",
                              (vault, key_handle, name))

    async def delete(self, name: str) -> bool:
        async with self.db.transaction() as tx:
            flag = await tx.fetch_value(
                "SELECT is_default FROM local_identity WHERE name = ?" + self.db.for_update,
                (name,))
            if flag is None:
                return False
            await tx.execute("DELETE FROM local_identity WHERE name = ?", (name,))
            if flag == _DEFAULT:
                await tx.execute(
                    "UPDATE local_identity SET is_default = ? WHERE name = "
                    "(SELECT name FROM local_identity WHERE is_default = ? "
                    "ORDER BY created_at, name LIMIT 1)", (_DEFAULT, _ELIGIBLE))
            return True

    async def uses_vault(self, vault: str) -> builtins.list[str]:
        rows = await self.db.fetch_all(
            "SELECT name FROM local_identity WHERE vault = ? UNION "
            "SELECT l.name FROM purpose_key p JOIN local_identity l "
            "ON l.identifier = p.identifier WHERE p.vault = ? ORDER BY 1", (vault, vault))
        return [r[0] for r in rows]

    async def key_users(self, vault: str, key_handle: str) -> builtins.list[str]:
        rows = await self.db.fetch_all(
            "SELECT name FROM local_identity WHERE vault = ? AND key_handle = ? UNION "
            "SELECT l.name FROM purpose_key p JOIN local_identity l ON l.identifier = p.identifier "
            "WHERE p.vault = ? AND p.key_handle = ? ORDER BY 1",
            (vault, key_handle, vault, key_handle))
        return [r[0] for r in rows]


_PK_COLS = "identifier, purpose, vault, key_handle, attestation, created_at, expires_at"


class SqlPurposeKeys:
    MIGRATIONS = MIGRATIONS

    def __init__(self, db: Database) -> None:
        self.db = db
        db.require(MIGRATIONS)

    async def add(self, key: StoredPurposeKey) -> None:
        await self.db.execute(
            f"INSERT INTO purpose_key ({_PK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (identifier, purpose, key_handle) DO UPDATE SET vault = excluded.vault, "
            "attestation = excluded.attestation, created_at = excluded.created_at, "
            "expires_at = excluded.expires_at",
            (key.identifier, key.purpose, key.vault, key.key_handle, key.attestation,
             key.created_at, key.expires_at))

    async def list(self, identifier: str, purpose: str | None = None
                   ) -> builtins.list[StoredPurposeKey]:
        sql = f"SELECT {_PK_COLS} FROM purpose_key WHERE identifier = ?"
        params: builtins.list[str] = [identifier]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        rows = await self.db.fetch_all(sql + " ORDER BY expires_at DESC, key_handle", params)
        return [StoredPurposeKey(r[0], r[1], r[2], r[3], bytes(r[4]), int(r[5]), int(r[6]))
                for r in rows]

    async def replace_attestation(self, identifier: str, purpose: str, key_handle: str,
                                  attestation: bytes, created_at: int, expires_at: int) -> None:
        await self.db.execute(
            "UPDATE purpose_key SET attestation = ?, created_at = ?, expires_at = ? "
            "WHERE identifier = ? AND purpose = ? AND key_handle = ?",
            (attestation, created_at, expires_at, identifier, purpose, key_handle))

    async def delete(self, identifier: str, purpose: str | None = None,
                     key_handle: str | None = None) -> int:
        sql = "DELETE FROM purpose_key WHERE identifier = ?"
        params: builtins.list[str] = [identifier]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        if key_handle is not None:
            sql += " AND key_handle = ?"
            params.append(key_handle)
        return await self.db.execute(sql, params)
