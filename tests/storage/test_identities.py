"""The identity repositories and vault configurations on every engine, and the history
comparison that now lives in the service (IdentityManager.remember) over them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.storage.conftest import SHARED, Run
from trust.errors import ConflictError, NotFoundError, StorageError
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Comparison, Identity
from trust.identities.repositories import LocalIdentity, StoredPurposeKey
from trust.services import identity_manager
from trust.storage import Storage, open_storage
from trust.vault_config import VaultConfig
from vaults.keys import KeyType
from vaults.software import SoftwareVault

NOW = 1_800_000_000


def _local(name: str, n: int, created_at: int = 1, vault: str = "default",
           handle: str | None = None) -> LocalIdentity:
    return LocalIdentity(name, "I" + f"{n:02x}" * 32, vault, handle or f"h-{name}", False,
                         created_at)


async def _histories() -> tuple[Identity, Identity, Identity]:
    """An identity, its rotation (newer), and another history of the same identifier that
    conflicts with the rotation (a different second change)."""
    v = SoftwareVault()
    k1 = await v.generate_key(KeyType.ED25519)
    first = await create_identity(v, k1, now=NOW)
    k2, k3 = await v.generate_key(KeyType.ED25519), await v.generate_key(KeyType.ED25519)
    second = await rotate_identity(first, v, k1, v, k2, now=NOW + 1)
    fork = await rotate_identity(first, v, k1, v, k3, now=NOW + 1)
    return first, second, fork


def test_known_identities_store_bytes_with_compare_and_set(storage: Storage,
                                                           run: Run[Any]) -> None:
    known = storage.known_identities
    ident = "I" + "ab" * 32

    async def go() -> None:
        assert await known.get(ident) is None
        assert await known.add(ident, b"v1", now=1)
        assert not await known.add(ident, b"other", now=2)  # one is stored: nothing written
        assert await known.get(ident) == b"v1"
        assert not await known.replace(ident, b"v2", previous=b"stale", now=3)
        assert await known.replace(ident, b"v2", previous=b"v1", now=3)
        assert await known.get(ident) == b"v2" and await known.list() == [ident]
        assert await known.delete(ident) and not await known.delete(ident)
        assert not await known.replace(ident, b"v3", previous=b"v2", now=4)  # gone

    run(go())


def test_remember_keeps_the_newest_history_and_refuses_older_and_conflicting(
        storage: Storage, run: Run[Any]) -> None:
    manager = identity_manager(storage)

    async def go() -> None:
        first, second, fork = await _histories()
        assert await manager.remember(first) is None
        assert await manager.remember(first) is Comparison.EQUAL
        assert await manager.remember(second) is Comparison.NEWER
        assert await storage.known_identities.get(first.identifier) == second.export()
        with pytest.raises(ConflictError, match="older than the stored one"):
            await manager.remember(first)
        with pytest.raises(ConflictError, match="conflicts with the stored one"):
            await manager.remember(fork)
        assert await storage.known_identities.get(first.identifier) == second.export()

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_concurrent_remembering_through_two_connections_ends_with_the_newest(
        url: str, run: Run[Any]) -> None:
    """Writers racing (two processes, in effect) never replace a newer history with an older
    one: the stored one is always the rotation, and a writer that lost only hears
    ConflictError (older) or EQUAL."""
    async def go() -> None:
        first, second, _ = await _histories()
        for _ in range(5):
            async with open_storage(url) as a, open_storage(url) as b:
                await a.known_identities.delete(first.identifier)
                ma, mb = identity_manager(a), identity_manager(b)
                results = await asyncio.gather(
                    *(m.remember(h) for m in (ma, mb) for h in (first, second, first, second)),
                    return_exceptions=True)
                for r in results:
                    assert r in (None, Comparison.EQUAL, Comparison.NEWER) or \
                        isinstance(r, ConflictError), r
                assert await b.known_identities.get(first.identifier) == second.export()

    run(go())


def test_local_identities_default_rules(storage: Storage, run: Run[Any]) -> None:
    local = storage.local_identities

    async def go() -> None:
        await local.add(_local("node1", 1, created_at=1), may_be_default=False)
        assert await local.default() is None  # a node's own identity is never made default
        await local.add(_local("alice", 2, created_at=2))
        await local.add(_local("bob", 3, created_at=3))
        await local.add(_local("carol", 4, created_at=3))
        default = await local.default()
        assert default is not None and default.name == "alice"
        assert [x.name for x in await local.list()] == ["alice", "bob", "carol", "node1"]
        with pytest.raises(ConflictError, match="named 'bob' already exists"):
            await local.add(_local("bob", 9))
        with pytest.raises(ConflictError, match="already a local identity"):
            await local.add(_local("bobby", 3))
        assert await local.delete("alice")  # the oldest eligible one becomes the default
        default = await local.default()
        assert default is not None and default.name == "bob"
        assert not await local.delete("alice")
        found = await local.by_identifier("I" + "04" * 32)
        assert found is not None and found.name == "carol" and not found.is_default
        await local.update_key("carol", "hsm", "k9")
        assert await local.get("carol") == _local("carol", 4, 3, "hsm", "k9")
        await local.delete("bob")
        await local.delete("carol")
        assert await local.default() is None  # node1 stays not-default

    run(go())


@pytest.mark.parametrize("engine", SHARED)
def test_identities_added_at_once_through_two_connections_make_one_default(
        url: str, run: Run[Any]) -> None:
    async def go() -> None:
        async with open_storage(url) as a, open_storage(url) as b:
            await asyncio.gather(*(s.local_identities.add(_local(f"id{i}{j}", 10 * i + j))
                                   for i, s in enumerate((a, b)) for j in range(6)))
            listed = await a.local_identities.list()
            assert len(listed) == 12 and sum(x.is_default for x in listed) == 1

    run(go())


def test_purpose_keys_and_who_uses_a_key(storage: Storage, run: Run[Any]) -> None:
    keys, local = storage.purpose_keys, storage.local_identities
    alice = _local("alice", 1, vault="v1", handle="primary")

    async def go() -> None:
        await local.add(alice)
        pk = StoredPurposeKey(alice.identifier, "secure_channel", "v2", "x1", b"att", 10, 100)
        await keys.add(pk)
        await keys.add(StoredPurposeKey(alice.identifier, "credential_signing", "v1", "s1",
                                        b"att2", 10, 200))
        await keys.add(StoredPurposeKey(alice.identifier, "secure_channel", "v2", "x1", b"att3",
                                        20, 300))  # the same key again: replaced
        listed = await keys.list(alice.identifier)
        assert [(k.key_handle, k.attestation, k.expires_at) for k in listed] == [
            ("x1", b"att3", 300), ("s1", b"att2", 200)]
        assert [k.key_handle for k in await keys.list(alice.identifier, "secure_channel")] == \
            ["x1"]
        await keys.replace_attestation(alice.identifier, "secure_channel", "x1", b"new", 30, 400)
        assert (await keys.list(alice.identifier, "secure_channel"))[0].attestation == b"new"
        assert await local.uses_vault("v2") == ["alice"] and await local.uses_vault("v3") == []
        assert await local.key_users("v1", "primary") == ["alice"]
        assert await local.key_users("v1", "s1") == ["alice"]
        assert await local.key_users("v1", "x1") == []
        assert await keys.delete(alice.identifier, "credential_signing") == 1
        assert await keys.delete(alice.identifier, key_handle="x1") == 1
        assert await keys.list(alice.identifier) == []

    run(go())


def test_vault_configurations(storage: Storage, run: Run[Any]) -> None:
    configs = storage.vault_configs

    async def go() -> None:
        await configs.add(VaultConfig("hsm", "pkcs11", {"uri": "pkcs11:token=t", "pin_env": "P"},
                                      5))
        await configs.add(VaultConfig("default", "file", {}, 6))
        with pytest.raises(ConflictError, match="already exists"):
            await configs.add(VaultConfig("hsm", "file", {}, 7))
        got = await configs.get("hsm")
        assert got == VaultConfig("hsm", "pkcs11", {"pin_env": "P", "uri": "pkcs11:token=t"}, 5)
        assert [c.name for c in await configs.list()] == ["default", "hsm"]
        assert await configs.find("nope") is None
        with pytest.raises(NotFoundError, match="no vault named 'nope'"):
            await configs.get("nope")
        await configs.delete("hsm")
        with pytest.raises(NotFoundError):
            await configs.delete("hsm")
        await storage.db.execute("INSERT INTO vault (name, backend, params, created_at) "
                                 "VALUES ('bad', 'file', '[1]', 1)")
        with pytest.raises(StorageError, match="malformed"):
            await configs.get("bad")

    run(go())
