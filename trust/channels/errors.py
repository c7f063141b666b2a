"""Errors of the secure-channel layer, children of the toolkit's typed errors.

Besides these, the handshake raises :class:`~trust.errors.DecodeError` (a malformed message or
payload), :class:`~trust.errors.VerificationError` (a history, attestation or credential that
does not verify, a key that does not match), :class:`~trust.errors.UntrustedError` (valid, but
the trust policy refuses the peer) and :class:`~trust.errors.RemoteProtocolError` (a message the
state machine does not expect: a replayed or out-of-order handshake message, one that is too
large). A caller that drives a machine the wrong way gets a :class:`~trust.errors.UsageError`.
"""

from __future__ import annotations

from trust.errors import VerificationError

__all__ = ["DecryptionError", "ReplayError"]


class DecryptionError(VerificationError):
    """AES-GCM authentication failed: the bytes were changed, or keys do not match."""


class ReplayError(VerificationError):
    """A record's nonce was seen before, or lies outside the window around the highest one."""
