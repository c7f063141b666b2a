"""Issuing credentials: Ockam-format (spec §7) and selective-disclosure.

The issuer signs ``SHA-256(data)`` with its credential-signing purpose key, so any signing vault
works, including HSM/KMS ones that only sign digests. Callers obtain the key and its attestation
from :meth:`trust.identities.manager.IdentityManager.credential_signing_key`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from trust.errors import UsageError
from trust.identities.identity import Identity
from trust.models.credential import (
    DIGEST_SIZE,
    SALT_SIZE,
    AttributeMapping,
    Attributes,
    Credential,
    CredentialAndPurposeKey,
    CredentialData,
    DisclosableCredential,
    Disclosure,
    SelectiveCredentialData,
)
from trust.models.primitives import Signature
from trust.models.purpose_key import Purpose, PurposeKeyAttestation
from vaults.signing import SigningVault

DEFAULT_CREDENTIAL_TTL = 2_592_000
"""30 days, Ockam's DEFAULT_CREDENTIAL_VALIDITY."""

MAX_DECOYS = 1024

RandomBytes = Callable[[int], bytes]


async def sign_credential_data(data: CredentialData | SelectiveCredentialData, vault: SigningVault,
                               handle: str, attestation: PurposeKeyAttestation) -> Credential:
    """Sign a credential payload as it is, without any check (tests build invalid ones)."""
    key = attestation.attestation_data.public_key.signing
    if key is None:
        raise UsageError("the attested key is not a credential-signing key")
    raw = data.to_versioned()
    signature = await vault.sign(handle, hashlib.sha256(raw).digest())
    return Credential(raw, Signature(key.key_type, signature))


def _window(attestation: PurposeKeyAttestation, now: int | None, ttl: int,
            created_at: int | None, expires_at: int | None) -> tuple[int, int]:
    if attestation.attestation_data.public_key.purpose is not Purpose.CREDENTIAL_SIGNING:
        raise UsageError("the attested key is not a credential-signing key")
    created = (int(time.time()) if now is None else int(now)) if created_at is None else created_at
    if ttl < 0:
        raise UsageError("a credential's time to live cannot be negative")
    expires = created + ttl if expires_at is None else expires_at
    if expires < created:
        raise UsageError("a credential cannot expire before it is created")
    d = attestation.attestation_data
    if created < d.created_at:
        raise UsageError(f"the credential-signing key was attested at {d.created_at}, after the "
                         f"credential's creation time {created}")
    if expires > d.expires_at:
        raise UsageError(f"the credential would expire at {expires}, after its signing key "
                         f"({d.expires_at})")
    return created, expires


async def issue_credential(subject: Identity, attributes: Attributes | AttributeMapping,
                           vault: SigningVault, handle: str, attestation: PurposeKeyAttestation, *,
                           now: int | None = None, ttl: int = DEFAULT_CREDENTIAL_TTL,
                           created_at: int | None = None,
                           expires_at: int | None = None) -> CredentialAndPurposeKey:
    """An Ockam-format credential about ``subject`` (its latest change), valid from ``now``
    for ``ttl`` seconds, signed with the purpose key ``handle`` attested by ``attestation``."""
    attrs = attributes if isinstance(attributes, Attributes) else Attributes.of(attributes)
    created, expires = _window(attestation, now, ttl, created_at, expires_at)
    data = CredentialData(subject.identifier_bytes, subject.latest_change_hash, attrs, created,
                          expires)
    return CredentialAndPurposeKey(await sign_credential_data(data, vault, handle, attestation),
                                   attestation)


def make_disclosures(attributes: Attributes, random_bytes: RandomBytes = secrets.token_bytes
                     ) -> tuple[Disclosure, ...]:
    """One disclosure per attribute, each with a fresh 16-byte salt."""
    return tuple(Disclosure.create(random_bytes(SALT_SIZE), k, v) for k, v in attributes.entries)


async def issue_selective_credential(subject: Identity,
                                     attributes: Attributes | AttributeMapping,
                                     vault: SigningVault, handle: str,
                                     attestation: PurposeKeyAttestation, *,
                                     now: int | None = None, ttl: int = DEFAULT_CREDENTIAL_TTL,
                                     decoys: int = 0,
                                     random_bytes: RandomBytes = secrets.token_bytes,
                                     created_at: int | None = None,
                                     expires_at: int | None = None) -> DisclosableCredential:
    """A selective-disclosure credential: the issuer signs the sorted digests of salted
    disclosures (plus ``decoys`` random digests that hide the count); the holder gets every
    disclosure and later reveals the ones it chooses."""
    if not 0 <= decoys <= MAX_DECOYS:
        raise UsageError(f"decoys must be between 0 and {MAX_DECOYS}")
    attrs = attributes if isinstance(attributes, Attributes) else Attributes.of(attributes)
    created, expires = _window(attestation, now, ttl, created_at, expires_at)
    disclosures = make_disclosures(attrs, random_bytes)
    digests = {d.digest for d in disclosures}
    if len(digests) != len(disclosures):
        raise UsageError("two disclosures got the same salt (is the random source random?)")
    for _ in range(decoys):
        decoy = random_bytes(DIGEST_SIZE)
        if decoy in digests or len(decoy) != DIGEST_SIZE:
            raise UsageError("a decoy digest repeats (is the random source random?)")
        digests.add(decoy)
    data = SelectiveCredentialData(subject.identifier_bytes, subject.latest_change_hash,
                                   attrs.schema, tuple(sorted(digests)), created, expires)
    credential = await sign_credential_data(data, vault, handle, attestation)
    return DisclosableCredential(CredentialAndPurposeKey(credential, attestation), disclosures)
