"""A small world of identities and keys in a software vault, built with the real code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from trust.credentials.issuance import issue_credential, issue_selective_credential
from trust.credentials.presentation import present
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey, DisclosableCredential, Presentation
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault

T = TypeVar("T")

NOW = 1_800_000_000
"""The time every scenario is built and checked at (unless a test says otherwise)."""

ATT_CREATED = NOW - 5_000
ATT_EXPIRES = NOW + 5_000_000
ATTRIBUTES = {"role": "admin", "level": "3", "project": "p-42", "region": "eu-west"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class World:
    vault: SoftwareVault
    issuer: Identity
    issuer_key: str
    signing_key: str
    attestation: PurposeKeyAttestation
    holder: Identity
    holder_key: str
    other: Identity
    other_key: str

    async def issue(self, attributes: dict[str, str] | None = None, **kw: Any
                    ) -> CredentialAndPurposeKey:
        kw.setdefault("now", NOW)
        return await issue_credential(self.holder, ATTRIBUTES if attributes is None else attributes,
                                      self.vault, self.signing_key, self.attestation, **kw)

    async def issue_selective(self, attributes: dict[str, str] | None = None, **kw: Any
                              ) -> DisclosableCredential:
        kw.setdefault("now", NOW)
        return await issue_selective_credential(
            self.holder, ATTRIBUTES if attributes is None else attributes, self.vault,
            self.signing_key, self.attestation, **kw)

    async def present(self, held: DisclosableCredential, reveal: list[str], *,
                      audience: str = "api", nonce: str = "n-1", now: int = NOW) -> Presentation:
        return await present(held, self.holder, self.vault, self.holder_key, reveal=reveal,
                             audience=audience, nonce=nonce, now=now)


async def make_world(key_type: KeyType = KeyType.ED25519, *, att_created: int = ATT_CREATED,
                     att_expires: int = ATT_EXPIRES) -> World:
    v = SoftwareVault()
    ik = await v.generate_key(key_type)
    issuer = await create_identity(v, ik, now=NOW - 10_000)
    sk = await v.generate_key(key_type)
    att = await attest_purpose_key(issuer, v, ik,
                                   PurposePublicKey.credential_signing(await v.public_key(sk)),
                                   now=att_created, expires_at=att_expires)
    hk = await v.generate_key(key_type)
    holder = await create_identity(v, hk, now=NOW - 9_000)
    ok = await v.generate_key(key_type)
    other = await create_identity(v, ok, now=NOW - 8_000)
    return World(v, issuer, ik, sk, att, holder, hk, other, ok)
