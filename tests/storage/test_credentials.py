"""The credential repositories on every engine: attribute store (keeps and expires), nonces,
wallet, schemas."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.storage.conftest import SHARED, Run
from trust.credentials.attributes import SubjectAttributes
from trust.credentials.schemas import Schema
from trust.errors import ConflictError
from trust.storage import Storage, open_storage

A = "I" + "aa" * 32
B = "I" + "bb" * 32
ISSUER1 = "I" + "11" * 32
ISSUER2 = "I" + "22" * 32


def test_attribute_store_keeps_and_expires(storage: Storage, run: Run[Any]) -> None:
    store = storage.attributes

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


def test_a_new_credential_replaces_the_issuers_set_and_old_ones_do_not(storage: Storage,
                                                                       run: Run[Any]) -> None:
    store = storage.attributes

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


def test_subject_attributes_are_typed_and_merged(storage: Storage, run: Run[Any]) -> None:
    store, schemas = storage.attributes, storage.schemas
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


def test_nonces_are_single_use_within_their_window(storage: Storage, run: Run[Any]) -> None:
    nonces = storage.nonces

    async def go() -> None:
        assert await nonces.use("api", "n1", expires_at=400, now=100)
        assert not await nonces.use("api", "n1", expires_at=450, now=150)
        assert not await nonces.use("api", "n1", expires_at=700, now=400)  # still in its window
        assert await nonces.use("other", "n1", expires_at=400, now=150)
        assert await nonces.use("api", "n1", expires_at=800, now=401)  # the window closed

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_nonces_are_shared_between_connections(storage: Storage, url: str, run: Run[Any]) -> None:
    """A second connection (another process) sees the same nonces; of concurrent uses of one
    nonce through two connections exactly one succeeds."""

    async def go() -> None:
        async with open_storage(url) as other:
            assert await storage.nonces.use("api", "n1", expires_at=400, now=100)
            assert not await other.nonces.use("api", "n1", expires_at=400, now=101)
            results = await asyncio.gather(*(
                s.nonces.use("api", "race", expires_at=400, now=100)
                for _ in range(10) for s in (storage, other)))
            assert sorted(results) == [False] * 19 + [True]

    run(go())


def test_wallet(storage: Storage, run: Run[Any]) -> None:
    wallet = storage.wallet

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


def test_schemas(storage: Storage, run: Run[Any]) -> None:
    schemas = storage.schemas

    async def go() -> None:
        big = Schema.create((1 << 64) - 1, ["level:int"])
        await schemas.add(big)
        await schemas.add(Schema.create(5, ["admin:bool"]))
        with pytest.raises(ConflictError, match="already exists"):
            await schemas.add(Schema.create(5, ["other:string"]))
        got = await schemas.get((1 << 64) - 1)
        assert got is not None and got.id == big.id and got.attributes == big.attributes
        assert [s.id for s in await schemas.list()] == [5, (1 << 64) - 1]
        assert await schemas.delete(5) and not await schemas.delete(5)
        assert await schemas.get(5) is None

    run(go())


def test_a_wallet_entry_stored_twice_at_once_is_one_entry(storage: Storage,
                                                           run: Run[Any]) -> None:
    async def go() -> None:
        got = await asyncio.gather(*(storage.wallet.add(A, ISSUER1, A, 0, False, b"same", 1, 2,
                                                        now=3) for _ in range(8)))
        assert len({s.id for s in got}) == 1 and len(await storage.wallet.list()) == 1

    run(go())
