"""Purpose-key attestations: create (signed by the identity's latest key) and verify (spec §6).

**Where we differ from Ockam.** Ockam accepts only attestations made against the subject's
latest change. Here an attestation names the change that was latest when it was made
(``subject_latest_change_hash``); it is verified with *that* change's key and window, and it stays
valid after later rotations unless a later change sets ``revoke_all_purpose_keys``. Our own
identities still re-attest their purpose keys after every rotation, so Ockam peers accept them.
"""

from __future__ import annotations

import hashlib
import time

from trust.errors import VerificationError
from trust.identities.identity import Identity
from trust.models.change_history import ChangeData
from trust.models.primitives import Signature, identifier_text, time_text
from trust.models.purpose_key import (
    Purpose,
    PurposeKeyAttestation,
    PurposeKeyAttestationData,
    PurposePublicKey,
)
from vaults.signing import SigningVault
from vaults.verify import verify_signature

DEFAULT_PURPOSE_KEY_TTL = 157_680_000
"""Five years of 365 days (Ockam's default for both purposes)."""

MAX_ALLOWED_TIME_DRIFT = 60


async def attest_purpose_key(identity: Identity, vault: SigningVault, handle: str,
                             public_key: PurposePublicKey, *, now: int | None = None,
                             ttl: int = DEFAULT_PURPOSE_KEY_TTL,
                             expires_at: int | None = None) -> PurposeKeyAttestation:
    """Attest ``public_key`` for ``identity``, signing with its latest key (``handle``).

    The expiry is capped by the latest change's ``attestations_valid_until``.
    """
    created = int(time.time()) if now is None else int(now)
    latest = identity.latest_change.change_data
    expires = created + ttl if expires_at is None else expires_at
    expires = min(expires, latest.attestations_valid_until)
    created = max(created, latest.attestations_valid_from)
    data = PurposeKeyAttestationData(
        subject=identity.identifier_bytes,
        subject_latest_change_hash=identity.latest_change_hash,
        public_key=public_key,
        created_at=created,
        expires_at=expires,
    ).to_versioned()
    m = hashlib.sha256(data).digest()
    key_type = identity.latest_public_key.key_type
    return PurposeKeyAttestation(data, Signature(key_type, await vault.sign(handle, m)))


def check_attestation_claims(subject: Identity, data: PurposeKeyAttestationData, *,
                             now: int | None = None, purpose: Purpose | None = None,
                             ockam_strict: bool = False) -> ChangeData:
    """Every check of :func:`verify_purpose_key_attestation` except the signature: the subject,
    the change it names (present, not revoked by a later change), the attesting key's validity
    window, the clock and the purpose. Returns the attesting change's data (whose primary key
    must have signed the attestation). For a caller that verified the signature of these
    exact bytes before (a warm cache); everything time-dependent is checked here every time.
    """
    t = int(time.time()) if now is None else int(now)
    changes = subject.change_history.changes
    if data.subject != changes[0].change_hash:  # the subject's identifier
        raise VerificationError(
            f"the attestation is for {identifier_text(data.subject)}, not {subject.identifier}")
    named = data.subject_latest_change_hash
    last = len(changes) - 1
    if changes[last].change_hash == named:  # the usual case: made against the latest change
        index = last
    else:
        found = subject.change_index(named)
        if found is None:
            raise VerificationError("the attestation names a change that is not in the "
                                    "subject's history")
        index = found
        if ockam_strict:
            raise VerificationError("the attestation was made before the subject's latest "
                                    "change")
        for later in changes[index + 1 :]:
            if later.change_data.revoke_all_purpose_keys:
                raise VerificationError("the attestation was revoked by a later change of the "
                                        "subject (revoke_all_purpose_keys)")
    change = changes[index].change_data
    if data.expires_at > change.attestations_valid_until:
        raise VerificationError("the attestation expires after the attesting key's validity")
    if data.created_at < change.attestations_valid_from:
        raise VerificationError("the attestation was created before the attesting key's validity")
    if data.created_at > t + MAX_ALLOWED_TIME_DRIFT:
        raise VerificationError(f"the attestation was created in the future: at "
                                f"{time_text(data.created_at)}, checked at {time_text(t)} "
                                f"({MAX_ALLOWED_TIME_DRIFT} s of clock drift allowed)")
    if data.expires_at < t:
        raise VerificationError(f"the attestation expired at {time_text(data.expires_at)}, "
                                f"checked at {time_text(t)}")
    if purpose is not None and data.public_key.purpose is not purpose:
        raise VerificationError(f"the attested key is not a {purpose.label} key")
    return change


def verify_purpose_key_attestation(subject: Identity, attestation: PurposeKeyAttestation, *,
                                   now: int | None = None, purpose: Purpose | None = None,
                                   ockam_strict: bool = False) -> PurposeKeyAttestationData:
    """Check ``attestation`` against its (already verified) subject identity.

    ``ockam_strict=True`` applies Ockam's rule instead of ours: only attestations made against
    the latest change are accepted.
    """
    data = attestation.attestation_data
    change = check_attestation_claims(subject, data, now=now, purpose=purpose,
                                      ockam_strict=ockam_strict)
    key = change.primary_public_key
    if attestation.signature.key_type is not key.key_type or \
            not verify_signature(key, attestation.data_hash, attestation.signature.data):
        raise VerificationError("invalid attestation signature")
    return data
