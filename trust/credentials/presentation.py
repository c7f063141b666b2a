"""Presentations of selective-disclosure credentials: create (the holder) and verify (pure).

A presentation carries the credential, the disclosures the holder reveals, the holder's change
history, an audience, a nonce and a time, all signed by the holder's current key (the latest
change of its history, which must be the credential's subject).

Verification checks, in order: audience, nonce, freshness (``now - 300 <= presented_at <=
now + 60``), the holder's history, that the holder is the subject, the holder's signature, the
credential (issuer, attestation, signature, windows, clock) and every revealed digest. Replay
detection (a nonce seen before) needs storage: :class:`trust.credentials.service.CredentialService`
records each accepted nonce for the freshness window.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from trust.credentials.verification import VerifiedCredential, verify_credential
from trust.errors import NotFoundError, UntrustedError, UsageError, VerificationError
from trust.identities.identity import Comparison, Identity, verify_change_history
from trust.models.credential import (
    MAX_TEXT,
    DisclosableCredential,
    Presentation,
    PresentationData,
)
from trust.models.primitives import Signature, identifier_text
from vaults.signing import SigningVault
from vaults.verify import verify_signature

MAX_AGE = 300
"""A presentation is stale once it is more than this many seconds old."""

MAX_FUTURE = 60
"""A presentation may be dated up to this many seconds in the future (clock drift)."""


@dataclass(frozen=True)
class VerifiedPresentation:
    credential: VerifiedCredential
    holder: Identity
    audience: str
    nonce: str
    presented_at: int

    @property
    def attributes(self) -> dict[bytes, bytes]:
        return self.credential.attributes


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_TEXT:
        raise UsageError(f"the {what} is a non-empty text of at most {MAX_TEXT} bytes")
    return value


async def present(held: DisclosableCredential, holder: Identity, vault: SigningVault, handle: str,
                  *, reveal: Iterable[str | bytes], audience: str, nonce: str,
                  now: int | None = None) -> Presentation:
    """Reveal the attributes named in ``reveal`` to ``audience``, bound to ``nonce`` and
    ``now``, signed with the holder's current key (``handle`` in ``vault``)."""
    _check_text(audience, "audience")
    _check_text(nonce, "nonce")
    credential = held.credential.credential
    if credential.subject != holder.identifier_bytes:
        raise UsageError(f"{holder.identifier} is not the subject of this credential "
                         f"({credential.subject_text})")
    by_name = {d.name: d for d in held.disclosures}
    chosen = []
    for name in dict.fromkeys(n.encode("utf-8") if isinstance(n, str) else bytes(n) for n in reveal):
        d = by_name.get(name)
        if d is None:
            have = ", ".join(sorted(k.decode("utf-8", "replace") for k in by_name)) or "none"
            raise NotFoundError(f"the credential has no attribute "
                                f"{name.decode('utf-8', 'replace')!r} (it has: {have})")
        chosen.append(d)
    chosen.sort(key=lambda d: d.name)
    t = int(time.time()) if now is None else int(now)
    data = PresentationData(held.credential, tuple(chosen), holder.change_history, audience, nonce,
                            t).to_versioned()
    key_type = holder.latest_public_key.key_type
    signature = await vault.sign(handle, hashlib.sha256(data).digest())
    return Presentation(data, Signature(key_type, signature))


def verify_presentation(presentation: Presentation, authorities: Iterable[Identity], *,
                        audience: str, nonce: str, now: int | None = None,
                        expected_subject: Identity | str | bytes | None = None,
                        known_holder: Identity | None = None,
                        cache: bool = True) -> VerifiedPresentation:
    """Verify everything a presentation claims except replay (see the module docstring).

    ``known_holder``: the holder's history as this verifier knows it; the presented one must be
    the same or newer (so a key rotated away cannot sign presentations).
    """
    t = int(time.time()) if now is None else int(now)
    pd = presentation.presentation_data
    if pd.audience != audience:
        raise UntrustedError(f"the presentation is for audience {pd.audience!r}, not {audience!r}")
    if pd.nonce != nonce:
        raise VerificationError("the presentation answers a different nonce")
    if pd.presented_at < t - MAX_AGE:
        raise VerificationError(f"the presentation is stale (made at {pd.presented_at}, more "
                                f"than {MAX_AGE} s before {t})")
    if pd.presented_at > t + MAX_FUTURE:
        raise VerificationError(f"the presentation is dated in the future ({pd.presented_at}, "
                                f"now {t}, {MAX_FUTURE} s of drift allowed)")
    holder = verify_change_history(pd.holder_raw, cache=cache)
    credential = pd.credential.credential
    if credential.subject != holder.identifier_bytes:
        raise VerificationError(f"the presentation is signed by {holder.identifier}, but the "
                                f"credential is about {credential.subject_text}")
    if known_holder is not None:
        cmp = holder.compare(known_holder)
        if cmp is Comparison.CONFLICT:
            raise VerificationError(f"the holder's history conflicts with the known history of "
                                    f"{holder.identifier}")
        if cmp is Comparison.OLDER:
            raise VerificationError(f"the holder's history is older than the known history of "
                                    f"{holder.identifier} (a rotated-away key)")
    key = holder.latest_public_key
    sig = presentation.signature
    if sig.key_type is not key.key_type or \
            not verify_signature(key, presentation.data_hash, sig.data):
        raise VerificationError("invalid holder signature on the presentation")
    verified = verify_credential(pd.credential, authorities, now=t,
                                 expected_subject=expected_subject, subject_identity=holder,
                                 disclosures=pd.disclosures, cache=cache)
    return VerifiedPresentation(verified, holder, pd.audience, pd.nonce, pd.presented_at)


def holder_of(presentation: Presentation) -> str:
    """The identifier of the identity a presentation claims to come from (unverified)."""
    return identifier_text(presentation.presentation_data.holder.identifier)
