"""SQLite implementations of the identity repositories (known identities, local named
identities, purpose keys)."""

from __future__ import annotations

import builtins
import time

from trust.errors import ConflictError
from trust.identities.identity import Comparison, Identity, verify_change_history
from trust.identities.repositories import LocalIdentity, StoredPurposeKey
from trust.storage.database import Database

SCHEMA = [
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
]


class SqliteKnownIdentities:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("identities", SCHEMA)

    async def get(self, identifier: str) -> bytes | None:
        row = self.db.query_one("SELECT change_history FROM known_identity WHERE identifier = ?",
                                (identifier,))
        return bytes(row[0]) if row else None

    async def store(self, identity: Identity) -> Comparison | None:
        with self.db.transaction() as c:
            row = c.execute("SELECT change_history FROM known_identity WHERE identifier = ?",
                            (identity.identifier,)).fetchone()
            if row is None:
                c.execute("INSERT INTO known_identity VALUES (?, ?, ?)",
                          (identity.identifier, identity.export(), int(time.time())))
                return None
            known = verify_change_history(bytes(row[0]), cache=True)
            cmp = identity.compare(known)
            if cmp is Comparison.CONFLICT:
                raise ConflictError(
                    f"the history of {identity.identifier} conflicts with the stored one "
                    "(a different change at the same position)")
            if cmp is Comparison.OLDER:
                raise ConflictError(
                    f"the history of {identity.identifier} is older than the stored one "
                    f"({len(identity.changes)} changes < {len(known.changes)})")
            if cmp is Comparison.NEWER:
                c.execute("UPDATE known_identity SET change_history = ?, updated_at = ? "
                          "WHERE identifier = ?",
                          (identity.export(), int(time.time()), identity.identifier))
            return cmp

    async def list(self) -> list[str]:
        return [r[0] for r in self.db.query_all(
            "SELECT identifier FROM known_identity ORDER BY identifier")]

    async def delete(self, identifier: str) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM known_identity WHERE identifier = ?",
                             (identifier,)).rowcount > 0


def _local(row: tuple) -> LocalIdentity:  # type: ignore[type-arg]
    return LocalIdentity(row[0], row[1], row[2], row[3], row[4] == _DEFAULT, row[5])


# local_identity.is_default: 1 the default identity, 0 may become it, -1 never implicitly (a
# node's own identity).
_DEFAULT, _ELIGIBLE, _NEVER_DEFAULT = 1, 0, -1


_LOCAL_COLS = "name, identifier, vault, key_handle, is_default, created_at"


class SqliteLocalIdentities:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("identities", SCHEMA)

    async def add(self, local: LocalIdentity, *, may_be_default: bool = True) -> None:
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM local_identity WHERE name = ?", (local.name,)).fetchone():
                raise ConflictError(f"an identity named {local.name!r} already exists")
            if c.execute("SELECT 1 FROM local_identity WHERE identifier = ?",
                         (local.identifier,)).fetchone():
                raise ConflictError(f"identity {local.identifier} is already a local identity")
            if not may_be_default:
                flag = _NEVER_DEFAULT
            elif c.execute("SELECT 1 FROM local_identity WHERE is_default = ?",
                           (_DEFAULT,)).fetchone():
                flag = _ELIGIBLE
            else:
                flag = _DEFAULT
            c.execute(f"INSERT INTO local_identity ({_LOCAL_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                      (local.name, local.identifier, local.vault, local.key_handle, flag,
                       local.created_at))

    async def get(self, name: str) -> LocalIdentity | None:
        row = self.db.query_one(f"SELECT {_LOCAL_COLS} FROM local_identity WHERE name = ?",
                                (name,))
        return _local(row) if row else None

    async def by_identifier(self, identifier: str) -> LocalIdentity | None:
        row = self.db.query_one(f"SELECT {_LOCAL_COLS} FROM local_identity WHERE identifier = ?",
                                (identifier,))
        return _local(row) if row else None

    async def default(self) -> LocalIdentity | None:
        row = self.db.query_one(f"SELECT {_LOCAL_COLS} FROM local_identity WHERE is_default = ?",
                                (_DEFAULT,))
        return _local(row) if row else None

    async def list(self) -> list[LocalIdentity]:
        return [_local(r) for r in self.db.query_all(
            f"SELECT {_LOCAL_COLS} FROM local_identity ORDER BY name")]

    async def update_key(self, name: str, vault: str, key_handle: str) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE local_identity SET vault = ?, key_handle = ? WHERE name = ?",
                      (vault, key_handle, name))

    async def delete(self, name: str) -> bool:
        with self.db.transaction() as c:
            row = c.execute("SELECT is_default FROM local_identity WHERE name = ?",
                            (name,)).fetchone()
            if row is None:
                return False
            c.execute("DELETE FROM local_identity WHERE name = ?", (name,))
            if row[0] == _DEFAULT:
                c.execute("UPDATE local_identity SET is_default = ? WHERE name = "
                          "(SELECT name FROM local_identity WHERE is_default = ? "
                          "ORDER BY created_at, name LIMIT 1)", (_DEFAULT, _ELIGIBLE))
            return True

    async def uses_vault(self, vault: str) -> builtins.list[str]:
        rows = self.db.query_all(
            "SELECT name FROM local_identity WHERE vault = ? UNION "
            "SELECT l.name FROM purpose_key p JOIN local_identity l "
            "ON l.identifier = p.identifier WHERE p.vault = ? ORDER BY 1", (vault, vault))
        return [r[0] for r in rows]

    async def key_users(self, vault: str, key_handle: str) -> builtins.list[str]:
        rows = self.db.query_all(
            "SELECT name FROM local_identity WHERE vault = ? AND key_handle = ? UNION "
            "SELECT l.name FROM purpose_key p JOIN local_identity l ON l.identifier = p.identifier "
            "WHERE p.vault = ? AND p.key_handle = ? ORDER BY 1",
            (vault, key_handle, vault, key_handle))
        return [r[0] for r in rows]


_PK_COLS = "identifier, purpose, vault, key_handle, attestation, created_at, expires_at"


class SqlitePurposeKeys:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("identities", SCHEMA)

    async def add(self, key: StoredPurposeKey) -> None:
        with self.db.transaction() as c:
            c.execute(f"INSERT OR REPLACE INTO purpose_key ({_PK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (key.identifier, key.purpose, key.vault, key.key_handle, key.attestation,
                       key.created_at, key.expires_at))

    async def list(self, identifier: str, purpose: str | None = None) -> list[StoredPurposeKey]:
        sql = f"SELECT {_PK_COLS} FROM purpose_key WHERE identifier = ?"
        params: list[str] = [identifier]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        rows = self.db.query_all(sql + " ORDER BY expires_at DESC", params)
        return [StoredPurposeKey(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]

    async def replace_attestation(self, identifier: str, purpose: str, key_handle: str,
                                  attestation: bytes, created_at: int, expires_at: int) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE purpose_key SET attestation = ?, created_at = ?, expires_at = ? "
                      "WHERE identifier = ? AND purpose = ? AND key_handle = ?",
                      (attestation, created_at, expires_at, identifier, purpose, key_handle))

    async def delete(self, identifier: str, purpose: str | None = None,
                     key_handle: str | None = None) -> int:
        sql = "DELETE FROM purpose_key WHERE identifier = ?"
        params: list[str] = [identifier]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        if key_handle is not None:
            sql += " AND key_handle = ?"
            params.append(key_handle)
        with self.db.transaction() as c:
            return c.execute(sql, params).rowcount
