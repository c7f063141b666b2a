"""Secure-channel primitives as plain functions: HKDF-SHA256 (Noise's HKDF) and AES-256-GCM."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vaults.errors import VaultError


def hkdf_sha256(salt: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """``outputs`` (2 or 3) 32-byte keys, as Noise's HKDF(chaining_key, input_key_material).

    Noise's HKDF is RFC 5869 with the chaining key as salt and an empty info, so the outputs are
    the consecutive 32-byte blocks of the expanded key.
    """
    if outputs not in (1, 2, 3):
        raise ValueError("hkdf_sha256 gives 1, 2 or 3 outputs")
    okm = HKDF(algorithm=hashes.SHA256(), length=32 * outputs, salt=salt, info=b"").derive(ikm)
    return tuple(okm[i * 32 : (i + 1) * 32] for i in range(outputs))


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AES-256-GCM; returns ciphertext || 16-byte tag."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise VaultError("AES-GCM authentication failed") from None
