"""IdentityManager over a real home: shared keys survive deletes, a node's identity never
becomes the default, failed creations store nothing, and every way of naming an identity works."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.credentials.helpers import NOW, run
from trust.errors import ConflictError, NotFoundError, UsageError
from trust.identities.manager import CREDENTIAL_SIGNING, IdentityManager
from trust.services import open_credentials, open_identities


async def _can_sign(m: IdentityManager, name: str) -> bool:
    named = await m.get(name)
    _, v = await m.vault(named.vault)
    try:
        await v.sign(named.key_handle, hashlib.sha256(b"x").digest())
    except Exception:
        return False
    return True


def test_deleting_an_identity_keeps_a_primary_key_another_identity_uses(tmp_path: Path) -> None:
    async def go() -> None:
        m = open_identities(tmp_path)
        try:
            alice = await m.create_identity("alice", now=NOW)
            twin = await m.create_identity("twin", key_id=alice.key_handle, now=NOW + 1)
            assert twin.key_handle == alice.key_handle
            await m.delete("twin")
            assert await _can_sign(m, "alice")
            # alice can still rotate (signs with the shared key) and then be deleted entirely
            await m.rotate("alice")
            rotated = await m.get("alice")
            _, v = await m.vault("default")
            await m.delete("alice")  # no one else uses alice's current key: it goes
            assert rotated.key_handle not in await v.list_keys()  # type: ignore[attr-defined]
        finally:
            await m.close()

    run(go())


def test_deleting_an_identity_keeps_a_purpose_key_another_identity_uses(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        m = s.identities
        try:
            await m.create_identity("alice", now=NOW - 10)
            await m.create_identity("bob", now=NOW - 10)
            await s.issue("alice", "bob", {"role": "x"}, ttl=3600, now=NOW)
            [pk] = await m.purpose_keys.list((await m.get("alice")).identifier, CREDENTIAL_SIGNING)
            # an identity whose primary key is alice's credential-signing key
            await m.create_identity("borrower", key_id=pk.key_handle, now=NOW - 10)
            await m.delete("borrower")
            await s.issue("alice", "bob", {"role": "y"}, ttl=3600, now=NOW + 1)  # still signs
            # and the other way round: deleting alice keeps the key borrower2 uses
            await m.create_identity("borrower2", key_id=pk.key_handle, now=NOW - 9)
            await m.delete("alice")
            assert await _can_sign(m, "borrower2")
        finally:
            await s.close()

    run(go())


def test_a_node_identity_never_becomes_the_default(tmp_path: Path) -> None:
    async def go() -> None:
        m = open_identities(tmp_path)
        try:
            node = await m.get_or_create("node1")
            assert not node.is_default
            with pytest.raises(NotFoundError, match="no default identity"):
                await m.get()
            await m.create_identity("alice")
            assert (await m.get()).name == "alice"
            await m.create_identity("bob")
            await m.delete("alice")
            assert (await m.get()).name == "bob"  # the next eligible one, not node1
            await m.delete("bob")
            with pytest.raises(NotFoundError, match="no default identity"):
                await m.get()
            assert not (await m.get("node1")).is_default
        finally:
            await m.close()

    run(go())


def test_credential_issue_without_identity_does_not_use_a_node_identity(tmp_path: Path) -> None:
    async def issue_default() -> None:
        s = open_credentials(tmp_path)
        try:
            await s.identities.get_or_create("node1")
            with pytest.raises(NotFoundError, match="no default identity"):
                await s.issue(None, "node1", {"role": "x"}, ttl=60)
            assert await s.identities.purpose_keys.list(
                (await s.identities.get("node1")).identifier) == []
        finally:
            await s.close()

    run(issue_default())


def test_failed_creation_stores_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        m = open_identities(tmp_path)
        try:
            alice = await m.create_identity("alice", now=NOW)
            known = await m.known.list()
            # the same key at the same time makes the same identifier: refused, nothing kept
            with pytest.raises(ConflictError):
                await m.create_identity("again", key_id=alice.key_handle, now=NOW)
            assert await m.known.list() == known
            assert [n.name for n in await m.list()] == ["alice"]
            assert await _can_sign(m, "alice")
            for bad in ("", "alice\n", "-x", "a" * 65, "caf\u00e9", "I" + "0" * 64):
                with pytest.raises(UsageError):
                    await m.create_identity(bad)
            with pytest.raises(UsageError):
                await m.create_identity("zero", ttl=0)
            assert [n.name for n in await m.list()] == ["alice"]
        finally:
            await m.close()

    run(go())


def test_an_identity_is_named_by_object_name_or_identifier(tmp_path: Path) -> None:
    async def go() -> None:
        m = open_identities(tmp_path)
        try:
            alice = await m.create_identity("alice")
            for ref in (alice, alice.identity, "alice", alice.identifier,
                        alice.identifier.upper().replace("I", "I", 1)):
                assert (await m.get(ref)).name == "alice"
                assert (await m.resolve(ref)).identifier == alice.identifier
            history = alice.identity.export_hex()
            other = open_identities(tmp_path / "other")
            try:
                assert (await other.resolve(history, store=False)).identifier == alice.identifier
                assert await other.known.list() == []
                assert (await other.resolve(history)).identifier == alice.identifier
                assert await other.known.list() == [alice.identifier]
                with pytest.raises(NotFoundError):
                    await other.get(alice.identity)  # known there, but not a local identity
            finally:
                await other.close()
            with pytest.raises(UsageError):
                await m.resolve(42)  # type: ignore[arg-type]
            with pytest.raises(UsageError):
                await m.resolve("  ")
        finally:
            await m.close()

    run(go())


def test_rotate_refuses_the_current_key_and_a_key_of_the_wrong_type(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_identities(tmp_path) as m:
            alice = await m.create_identity("alice")
            other = await m.create_identity("other", key_type="p256")
            with pytest.raises(UsageError, match="already the current key"):
                await m.rotate("alice", key_id=alice.key_handle)
            with pytest.raises(UsageError, match="not a ed25519 key"):
                await m.rotate("alice", key_id=other.key_handle, key_type="ed25519")
            assert len((await m.get("alice")).changes) == 1
            rotated = await m.rotate("alice", key_id=other.key_handle, key_type="p256")
            assert len(rotated.changes) == 2

    run(go())
