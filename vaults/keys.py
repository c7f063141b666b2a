"""Key types, public keys and signatures as plain values, plus conversions between the forms
backends return (DER, SPKI, SEC1, raw) and the forms Ockam puts on the wire."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from vaults.errors import VaultError


class KeyType(enum.StrEnum):
    """Signing key types. Values are the CLI/JSON names."""

    ED25519 = "ed25519"
    P256 = "p256"

    @classmethod
    def parse(cls, text: str) -> KeyType:
        t = text.strip().lower().replace("-", "")
        aliases = {"ed25519": cls.ED25519, "eddsa": cls.ED25519, "p256": cls.P256,
                   "ecdsa": cls.P256, "secp256r1": cls.P256, "ecdsap256": cls.P256}
        if t not in aliases:
            raise VaultError(f"unknown key type {text!r} (use ed25519 or p256)")
        return aliases[t]

    @property
    def public_key_size(self) -> int:
        return 32 if self is KeyType.ED25519 else 65


SIGNATURE_SIZE = 64


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A signing public key: Ed25519 (32 raw bytes) or P-256 (65-byte uncompressed SEC1)."""

    key_type: KeyType
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != self.key_type.public_key_size:
            raise VaultError(
                f"{self.key_type.value} public key must be {self.key_type.public_key_size} bytes"
            )
        if self.key_type is KeyType.P256 and self.data[0] != 4:
            raise VaultError("P-256 public key must be an uncompressed SEC1 point (0x04...)")

    @property
    def hex(self) -> str:
        return self.data.hex()

    @classmethod
    def from_cryptography(cls, key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> PublicKey:
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls(KeyType.ED25519, key.public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw))
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(KeyType.P256, key.public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint))
        raise VaultError(f"unsupported public key {type(key).__name__}")

    @classmethod
    def from_spki(cls, der_or_pem: bytes) -> PublicKey:
        """From a DER or PEM SubjectPublicKeyInfo (what KMS services return)."""
        try:
            if der_or_pem.lstrip().startswith(b"-----"):
                key = serialization.load_pem_public_key(der_or_pem)
            else:
                key = serialization.load_der_public_key(der_or_pem)
        except ValueError as e:
            raise VaultError(f"malformed public key: {e}") from None
        if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
            raise VaultError(f"unsupported public key {type(key).__name__}")
        return cls.from_cryptography(key)


def der_to_raw_signature(der: bytes) -> bytes:
    """ECDSA DER ``ECDSA-Sig-Value`` to raw 64-byte r||s."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError as e:
        raise VaultError(f"malformed ECDSA signature: {e}") from None
    if r >= 1 << 256 or s >= 1 << 256:
        raise VaultError("ECDSA signature component too large for P-256")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_to_der_signature(raw: bytes) -> bytes:
    if len(raw) != SIGNATURE_SIZE:
        raise VaultError("raw ECDSA signature must be 64 bytes")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
