"""Peer authentication (wire spec §3.5), pure: a handshake payload and the peer's Noise static
key in, a :class:`~trust.channels.peer.VerifiedPeer` or a typed error out.

1. The change history verifies (signatures, chain): :func:`~trust.identities.identity.verify_change_history`.
2. The purpose-key attestation verifies against it, for purpose SecureChannelStatic, inside its
   validity at ``now``: :func:`~trust.identities.purpose_keys.verify_purpose_key_attestation`.
3. The attested key **is** the Noise static key the handshake authenticated.
4. Credentials verify against the authorities (those configured plus those the trust policy
   reads): :func:`~trust.credentials.verification.verify_credential`, about this peer.
5. The trust policy accepts the peer.

**Stricter than Ockam:** a presented credential that does not verify (expired, unknown
authority, bad signature) fails the handshake (Ockam only logs it), and so does a missing
credential when one is required (``require_credential=True`` or a :class:`TrustAuthority`
policy). Without any authority, credentials are neither verified nor used.

**Warm path:** with ``cache=True`` (the default) a signature verified once is not verified again
for byte-identical inputs: the history (by its bytes), the attestation's signature (by the history,
the attestation data and the signature). Every other check runs each time: the attestation's
claims and windows at ``now``, the binding, credential expiry, the trust policy.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from trust.channels.messages.identity_and_credentials import IdentityAndCredentials
from trust.channels.messages.refresh_credentials import RefreshCredentials
from trust.channels.peer import VerifiedPeer
from trust.channels.trust_policies import Trust, TrustEveryone
from trust.credentials.verification import VerifiedCredential, verify_credential
from trust.errors import RemoteProtocolError, UntrustedError, UsageError, VerificationError
from trust.identities.identity import Comparison, Identity, verify_change_history
from trust.identities.known_histories import KnownHistories
from trust.identities.purpose_keys import check_attestation_claims, verify_purpose_key_attestation
from trust.models.credential import CredentialAndPurposeKey
from trust.models.memo import ENTRY_OVERHEAD, BoundedCache, CacheInfo
from trust.models.primitives import Signature
from trust.models.purpose_key import Purpose, PurposeKeyAttestation, PurposeKeyAttestationData

__all__ = ["PeerAuthenticator", "cache_info", "clear_cache"]

_SIGNATURES: BoundedCache[tuple[bytes, bytes, Signature], bool] = BoundedCache(
    "channels.attestation_signatures", 16 * 1024 * 1024, max_entry=256 * 1024)
"""Attestations whose signature verified, keyed by (subject history, attestation data,
signature) bytes."""


def clear_cache() -> None:
    """Forget verified attestation signatures (the next handshake is cold)."""
    _SIGNATURES.clear()


def cache_info() -> CacheInfo:
    return _SIGNATURES.info()


class PeerAuthenticator:
    """Authenticates the peer of a handshake: ``trust`` (default :class:`TrustEveryone`),
    ``authorities`` (verified identities whose credentials are accepted),
    ``require_credential`` (a valid credential from one of them is required),
    ``ockam_strict`` (attestations must name the subject's latest change, as Ockam requires),
    ``histories`` (the newest change history seen of each peer: an older or conflicting one is
    refused, as Ockam does; a node's channels share the node's)."""

    __slots__ = ("_authorities", "cache", "histories", "ockam_strict", "require_credential",
                 "trust")

    def __init__(self, trust: Trust | None = None, *, authorities: Iterable[Identity] = (),
                 require_credential: bool = False, cache: bool = True,
                 ockam_strict: bool = False, histories: KnownHistories | None = None) -> None:
        self.trust = TrustEveryone() if trust is None else trust
        if not isinstance(self.trust, Trust):
            raise UsageError(f"trust must be a trust policy, not {type(self.trust).__name__}")
        merged: dict[bytes, Identity] = {}
        for a in (*authorities, *self.trust.authorities):
            if not isinstance(a, Identity):
                raise UsageError("an authority is a verified Identity (its change history)")
            merged.setdefault(a.identifier_bytes, a)
        self._authorities = tuple(merged.values())
        if require_credential and not self._authorities:
            raise UsageError("a credential can only be required from configured authorities")
        self.require_credential = require_credential
        self.cache = cache
        self.ockam_strict = ockam_strict
        self.histories = histories

    @property
    def authorities(self) -> tuple[Identity, ...]:
        return self._authorities

    def _attestation(self, identity: Identity, att: PurposeKeyAttestation,
                     now: int) -> PurposeKeyAttestationData:
        data = att.attestation_data
        if self.cache:
            key = (identity.raw, att.data, att.signature)
            if _SIGNATURES.get(key):
                check_attestation_claims(identity, data, now=now,
                                         purpose=Purpose.SECURE_CHANNEL_STATIC,
                                         ockam_strict=self.ockam_strict)
                return data
        verify_purpose_key_attestation(identity, att, now=now,
                                       purpose=Purpose.SECURE_CHANNEL_STATIC,
                                       ockam_strict=self.ockam_strict)
        if self.cache:
            _SIGNATURES.put(key, True, 2 * ENTRY_OVERHEAD + len(identity.raw) + len(att.data))
        return data

    def authenticate(self, payload: bytes | IdentityAndCredentials, static_key: bytes, *,
                     now: int | None = None) -> VerifiedPeer:
        """Verify the peer of a handshake whose Noise static key is ``static_key``."""
        t = int(time.time()) if now is None else int(now)
        message = payload if isinstance(payload, IdentityAndCredentials) else \
            IdentityAndCredentials.decode(payload)
        identity = verify_change_history(message.change_history_raw, cache=self.cache,
                                         decoded=message.change_history)
        histories = self.histories
        if histories is not None:
            histories.check(identity)
        data = self._attestation(identity, message.purpose_key_attestation, t)
        if data.public_key.x25519 != static_key:
            raise VerificationError("the attested secure-channel key is not the key the peer "
                                    "used in the handshake")
        peer = VerifiedPeer(identity, static_key, data,
                            self._credentials(message.credentials, identity, t))
        self.trust.check(peer, now=t)
        if histories is not None:
            histories.accept(identity)
        return peer

    def _credentials(self, presented: tuple[CredentialAndPurposeKey, ...], identity: Identity,
                     now: int) -> tuple[VerifiedCredential, ...]:
        credentials: tuple[VerifiedCredential, ...] = ()
        if self._authorities and presented:
            credentials = tuple(
                verify_credential(c, self._authorities, now=now, expected_subject=identity,
                                  subject_identity=identity, cache=self.cache)
                for c in presented)
        if self.require_credential and not credentials:
            raise UntrustedError(f"{identity.identifier} presented no credential; one from "
                                 f"{', '.join(a.identifier for a in self._authorities)} is "
                                 "required")
        return credentials

    def refresh(self, peer: VerifiedPeer, message: RefreshCredentials | bytes, *,
                now: int | None = None) -> VerifiedPeer:
        """The peer of an open channel after it sent RefreshCredentials (wire spec §4.3): its
        history must verify, be of the same identifier and be the known one or newer; its
        credentials are verified as in the handshake and replace the old ones. Stricter than
        Ockam, the trust policy is checked again (a peer it no longer trusts raises
        :class:`UntrustedError`: close the channel). The Noise key and its attestation stay."""
        t = int(time.time()) if now is None else int(now)
        if not isinstance(message, RefreshCredentials):
            from trust.channels.messages.padded import decode_message

            decoded = decode_message(message)
            if not isinstance(decoded, RefreshCredentials):
                raise RemoteProtocolError("expected a RefreshCredentials message")
            message = decoded
        identity = verify_change_history(message.change_history_raw,
                                         expected_identifier=peer.identity.identifier_bytes,
                                         cache=self.cache)
        relation = identity.compare(peer.identity)
        if relation is Comparison.OLDER:
            raise VerificationError(f"the refreshed history of {identity.identifier} is older "
                                    "than the one the channel was opened with")
        if relation is Comparison.CONFLICT:
            raise VerificationError(f"the refreshed history of {identity.identifier} conflicts "
                                    "with the one the channel was opened with")
        histories = self.histories
        if histories is not None:
            histories.check(identity)
        updated = VerifiedPeer(identity, peer.static_key, peer.attestation,
                               self._credentials(message.credentials, identity, t))
        self.trust.check(updated, now=t)
        if histories is not None:
            histories.accept(identity)
        return updated
