"""The SQLite repositories: attribute store (keeps and expires), nonces, wallet, schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.credentials.helpers import run
from trust.credentials.attributes import SubjectAttributes
from trust.credentials.schemas import Schema
from trust.storage.credentials import SqliteAttributes, SqliteNonces, SqliteSchemas, SqliteWallet
from trust.storage.database import Database

A = "I" + "aa" * 32
B = "I" + "bb" * 32
ISSUER1 = "I" + "11" * 32
ISSUER2 = "I" + "22" * 32


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(tmp_path / "state.sqlite")
    yield d
    d.close()


def test_attribute_store_keeps_and_expires(db: Database) -> None:
    store = SqliteAttributes(db)

    async def go() -> None:
        await store.record(A, ISSUER1, {b"role": b"admin", b"level": b"3"}, schema=0,
                           created_at=100, expires_at=200, replace=True)
        await store.record(B, ISSUER1, {b"role": b"guest"}, schema=0, created_at=100,
                           expires_at=500, replace=True)
        got = await store.get(A, now=150)
        assert [(r.name, r.value, r.issuer, r.expires_at) for r in got] == [
            (b"level", b"3", ISSUER1, 200), (b"role", b"admin", ISSUER1, 200)]
        assert len(await store.get(A, now=200)) == 2  # valid through expires_at
        assert await store.get(A, now=201) == []
        assert await store.subjects(now=150) == [A, B] and await store.subjects(now=201) == [B]
        # expired rows stay until purged; purging keeps the live ones
        assert await store.purge_expired(now=201) == 2
        assert len(await store.get(B, now=201)) == 1
        assert await store.delete(B) == 1 and await store.subjects(now=0) == []

    run(go())


def test_a_new_credential_replaces_the_issuers_set_and_old_ones_do_not(db: Database) -> None:
    store = SqliteAttributes(db)

    async def go() -> None:
        await store.record(A, ISSUER1, {b"role": b"admin", b"team": b"x"}, schema=0,
                           created_at=100, expires_at=1000, replace=True)
        await store.record(A, ISSUER2, {b"role": b"auditor"}, schema=0, created_at=90,
                           expires_at=1000, replace=True)
        # a newer full credential from issuer 1 drops 'team'
        await store.record(A, ISSUER1, {b"role": b"member"}, schema=0, created_at=200,
                           expires_at=1000, replace=True)
        rows = {(r.issuer, r.name): r.value for r in await store.get(A, now=300)}
        assert rows == {(ISSUER1, b"role"): b"member", (ISSUER2, b"role"): b"auditor"}
        # an older credential changes nothing, full or selective
        await store.record(A, ISSUER1, {b"role": b"admin"}, schema=0, created_at=150,
                           expires_at=5000, replace=True)
        await store.record(A, ISSUER1, {b"role": b"admin"}, schema=0, created_at=150,
                           expires_at=5000, replace=False)
        rows = {(r.issuer, r.name): r.value for r in await store.get(A, now=300)}
        assert rows[(ISSUER1, b"role")] == b"member"
        # a presentation adds what it reveals without dropping the rest
        await store.record(A, ISSUER1, {b"region": b"eu"}, schema=0, created_at=300,
                           expires_at=400, replace=False)
        names = sorted(r.name for r in await store.get(A, now=300) if r.issuer == ISSUER1)
        assert names == [b"region", b"role"]

    run(go())


def test_subject_attributes_are_typed_and_merged(db: Database) -> None:
    store, schemas = SqliteAttributes(db), SqliteSchemas(db)
    source = SubjectAttributes(store, schemas)

    async def go() -> None:
        await schemas.add(Schema.create(5, ["level:int", "admin:bool", "groups:list"]))
        await store.record(A, ISSUER1, {b"level": b"3", b"admin": b"true",
                                        b"groups": b"\x81\x63dev"}, schema=5, created_at=100,
                           expires_at=1000, replace=True)
        await store.record(A, ISSUER2, {b"level": b"7", b"nick": b"al"}, schema=0,
                           created_at=200, expires_at=300, replace=True)
        assert await source.get(A, now=250) == {"admin": True, "groups": ["dev"], "level": "7",
                                                "nick": "al"}
        # issuer 2's newer values expire; issuer 1's typed ones remain
        assert await source.get(A, now=301) == {"admin": True, "groups": ["dev"], "level": 3}
        assert await source.get(B, now=0) == {}

    run(go())


def test_nonces_are_single_use_within_their_window(db: Database) -> None:
    nonces = SqliteNonces(db)

    async def go() -> None:
        assert await nonces.use("api", "n1", expires_at=400, now=100)
        assert not await nonces.use("api", "n1", expires_at=450, now=150)
        assert not await nonces.use("api", "n1", expires_at=700, now=400)  # still in its window
        assert await nonces.use("other", "n1", expires_at=400, now=150)
        assert await nonces.use("api", "n1", expires_at=800, now=401)  # the window closed

    run(go())
    # a second connection (another process) sees the same nonces
    with Database(db.path) as other:
        assert not run(SqliteNonces(other).use("api", "n1", expires_at=800, now=402))


def test_wallet(db: Database) -> None:
    wallet = SqliteWallet(db)

    async def go() -> None:
        s1 = await wallet.add(A, ISSUER1, A, 0, False, b"\x01\x02", 10, 20, now=5)
        same = await wallet.add(A, ISSUER1, A, 0, False, b"\x01\x02", 10, 20, now=6)
        assert same == s1 and s1.id >= 1 and s1.stored_at == 5
        s2 = await wallet.add(B, ISSUER1, B, (1 << 64) - 1, True, b"\x03", 10, 30, now=7)
        got = await wallet.get(s2.id)
        assert got is not None and got.schema == (1 << 64) - 1
        assert [s.id for s in await wallet.list()] == [s1.id, s2.id]
        assert [s.id for s in await wallet.list(B)] == [s2.id]
        assert await wallet.delete(s1.id) and not await wallet.delete(s1.id)
        assert await wallet.get(s1.id) is None

    run(go())
