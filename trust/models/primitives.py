"""Ockam's key and signature sum types, identifiers and VersionedData, byte for byte.

``PublicKey``   = ``[0, [bstr .size 32]]`` (Ed25519) / ``[1, [bstr .size 65]]`` (P-256 SEC1)
``Signature``   = ``[0, [bstr .size 64]]`` / ``[1, [bstr .size 64]]`` (raw r||s)
``VersionedData`` = ``[1, data_type, bstr]``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_bytes, enc_uint, head
from vaults.errors import VaultError
from vaults.keys import SIGNATURE_SIZE, KeyType, PublicKey

__all__ = [
    "CHANGE_DATA_TYPE",
    "CREDENTIAL_DATA_TYPE",
    "PURPOSE_KEY_ATTESTATION_DATA_TYPE",
    "PublicKey",
    "Signature",
    "encode_public_key",
    "encode_signature",
    "encode_versioned",
    "identifier_from_text",
    "identifier_text",
    "read_public_key",
    "read_signature",
    "read_versioned",
    "time_text",
]

VERSION = 1
CHANGE_DATA_TYPE = 1
PURPOSE_KEY_ATTESTATION_DATA_TYPE = 2
CREDENTIAL_DATA_TYPE = 3

IDENTIFIER_SIZE = 32

_KEY_INDEX = {KeyType.ED25519: 0, KeyType.P256: 1}
_INDEX_KEY = {0: KeyType.ED25519, 1: KeyType.P256}


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature with the key type that made it (64 bytes: Ed25519, or P-256 raw r||s)."""

    key_type: KeyType
    data: bytes

    def encode(self) -> bytes:
        return encode_signature(self)


def encode_public_key(pk: PublicKey) -> bytes:
    return bytes((0x82, _KEY_INDEX[pk.key_type], 0x81)) + enc_bytes(pk.data)


def encode_signature(sig: Signature) -> bytes:
    return bytes((0x82, _KEY_INDEX[sig.key_type], 0x81)) + enc_bytes(sig.data)


def _read_variant(r: Reader, field: str) -> KeyType:
    r.array(field, 2)
    at = r.pos
    index = r.uint(f"{field}.variant")
    key_type = _INDEX_KEY.get(index)
    if key_type is None:
        raise DecodeError(f"unknown variant {index}", field=field, offset=at)
    r.array(f"{field}.fields", 1)
    return key_type


def read_public_key(r: Reader, field: str) -> PublicKey:
    key_type = _read_variant(r, field)
    at = r.pos
    data = r.bytes(field, key_type.public_key_size)
    try:
        return PublicKey(key_type, data)
    except VaultError as e:
        raise DecodeError(str(e), field=field, offset=at) from None


def read_signature(r: Reader, field: str) -> Signature:
    key_type = _read_variant(r, field)
    return Signature(key_type, r.bytes(field, SIGNATURE_SIZE))


def encode_versioned(data_type: int, payload: bytes) -> bytes:
    """CBOR of ``VersionedData{version: 1, data_type, data: payload}``."""
    return b"\x83" + enc_uint(VERSION) + enc_uint(data_type) + head(2, len(payload)) + payload


def read_versioned(data: bytes, data_type: int, field: str) -> bytes:
    """The payload of a VersionedData, checking version 1 and ``data_type``; nothing may follow."""
    r = Reader(data)
    r.array(field, 3)
    at = r.pos
    version = r.uint(f"{field}.version")
    if version != VERSION:
        raise DecodeError(f"unknown version {version} (only version {VERSION} exists)",
                          field=f"{field}.version", offset=at)
    at = r.pos
    dt = r.uint(f"{field}.data_type")
    if dt != data_type:
        raise DecodeError(f"expected data type {data_type}, found {dt}", field=f"{field}.data_type",
                          offset=at)
    payload = r.bytes(f"{field}.data")
    r.end(field)
    return payload


def time_text(t: int) -> str:
    """A point in time for messages: unix seconds and the UTC date,
    ``1800000000 (2027-01-15 08:00:00 UTC)``."""
    try:
        when = datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(t)
    return f"{t} ({when})"


def identifier_text(identifier: bytes) -> str:
    return "I" + identifier.hex()


def identifier_from_text(text: str) -> bytes:
    """Parse ``I`` + 64 hex digits (surrounding whitespace allowed, either case)."""
    t = text.strip()
    if not t.startswith("I") or len(t) != 1 + 2 * IDENTIFIER_SIZE:
        raise DecodeError(f"an identifier is 'I' followed by 64 hex digits, got {text!r}",
                          field="identifier")
    try:
        return bytes.fromhex(t[1:])
    except ValueError:
        raise DecodeError(f"identifier {text!r} is not hex", field="identifier") from None
