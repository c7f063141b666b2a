"""Identities, keys and credentials for the channel tests, built with the real code."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.channels import vectors as v
from trust.channels import (
    ChannelIdentity,
    IdentityAndCredentials,
    VaultX25519Key,
    X25519KeyPair,
)
from trust.credentials.issuance import issue_credential
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey
from trust.models.primitives import Signature
from trust.models.purpose_key import (
    PurposeKeyAttestation,
    PurposeKeyAttestationData,
    PurposePublicKey,
)
from vaults.keys import KeyType
from vaults.software import SoftwareVault

NOW = 1_800_000_000
"""The time every handshake of the tests runs at (inside every validity window below)."""


def elixir_attestation(x25519_public: bytes, *, created: int = v.ATT_CREATED,
                       expires: int = v.ATT_EXPIRES) -> PurposeKeyAttestation:
    """The Elixir test identity attesting an X25519 key (Appendix B's rule), signed with its
    known secret."""
    subject = bytes.fromhex(v.ELIXIR_IDENTIFIER[1:])
    data = PurposeKeyAttestationData(subject, subject, PurposePublicKey.secure_channel(x25519_public),
                                     created, expires).to_versioned()
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(v.ELIXIR_SECRET)
    return PurposeKeyAttestation(data, Signature(KeyType.ED25519, sk.sign(hashlib.sha256(data).digest())))


def elixir_payload(x25519_public: bytes, **kw: int) -> IdentityAndCredentials:
    return IdentityAndCredentials.of(v.ELIXIR_HISTORY, elixir_attestation(x25519_public, **kw))


def vector_keys() -> tuple[X25519KeyPair, X25519KeyPair, X25519KeyPair, X25519KeyPair]:
    """(initiator static, initiator ephemeral, responder static, responder ephemeral) of §8.1."""
    return (X25519KeyPair.from_secret(v.INITIATOR_STATIC),
            X25519KeyPair.from_secret(v.INITIATOR_EPHEMERAL),
            X25519KeyPair.from_secret(v.RESPONDER_STATIC),
            X25519KeyPair.from_secret(v.RESPONDER_EPHEMERAL))


def appendix_b_identities() -> tuple[ChannelIdentity, ChannelIdentity]:
    """(initiator, responder) of Appendix B."""
    i_s, _, r_s, _ = vector_keys()
    return (ChannelIdentity(i_s, elixir_payload(i_s.public)),
            ChannelIdentity(r_s, elixir_payload(r_s.public)))


@dataclass
class Party:
    identity: Identity
    key: str
    static: VaultX25519Key
    attestation: PurposeKeyAttestation

    def channel_identity(self, credentials: tuple[CredentialAndPurposeKey, ...] = ()) -> ChannelIdentity:
        return ChannelIdentity(self.static, IdentityAndCredentials.of(
            self.identity.export(), self.attestation, credentials))


@dataclass
class World:
    vault: SoftwareVault
    authority: Identity
    other_authority: Identity
    alice: Party
    bob: Party
    carol: Party
    alice_credential: CredentialAndPurposeKey
    alice_expired_credential: CredentialAndPurposeKey
    alice_foreign_credential: CredentialAndPurposeKey
    """Issued by other_authority."""


async def _party(vault: SoftwareVault, key_type: KeyType, created: int) -> Party:
    key = await vault.generate_key(key_type)
    identity = await create_identity(vault, key, now=created)
    handle = vault.generate_x25519(persist=False)
    static = VaultX25519Key(vault, handle)
    att = await attest_purpose_key(identity, vault, key, PurposePublicKey.secure_channel(static.public),
                                   now=created + 10, ttl=1_000_000)
    return Party(identity, key, static, att)


async def _authority(vault: SoftwareVault) -> tuple[Identity, str, PurposeKeyAttestation]:
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=NOW - 100_000)
    sk = await vault.generate_key(KeyType.ED25519)
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.credential_signing(await vault.public_key(sk)),
                                   now=NOW - 90_000, ttl=10_000_000)
    return identity, sk, att


async def _world() -> World:
    vault = SoftwareVault()
    authority, sk, att = await _authority(vault)
    other, osk, oatt = await _authority(vault)
    alice = await _party(vault, KeyType.ED25519, NOW - 50_000)
    bob = await _party(vault, KeyType.P256, NOW - 40_000)
    carol = await _party(vault, KeyType.ED25519, NOW - 30_000)
    attrs = {"role": "admin", "team": "blue"}
    cred = await issue_credential(alice.identity, attrs, vault, sk, att, now=NOW - 1_000, ttl=86_400)
    expired = await issue_credential(alice.identity, attrs, vault, sk, att, now=NOW - 10_000, ttl=100)
    foreign = await issue_credential(alice.identity, attrs, vault, osk, oatt, now=NOW - 1_000,
                                     ttl=86_400)
    return World(vault, authority, other, alice, bob, carol, cred, expired, foreign)


@cache
def world() -> World:
    return asyncio.run(_world())


def alice_rotations() -> tuple[Identity, Identity]:
    """Two different rotations of alice (a fork): each alone is newer than her history."""
    w = world()

    async def rotate() -> tuple[Identity, Identity]:
        out = []
        for _ in range(2):
            new = await w.vault.generate_key(KeyType.ED25519)
            out.append(await rotate_identity(w.alice.identity, w.vault, w.alice.key, w.vault, new,
                                             now=NOW - 20_000))
        return out[0], out[1]

    return asyncio.run(rotate())
