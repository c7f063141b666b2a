"""What an authority signs with: its identity and its credential-signing purpose key (a key
in a signing vault, attested by the identity)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from trust.errors import UsageError
from trust.identities.identity import Identity
from trust.identities.purpose_keys import verify_purpose_key_attestation
from trust.models.primitives import Signature
from trust.models.purpose_key import Purpose, PurposeKeyAttestation
from vaults.signing import SigningVault

__all__ = ["AuthoritySigner"]


@dataclass(frozen=True)
class AuthoritySigner:
    """The authority's ``identity``, and the credential-signing key ``handle`` in ``vault``
    that ``attestation`` binds to it (e.g. from
    :meth:`trust.identities.manager.IdentityManager.credential_signing_key`)."""

    identity: Identity
    vault: SigningVault
    handle: str
    attestation: PurposeKeyAttestation

    def __post_init__(self) -> None:
        data = self.attestation.attestation_data
        if data.public_key.purpose is not Purpose.CREDENTIAL_SIGNING or \
                data.public_key.signing is None:
            raise UsageError("the authority's attested key is not a credential-signing key")
        if data.subject != self.identity.identifier_bytes:
            raise UsageError("the credential-signing key is attested for another identity")

    @property
    def identifier(self) -> str:
        return self.identity.identifier

    def check(self, now: int | None = None) -> None:
        """Verify the attestation against the identity at ``now`` (a stale or foreign one is a
        :class:`~trust.errors.VerificationError`)."""
        verify_purpose_key_attestation(self.identity, self.attestation, now=now,
                                       purpose=Purpose.CREDENTIAL_SIGNING)

    async def sign(self, data: bytes) -> Signature:
        """The signature of ``SHA-256(data)`` (as credentials are signed)."""
        key = self.attestation.attestation_data.public_key.signing
        assert key is not None
        raw = await self.vault.sign(self.handle, hashlib.sha256(data).digest())
        return Signature(key.key_type, raw)
