"""RefreshCredentials over an open channel: the peer's history must be its own, the same or
newer; new credentials are verified as in the handshake; the trust policy is checked again."""

from __future__ import annotations

import asyncio

import pytest

from tests.channels.helpers import NOW, world
from trust.channels import (
    Close,
    IdentityAndCredentials,
    PeerAuthenticator,
    RefreshCredentials,
    TrustAuthority,
    TrustPolicy,
    VerifiedPeer,
)
from trust.errors import RemoteProtocolError, UntrustedError, VerificationError
from trust.identities.creation import rotate_identity
from trust.identities.identity import Identity
from trust.models.credential import CredentialAndPurposeKey
from vaults.keys import KeyType


def _open(auth: PeerAuthenticator, history: bytes | None = None,
          credentials: tuple[CredentialAndPurposeKey, ...] = ()) -> VerifiedPeer:
    w = world()
    payload = IdentityAndCredentials.of(history or w.alice.identity.export(), w.alice.attestation,
                                        credentials)
    return auth.authenticate(payload.encode(), w.alice.static.public, now=NOW)


def _rotated() -> Identity:
    w = world()

    async def rotate() -> Identity:
        new = await w.vault.generate_key(KeyType.ED25519)
        return await rotate_identity(w.alice.identity, w.vault, w.alice.key, w.vault, new,
                                     now=NOW - 20_000)

    return asyncio.run(rotate())


def test_refresh_adds_verified_credentials() -> None:
    w = world()
    auth = PeerAuthenticator(authorities=[w.authority])
    peer = _open(auth)
    assert not peer.has_credential
    refreshed = auth.refresh(peer, RefreshCredentials(w.alice.identity.export(),
                                                      (w.alice_credential,)), now=NOW)
    assert refreshed.attributes == {"role": "admin", "team": "blue"}
    assert refreshed.static_key == peer.static_key and refreshed.identifier == peer.identifier
    # the plaintext bytes of the record work too
    raw = RefreshCredentials(w.alice.identity.export(), (w.alice_credential,)).encode()
    assert auth.refresh(peer, raw, now=NOW).has_credential
    with pytest.raises(RemoteProtocolError):
        auth.refresh(peer, Close().encode(), now=NOW)


def test_refresh_with_bad_credentials_fails() -> None:
    w = world()
    auth = PeerAuthenticator(authorities=[w.authority])
    peer = _open(auth)
    with pytest.raises(VerificationError, match="expired"):
        auth.refresh(peer, RefreshCredentials(w.alice.identity.export(),
                                              (w.alice_expired_credential,)), now=NOW)
    with pytest.raises(UntrustedError):
        auth.refresh(peer, RefreshCredentials(w.alice.identity.export(),
                                              (w.alice_foreign_credential,)), now=NOW)


def test_refresh_with_another_identity_fails() -> None:
    w = world()
    auth = PeerAuthenticator()
    peer = _open(auth)
    with pytest.raises(VerificationError, match="not of"):
        auth.refresh(peer, RefreshCredentials(w.bob.identity.export()), now=NOW)


def test_refresh_with_newer_and_older_histories() -> None:
    auth = PeerAuthenticator()
    rotated = _rotated()
    peer = _open(auth)
    newer = auth.refresh(peer, RefreshCredentials(rotated.export()), now=NOW)
    assert len(newer.identity.changes) == 2
    opened_rotated = _open(auth, history=rotated.export())
    with pytest.raises(VerificationError, match="older"):
        auth.refresh(opened_rotated, RefreshCredentials(world().alice.identity.export()), now=NOW)


def test_refresh_rechecks_the_trust_policy() -> None:
    w = world()
    for trust in (TrustAuthority(w.authority),
                  TrustPolicy('(= subject.role "admin")', authorities=(w.authority,))):
        auth = PeerAuthenticator(trust)
        peer = _open(auth, credentials=(w.alice_credential,))
        with pytest.raises(UntrustedError):
            auth.refresh(peer, RefreshCredentials(w.alice.identity.export()), now=NOW)
        assert auth.refresh(peer, RefreshCredentials(w.alice.identity.export(),
                                                     (w.alice_credential,)), now=NOW).has_credential
