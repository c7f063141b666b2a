"""``IdentityAndCredentials = [change_history, purpose_key_attestation, [* CredentialAndPurposeKey]]``
(wire spec §3.4): what each side of the handshake sends, encrypted, in messages 2 and 3.

The attestation names the sender's Noise static key (purpose SecureChannelStatic); the
credentials are the sender's, each with its issuer's attestation of the signing key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from trust.channels.messages.common import encode_credentials, read_change_history, read_credentials
from trust.errors import DecodeError, UsageError
from trust.models.cbor import Reader, check_size
from trust.models.change_history import ChangeHistory, read_history_fast
from trust.models.credential import CredentialAndPurposeKey
from trust.models.fastpath import FastPathMiss, arg, signature
from trust.models.memo import BoundedCache, decoded_size
from trust.models.purpose_key import PurposeKeyAttestation

__all__ = ["MAX_IDENTITY_PAYLOAD_SIZE", "IdentityAndCredentials", "clear_decode_cache", "decode_fast"]

MAX_IDENTITY_PAYLOAD_SIZE: Final = 65535 - 32 - 48 - 16
"""The largest payload that fits in handshake message 2 (65,535 bytes with the ephemeral key,
the encrypted static key and the tag)."""

_DECODED: BoundedCache[bytes, IdentityAndCredentials] = BoundedCache(
    "channels.identity_payloads", 8 * 1024 * 1024, max_entry=decoded_size(b"\0" * 4096))
"""Decoded payloads by their bytes: a peer that comes back sends the same bytes, and decoding
is a pure function of them (nothing is verified here; verification runs on every handshake)."""


def clear_decode_cache() -> None:
    _DECODED.clear()


@dataclass(frozen=True)
class IdentityAndCredentials:
    """A handshake payload. ``change_history_raw`` keeps the history's exact bytes."""

    change_history_raw: bytes
    purpose_key_attestation: PurposeKeyAttestation
    credentials: tuple[CredentialAndPurposeKey, ...] = ()
    change_history: ChangeHistory = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "change_history", ChangeHistory.decode(self.change_history_raw))
        object.__setattr__(self, "credentials", tuple(self.credentials))

    @classmethod
    def of(cls, change_history: bytes, attestation: PurposeKeyAttestation,
           credentials: tuple[CredentialAndPurposeKey, ...] | list[CredentialAndPurposeKey] = ()
           ) -> IdentityAndCredentials:
        """Build one to send; raises :class:`UsageError` when it would not fit a handshake."""
        try:
            value = cls(bytes(change_history), attestation, tuple(credentials))
        except DecodeError as e:
            raise UsageError(f"not a valid change history: {e}") from None
        size = len(value.encode())
        if size > MAX_IDENTITY_PAYLOAD_SIZE:
            raise UsageError(f"the identity and credentials take {size} bytes; a handshake "
                             f"message holds {MAX_IDENTITY_PAYLOAD_SIZE}")
        return value

    def encode(self) -> bytes:
        return (b"\x83" + self.change_history_raw + self.purpose_key_attestation.encode()
                + encode_credentials(self.credentials))

    @classmethod
    def decode(cls, data: bytes) -> IdentityAndCredentials:
        f = "identity_and_credentials"
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", field=f)
        data = bytes(data)
        known = _DECODED.get(data)
        if known is not None:
            return known
        check_size(data, f, MAX_IDENTITY_PAYLOAD_SIZE)
        value = decode_fast(data)
        if value is None:
            value = cls.decode_strict(data)
        _DECODED.put(data, value, decoded_size(data))
        return value

    @classmethod
    def decode_strict(cls, data: bytes) -> IdentityAndCredentials:
        """The general decoder (precise errors); :meth:`decode` tries a fast path first."""
        f = "identity_and_credentials"
        r = Reader(data)
        r.array(f, 3)
        history, raw = read_change_history(r, f"{f}.change_history")
        att = PurposeKeyAttestation.read(r, f"{f}.purpose_key_attestation")
        credentials = read_credentials(r, f"{f}.credentials")
        r.end(f)
        value = object.__new__(cls)
        object.__setattr__(value, "change_history_raw", raw)
        object.__setattr__(value, "purpose_key_attestation", att)
        object.__setattr__(value, "credentials", credentials)
        object.__setattr__(value, "change_history", history)
        return value


def decode_fast(b: bytes) -> IdentityAndCredentials | None:
    """The usual shape (a history of short changes, an attestation, no credential) with direct
    indexing; None for anything else (the strict decoder then decides and names the field)."""
    try:
        if b[0] != 0x83:
            return None
        found = read_history_fast(b, 1)  # one pass: the history is decoded where it lies
        if found is None:
            return None
        history, i = found
        raw = b[1:i]
        if b[i] != 0x82:
            return None
        size, i = arg(b, i + 1, 0x40)
        att_data = b[i : i + size]
        if len(att_data) != size:
            return None
        sig, i = signature(b, i + size)
        if i + 1 != len(b) or b[i] != 0x80:
            return None
        attestation = PurposeKeyAttestation(att_data, sig)
    except (IndexError, FastPathMiss, DecodeError):
        return None
    value = object.__new__(IdentityAndCredentials)
    object.__setattr__(value, "change_history_raw", raw)
    object.__setattr__(value, "purpose_key_attestation", attestation)
    object.__setattr__(value, "credentials", ())
    object.__setattr__(value, "change_history", history)
    return value
