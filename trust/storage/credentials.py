"""SQLite implementations of the credential repositories: schemas, the wallet of held
credentials, the attribute store and the seen presentation nonces."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from trust.credentials.repositories import AttributeRecord, StoredCredential
from trust.credentials.schemas import Schema
from trust.errors import ConflictError
from trust.storage.database import Database

SCHEMA = [
    # u64 identifiers do not fit SQLite's signed INTEGER: schema ids are stored as decimal text.
    """CREATE TABLE IF NOT EXISTS credential_schema (
        id TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS credential_wallet (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        holder TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        selective INTEGER NOT NULL,
        data BLOB NOT NULL,
        digest BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        stored_at INTEGER NOT NULL,
        UNIQUE (holder, digest)
    )""",
    """CREATE TABLE IF NOT EXISTS subject_attribute (
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        name BLOB NOT NULL,
        value BLOB NOT NULL,
        schema_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (subject, issuer, name)
    )""",
    "CREATE INDEX IF NOT EXISTS subject_attribute_expiry ON subject_attribute (expires_at)",
    """CREATE TABLE IF NOT EXISTS seen_nonce (
        audience TEXT NOT NULL,
        nonce TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (audience, nonce)
    )""",
]


class SqliteSchemas:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("credentials", SCHEMA)

    async def add(self, schema: Schema, *, now: int = 0) -> None:
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM credential_schema WHERE id = ?",
                         (str(schema.id),)).fetchone():
                raise ConflictError(f"schema {schema.id} already exists")
            c.execute("INSERT INTO credential_schema VALUES (?, ?, ?)",
                      (str(schema.id), json.dumps(schema.to_json()), now))

    async def get(self, schema_id: int) -> Schema | None:
        row = self.db.query_one("SELECT definition FROM credential_schema WHERE id = ?",
                                (str(schema_id),))
        return Schema.from_json(json.loads(row[0])) if row else None

    async def list(self) -> list[Schema]:
        rows = self.db.query_all("SELECT definition FROM credential_schema")
        return sorted((Schema.from_json(json.loads(r[0])) for r in rows), key=lambda s: s.id)

    async def delete(self, schema_id: int) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM credential_schema WHERE id = ?",
                             (str(schema_id),)).rowcount > 0


_WALLET_COLS = ("id, holder, issuer, subject, schema_id, selective, data, created_at, expires_at, "
                "stored_at")


def _stored(row: tuple) -> StoredCredential:  # type: ignore[type-arg]
    return StoredCredential(row[0], row[1], row[2], row[3], int(row[4]), bool(row[5]),
                            bytes(row[6]), row[7], row[8], row[9])


class SqliteWallet:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("credentials", SCHEMA)

    async def add(self, holder: str, issuer: str, subject: str, schema: int, selective: bool,
                  data: bytes, created_at: int, expires_at: int, *, now: int) -> StoredCredential:
        digest = hashlib.sha256(data).digest()
        with self.db.transaction() as c:
            row = c.execute(f"SELECT {_WALLET_COLS} FROM credential_wallet WHERE holder = ? AND "
                            "digest = ?", (holder, digest)).fetchone()
            if row is not None:
                return _stored(row)
            cur = c.execute(
                "INSERT INTO credential_wallet (holder, issuer, subject, schema_id, selective, data, "
                "digest, created_at, expires_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (holder, issuer, subject, str(schema), int(selective), data, digest, created_at,
                 expires_at, now))
            new_id = cur.lastrowid
        return StoredCredential(int(new_id or 0), holder, issuer, subject, schema, selective, data,
                                created_at, expires_at, now)

    async def get(self, credential_id: int) -> StoredCredential | None:
        row = self.db.query_one(f"SELECT {_WALLET_COLS} FROM credential_wallet WHERE id = ?",
                                (credential_id,))
        return _stored(row) if row else None

    async def list(self, holder: str | None = None) -> list[StoredCredential]:
        if holder is None:
            rows = self.db.query_all(f"SELECT {_WALLET_COLS} FROM credential_wallet ORDER BY id")
        else:
            rows = self.db.query_all(f"SELECT {_WALLET_COLS} FROM credential_wallet "
                                     "WHERE holder = ? ORDER BY id", (holder,))
        return [_stored(r) for r in rows]

    async def delete(self, credential_id: int) -> bool:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM credential_wallet WHERE id = ?",
                             (credential_id,)).rowcount > 0


_ATTR_COLS = "subject, issuer, name, value, schema_id, created_at, expires_at"


class SqliteAttributes:
    """The attribute store: one row per (subject, issuer, attribute name)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("credentials", SCHEMA)

    async def record(self, subject: str, issuer: str, attributes: Mapping[bytes, bytes], *,
                     schema: int, created_at: int, expires_at: int, replace: bool) -> None:
        with self.db.transaction() as c:
            if replace:
                row = c.execute("SELECT max(created_at) FROM subject_attribute WHERE subject = ? "
                                "AND issuer = ?", (subject, issuer)).fetchone()
                if row and row[0] is not None and row[0] > created_at:
                    return
                c.execute("DELETE FROM subject_attribute WHERE subject = ? AND issuer = ?",
                          (subject, issuer))
            for name, value in attributes.items():
                c.execute(
                    f"INSERT INTO subject_attribute ({_ATTR_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (subject, issuer, name) DO UPDATE SET value = excluded.value, "
                    "schema_id = excluded.schema_id, created_at = excluded.created_at, "
                    "expires_at = excluded.expires_at WHERE excluded.created_at >= created_at",
                    (subject, issuer, bytes(name), bytes(value), str(schema), created_at,
                     expires_at))

    async def get(self, subject: str, *, now: int) -> list[AttributeRecord]:
        rows = self.db.query_all(f"SELECT {_ATTR_COLS} FROM subject_attribute WHERE subject = ? "
                                 "AND expires_at >= ? ORDER BY name, issuer", (subject, now))
        return [AttributeRecord(r[0], r[1], bytes(r[2]), bytes(r[3]), int(r[4]), r[5], r[6])
                for r in rows]

    async def subjects(self, *, now: int) -> list[str]:
        return [r[0] for r in self.db.query_all(
            "SELECT DISTINCT subject FROM subject_attribute WHERE expires_at >= ? ORDER BY subject",
            (now,))]

    async def purge_expired(self, *, now: int) -> int:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM subject_attribute WHERE expires_at < ?", (now,)).rowcount

    async def delete(self, subject: str, issuer: str | None = None) -> int:
        with self.db.transaction() as c:
            if issuer is None:
                return c.execute("DELETE FROM subject_attribute WHERE subject = ?",
                                 (subject,)).rowcount
            return c.execute("DELETE FROM subject_attribute WHERE subject = ? AND issuer = ?",
                             (subject, issuer)).rowcount


class SqliteNonces:
    """Presentation nonces seen by this verifier, kept until their window closes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema("credentials", SCHEMA)

    async def use(self, audience: str, nonce: str, *, expires_at: int, now: int) -> bool:
        with self.db.transaction() as c:
            c.execute("DELETE FROM seen_nonce WHERE expires_at < ?", (now,))
            if c.execute("SELECT 1 FROM seen_nonce WHERE audience = ? AND nonce = ?",
                         (audience, nonce)).fetchone():
                return False
            c.execute("INSERT INTO seen_nonce VALUES (?, ?, ?)", (audience, nonce, expires_at))
            return True
