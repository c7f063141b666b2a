"""The secure-channel vault interface (Noise XX primitives), implemented in software by
:class:`vaults.software.SoftwareVault` and persisted by :class:`vaults.file.FileVault`.

Secure-channel operations are synchronous: they run in the sans-IO handshake and record layers,
always in process (HSM/KMS vaults only hold signing keys, as in Ockam). HKDF and AES-GCM are
plain functions in :mod:`vaults.primitives`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vaults.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256

__all__ = ["SecureChannelVault", "aes_gcm_decrypt", "aes_gcm_encrypt", "hkdf_sha256"]


@runtime_checkable
class SecureChannelVault(Protocol):
    def generate_x25519(self, *, persist: bool = False) -> str:
        """A new X25519 key; ``persist=True`` for a static key kept across restarts."""
        ...

    def import_x25519(self, secret: bytes, *, persist: bool = False) -> str: ...

    def x25519_public_key(self, handle: str) -> bytes: ...

    def x25519_dh(self, handle: str, peer_public: bytes) -> bytes:
        """The shared secret with ``peer_public`` (an all-zero result is refused)."""
        ...

    def delete_x25519(self, handle: str) -> bool: ...
