"""One shape for the Python API: an identity is accepted as an object (Identity or
NamedIdentity), a local name or an identifier wherever one is meant; credentials as objects,
bytes or hex; ``now`` defaults to the clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.credentials.helpers import run
from trust.credentials.verification import verify_credential
from trust.errors import DecodeError, NotFoundError, UntrustedError, UsageError
from trust.identities.identity import Identity
from trust.identities.manager import NamedIdentity
from trust.services import open_credentials


def test_named_identity_is_an_identity(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_credentials(tmp_path) as s:
            authority = await s.identities.create_identity("authority")
            alice = await s.identities.create_identity("alice")
            assert isinstance(alice, Identity) and isinstance(alice, NamedIdentity)
            assert alice == alice.identity and alice.identity == alice
            assert hash(alice) == hash(alice.identity)
            assert alice.identity.identifier == alice.identifier
            credential = await s.issue(authority, alice, {"role": "admin"}, ttl=600)
            # the pure function takes NamedIdentity authorities (was AttributeError)
            v = verify_credential(credential, [authority])
            assert v.subject == alice.identifier and v.policy_subject() == {"role": "admin"}
            v = verify_credential(credential, [authority], expected_subject=alice)
            assert v.issuer == authority.identifier

    run(go())


def test_every_way_of_naming_an_identity_works(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_credentials(tmp_path) as s:
            authority = await s.identities.create_identity("authority")
            alice = await s.identities.create_identity("alice")
            for issuer in (authority, authority.identity, "authority", authority.identifier,
                           None):
                for subject in (alice, alice.identity, "alice", alice.identifier,
                                alice.identity.export_hex()):
                    c = await s.issue(issuer, subject, {"role": "x"}, ttl=600)
                    assert c.credential.subject_text == alice.identifier
            c = await s.issue("authority", "alice", {"role": "admin"}, ttl=600)
            for credential in (c, c.encode(), c.hex(), "  " + c.hex() + "\n"):
                for authorities in (authority, [authority], "authority", [authority.identifier],
                                    authority.identity.export_hex(), (a for a in [authority])):
                    v = await s.verify(credential, authorities, subject="alice")
                    assert v.subject == alice.identifier
            assert await s.attributes_of("alice") == {"role": "admin"}
            assert await s.attributes_of(alice) == {"role": "admin"}
            assert await s.attributes_of(alice.identifier.upper().replace("I", "I", 1)) == \
                {"role": "admin"}
            assert await s.subject_attributes().get(alice) == {"role": "admin"}  # now: the clock
            with pytest.raises(UntrustedError):
                await s.verify(c, "alice")
            with pytest.raises(DecodeError):
                await s.verify("zz", authority)
            with pytest.raises(UsageError):
                await s.verify(c, [])
            with pytest.raises(NotFoundError):
                await s.verify(c, "nobody")

    run(go())


def test_wallet_and_presentations_take_the_same_shapes(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_credentials(tmp_path) as s:
            authority = await s.identities.create_identity("authority")
            alice = await s.identities.create_identity("alice")
            held = await s.issue(authority, alice, {"role": "admin", "team": "blue"}, ttl=600,
                                 selective=True)
            stored = await s.store(alice, held.hex(), "authority")
            assert stored.holder == alice.identifier
            assert [x.id for x in await s.list_stored(alice)] == [stored.id]
            assert [x.id for x in await s.list_stored(alice.identifier)] == [stored.id]
            p = await s.present(alice, held.encode(), "team", audience="api", nonce="n1")
            vp = await s.verify_presentation(p.hex(), authority, audience="api", nonce="n1",
                                             subject="alice")
            assert vp.credential.policy_subject() == {"team": "blue"}
            with pytest.raises(UsageError):
                await s.present(alice, (await s.issue(authority, alice, {}, ttl=60)).hex(), [],
                                audience="api", nonce="n2")

    run(go())
