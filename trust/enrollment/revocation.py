"""Revocation lists: build, sign and verify (the wire type is
:mod:`trust.enrollment.messages.revocation_list`).

The authority keeps a version number that grows with every change of the list (a member
deleted, an entry expired out). Relying nodes pull the signed list and call
:func:`verify_revocation_list` with the last list they accepted: a list signed by anyone but the
authority's attested credential-signing key, about another authority, older than the one held
(lower version), or issued more than a minute in the future is refused with a typed error; the
caller keeps enforcing the list it had.

>>> # list = verify_revocation_list(signed_bytes, authority_identity, previous=held)
>>> # list.is_revoked(peer.identifier, credential_created_at)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from trust.enrollment.messages.revocation_list import (
    RevocationListData,
    Revoked,
    SignedRevocationList,
)
from trust.enrollment.signer import AuthoritySigner
from trust.errors import DecodeError, UntrustedError, VerificationError
from trust.identities.identity import Identity
from trust.identities.purpose_keys import MAX_ALLOWED_TIME_DRIFT, verify_purpose_key_attestation
from trust.models.primitives import time_text
from trust.models.purpose_key import Purpose
from vaults.verify import verify_signature

__all__ = [
    "RevocationListData",
    "Revoked",
    "SignedRevocationList",
    "StaleRevocationListError",
    "build_revocation_list",
    "sign_revocation_list",
    "verify_revocation_list",
]


class StaleRevocationListError(VerificationError):
    """The list's version is lower than the version of the list already held."""


def build_revocation_list(authority: str | Identity, version: int, revoked: Iterable[Revoked],
                          *, now: int | None = None) -> RevocationListData:
    """The list of ``revoked`` entries at ``version``, issued at ``now`` (default: the clock)."""
    ident = authority if isinstance(authority, str) else authority.identifier
    return RevocationListData(ident, version, int(time.time()) if now is None else int(now),
                              tuple(revoked))


async def sign_revocation_list(data: RevocationListData, signer: AuthoritySigner
                               ) -> SignedRevocationList:
    """Sign ``data`` with the authority's credential-signing key."""
    if data.authority != signer.identifier:
        raise UntrustedError("a revocation list is signed by the authority it names")
    raw = data.to_versioned()
    return SignedRevocationList(raw, await signer.sign(raw), signer.attestation)


def verify_revocation_list(signed: SignedRevocationList | bytes, authority: Identity, *,
                           previous: RevocationListData | int | None = None,
                           now: int | None = None) -> RevocationListData:
    """The list, once verified: signed by ``authority``'s attested credential-signing key,
    naming ``authority``, not issued more than a minute after ``now``, and with a version not
    lower than ``previous`` (the list, or the version, already held). Raises
    :class:`~trust.errors.DecodeError`, :class:`~trust.errors.UntrustedError` (another
    authority), :class:`~trust.errors.VerificationError` (bad signature or attestation) or
    :class:`StaleRevocationListError`."""
    t = int(time.time()) if now is None else int(now)
    if isinstance(signed, (bytes, bytearray, memoryview)):
        signed = SignedRevocationList.decode(bytes(signed))
    elif not isinstance(signed, SignedRevocationList):
        raise DecodeError("expected a signed revocation list", field="revocation_list")
    data = signed.content
    if data.authority != authority.identifier:
        raise UntrustedError(f"the revocation list is from {data.authority}, not from the "
                             f"authority {authority.identifier}")
    att = verify_purpose_key_attestation(authority, signed.attestation, now=t,
                                         purpose=Purpose.CREDENTIAL_SIGNING)
    key = att.public_key.signing
    if key is None or signed.signature.key_type is not key.key_type:
        raise VerificationError("the revocation list's signature is not of the attested key")
    if not verify_signature(key, hashlib.sha256(signed.data).digest(), signed.signature.data):
        raise VerificationError("the revocation list's signature does not verify")
    if data.issued_at > t + MAX_ALLOWED_TIME_DRIFT:
        raise VerificationError(f"the revocation list is issued in the future "
                                f"({time_text(data.issued_at)})")
    held = previous.version if isinstance(previous, RevocationListData) else previous
    if held is not None and data.version < held:
        raise StaleRevocationListError(f"the revocation list's version {data.version} is lower "
                                       f"than the version held ({held})")
    return data
