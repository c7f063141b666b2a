"""Signature verification: plain synchronous functions, always in software.

What is signed follows Ockam: the caller passes the *message* ``m`` (for identities and
credentials ``m = SHA-256(data)``). Ed25519 is pure Ed25519 over ``m``; P-256 is ECDSA with
SHA-256 over ``m`` (so the curve sees SHA-256 twice over ``data``), signatures as raw r||s,
high-S accepted.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vaults.keys import SIGNATURE_SIZE, KeyType, PublicKey

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def verify_signature(public_key: PublicKey, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` (64 bytes) is valid for ``message`` under ``public_key``."""
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        if public_key.key_type is KeyType.ED25519:
            ed25519.Ed25519PublicKey.from_public_bytes(public_key.data).verify(signature, message)
        else:
            key = _p256_key(public_key.data)
            if key is None:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                       int.from_bytes(signature[32:], "big"))
            key.verify(der, message, _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=1024)
def _p256_key(sec1: bytes) -> ec.EllipticCurvePublicKey | None:
    # Decoding a P-256 point costs a point validation; cache the loaded key objects.
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sec1)
    except ValueError:
        return None
