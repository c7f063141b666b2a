"""Credential verification (spec §7), pure and synchronous: already-loaded objects in, a
:class:`VerifiedCredential` or a typed error out.

Stricter than Ockam where Ockam has gaps: the issuer must be one of the given authorities (checked
first); ``subject_latest_change_hash`` must be one of the subject's change hashes when the
subject's history is known; an expected subject may be required. The purpose-key attestation
follows our rule (:func:`trust.identities.purpose_keys.verify_purpose_key_attestation`).

Time boundaries (``now`` is a parameter): a credential is valid while ``now <= expires_at`` (so at
exactly ``expires_at``) and once ``created_at <= now + 60`` (60 s clock drift).

Warm path: the time-independent part of an attestation's verification (its signature, its place
in the issuer's history, revocation) is cached by the exact bytes of the issuer's history and the
attestation; the clock checks run on every call. ``cache=False`` gives the cold path. The cache
is bounded by the bytes its keys hold (:func:`cache_info`), as every cache fed by peers is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from policies.environment import TextAttributes, text_attributes
from trust.errors import UntrustedError, VerificationError
from trust.identities.identity import Identity
from trust.identities.purpose_keys import MAX_ALLOWED_TIME_DRIFT, verify_purpose_key_attestation
from trust.models.credential import (
    Credential,
    CredentialAndPurposeKey,
    Disclosure,
    SelectiveCredentialData,
)
from trust.models.memo import ENTRY_OVERHEAD, BoundedCache, CacheInfo
from trust.models.primitives import Signature, identifier_from_text, identifier_text, time_text
from trust.models.purpose_key import Purpose, PurposeKeyAttestation, PurposeKeyAttestationData
from vaults.verify import verify_signature

__all__ = [
    "MAX_ALLOWED_TIME_DRIFT",
    "VerifiedCredential",
    "cache_info",
    "clear_cache",
    "subject_bytes",
    "verify_attested_credential",
    "verify_credential",
    "verify_disclosures",
]


@dataclass(frozen=True)
class VerifiedCredential:
    """What a valid credential says. ``attributes`` are all of them (Ockam format) or the
    disclosed ones (selective), as the bytes the credential carries; :meth:`policy_subject`
    gives them as text for a policy. ``hidden`` counts the digests left undisclosed (decoys
    included).

    From a verified credential to a policy decision::

        v = verify_credential(credential, [authority])
        env = Environment.build(identifier=v.subject, has_credential=True, subject=v.policy_subject())
        allowed = Policy.parse('(= subject.role "admin")').evaluate(env)
    """

    subject: str
    issuer: str
    schema: int
    attributes: dict[bytes, bytes]
    created_at: int
    expires_at: int
    selective: bool
    hidden: int
    credential: CredentialAndPurposeKey

    def policy_subject(self) -> TextAttributes:
        """The attributes as text (``{"role": "admin"}``) for ``Environment.build(subject=...)``.

        An attribute whose name or value is not UTF-8 is left out and named in the result's
        ``dropped`` (``Environment.build`` lists it in its own ``dropped`` and ``explain`` says
        so); :attr:`attributes` keeps every byte.
        """
        return text_attributes(self.attributes)


_CACHE: BoundedCache[tuple[bytes, bytes, Signature], PurposeKeyAttestationData] = BoundedCache(
    "credentials.attestation_verifications", 32 * 1024 * 1024, max_entry=4 * 1024 * 1024)


def clear_cache() -> None:
    """Forget cached attestation verifications (the next verification is cold)."""
    _CACHE.clear()


def cache_info() -> CacheInfo:
    """Entries and accounted bytes of the attestation-verification cache."""
    return _CACHE.info()


def subject_bytes(subject: Identity | str | bytes) -> bytes:
    if isinstance(subject, Identity):
        return subject.identifier_bytes
    if isinstance(subject, str):
        return identifier_from_text(subject)
    return bytes(subject)


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


def _verify_attestation(issuer: Identity, att: PurposeKeyAttestation, now: int,
                        cache: bool) -> PurposeKeyAttestationData:
    if cache:
        key = (issuer.raw, att.data, att.signature)  # the signature with its key type
        data = _CACHE.get(key)
        if data is not None:
            # The time-independent checks passed before; the clock checks run every time.
            if data.created_at > now + MAX_ALLOWED_TIME_DRIFT:
                # the same words as the cold path (verify_purpose_key_attestation)
                raise VerificationError(
                    f"the attestation was created in the future: at {time_text(data.created_at)}, "
                    f"checked at {time_text(now)} ({MAX_ALLOWED_TIME_DRIFT} s of clock drift "
                    "allowed)")
            if data.expires_at < now:
                raise VerificationError(f"the attestation expired at {time_text(data.expires_at)}, "
                                        f"checked at {time_text(now)}")
            return data
    data = verify_purpose_key_attestation(issuer, att, now=now, purpose=Purpose.CREDENTIAL_SIGNING)
    if cache:
        # the key's bytes (the issuer's whole history among them) and the decoded data
        _CACHE.put(key, data, 2 * ENTRY_OVERHEAD + len(issuer.raw) + len(att.data))
    return data


def verify_attested_credential(credential: Credential, attested: PurposeKeyAttestationData, *,
                               now: int | None = None,
                               expected_subject: Identity | str | bytes | None = None,
                               subject_identity: Identity | None = None) -> None:
    """Check ``credential`` against the data of an attestation that was already verified:
    signature, subject, the signing key's window and the clock (spec §7 steps 3-8)."""
    t = _now(now)
    key = attested.public_key.signing
    if key is None:
        raise VerificationError("the attested key is not a credential-signing key")
    sig = credential.signature
    if sig.key_type is not key.key_type or \
            not verify_signature(key, credential.data_hash, sig.data):
        raise VerificationError("invalid credential signature")
    payload = credential.payload
    if payload.subject is None:
        raise VerificationError("the credential has no subject (unsupported)")
    if expected_subject is not None and payload.subject != subject_bytes(expected_subject):
        raise UntrustedError(f"the credential is about {identifier_text(payload.subject)}, not "
                             f"{identifier_text(subject_bytes(expected_subject))}")
    if payload.created_at < attested.created_at:
        raise VerificationError("the credential was created before its signing key was attested")
    if payload.expires_at > attested.expires_at:
        raise VerificationError("the credential expires after its signing key")
    if payload.created_at > t + MAX_ALLOWED_TIME_DRIFT:
        raise VerificationError(f"the credential is not valid yet: created at "
                                f"{time_text(payload.created_at)}, checked at {time_text(t)} "
                                f"({MAX_ALLOWED_TIME_DRIFT} s of clock drift allowed)")
    if payload.expires_at < t:
        raise VerificationError(f"the credential expired at {time_text(payload.expires_at)}, "
                                f"checked at {time_text(t)}")
    if subject_identity is not None:
        if subject_identity.identifier_bytes != payload.subject:
            raise VerificationError(f"the history given for the subject is of "
                                    f"{subject_identity.identifier}")
        latest = payload.subject_latest_change_hash
        if latest is None or subject_identity.change_index(latest) is None:
            raise VerificationError("the credential names a change that is not in its subject's "
                                    "history (subject_latest_change_hash)")


def verify_disclosures(payload: SelectiveCredentialData,
                       disclosures: Iterable[Disclosure]) -> dict[bytes, bytes]:
    """The attributes revealed by ``disclosures``: each must hash to one of the signed digests,
    at most once, and name a different attribute."""
    digests = frozenset(payload.digests)
    out: dict[bytes, bytes] = {}
    seen: set[bytes] = set()
    for d in disclosures:
        if d.digest not in digests:
            raise VerificationError(f"the disclosure of {d.name.decode('utf-8', 'replace')!r} does "
                                    "not belong to this credential")
        if d.digest in seen or d.name in out:
            raise VerificationError(f"attribute {d.name.decode('utf-8', 'replace')!r} is "
                                    "disclosed twice")
        seen.add(d.digest)
        out[d.name] = d.value
    return out


def verify_credential(cpk: CredentialAndPurposeKey, authorities: Iterable[Identity], *,
                      now: int | None = None,
                      expected_subject: Identity | str | bytes | None = None,
                      subject_identity: Identity | None = None,
                      disclosures: Iterable[Disclosure] | None = None,
                      cache: bool = True) -> VerifiedCredential:
    """Verify a credential issued by one of ``authorities`` (verified identities).

    ``subject_identity``: the subject's history when it is known (then the credential's
    ``subject_latest_change_hash`` must be one of its changes). ``disclosures``: for a selective
    credential, the disclosures to check and reveal (none: no attribute is revealed).
    """
    t = _now(now)
    att = cpk.purpose_key_attestation
    issuer_id = att.attestation_data.subject
    issuer = None
    for a in authorities:
        if a.identifier_bytes == issuer_id:
            issuer = a
            break
    if issuer is None:
        raise UntrustedError(f"the credential was issued by {identifier_text(issuer_id)}, which "
                             "is not one of the given authorities")
    attested = _verify_attestation(issuer, att, t, cache)
    credential = cpk.credential
    verify_attested_credential(credential, attested, now=t, expected_subject=expected_subject,
                               subject_identity=subject_identity)
    payload = credential.payload
    assert payload.subject is not None
    if isinstance(payload, SelectiveCredentialData):
        attributes = verify_disclosures(payload, disclosures or ())
        hidden = len(payload.digests) - len(attributes)
        selective = True
    else:
        if disclosures:
            raise VerificationError("an Ockam-format credential has no disclosures")
        attributes = dict(payload.attributes.entries)
        hidden = 0
        selective = False
    return VerifiedCredential(
        subject=identifier_text(payload.subject),
        issuer=issuer.identifier,
        schema=payload.schema,
        attributes=attributes,
        created_at=payload.created_at,
        expires_at=payload.expires_at,
        selective=selective,
        hidden=hidden,
        credential=cpk,
    )
