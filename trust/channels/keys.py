"""X25519 keys for the Noise handshake: in-process key pairs (ephemeral keys, test vectors) and
static keys held by a :class:`~vaults.secure_channel.SecureChannelVault`.

Both offer ``public`` (32 bytes) and ``dh(peer_public)``. A peer key that gives an all-zero
shared secret (a low-order point) is refused with :class:`~trust.errors.VerificationError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from trust.errors import UsageError, VerificationError
from vaults.errors import VaultError
from vaults.secure_channel import SecureChannelVault

__all__ = ["DhKey", "VaultX25519Key", "X25519KeyPair", "peer_public_key"]

_from_public = X25519PublicKey.from_public_bytes


def peer_public_key(data: bytes) -> X25519PublicKey:
    """Load a peer's 32-byte X25519 public key (parsed once, used for two DH operations)."""
    try:
        return _from_public(data)
    except ValueError:
        raise VerificationError("invalid X25519 public key") from None


@runtime_checkable
class DhKey(Protocol):
    """What the handshake needs of a key: its public half and Diffie-Hellman."""

    @property
    def public(self) -> bytes: ...

    def dh(self, peer: X25519PublicKey) -> bytes: ...


class X25519KeyPair:
    """An X25519 private key held in process (``cryptography``)."""

    __slots__ = ("_private", "public")

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public: bytes = private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519KeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_secret(cls, secret: bytes) -> X25519KeyPair:
        """From 32 secret bytes (test vectors; a key read from storage)."""
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise UsageError("an X25519 secret key is 32 bytes")
        return cls(X25519PrivateKey.from_private_bytes(secret))

    def dh(self, peer: X25519PublicKey) -> bytes:
        try:
            return self._private.exchange(peer)
        except ValueError:
            raise VerificationError("the peer's X25519 key gives an all-zero shared secret") from None

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self.public.hex()})"


class VaultX25519Key:
    """A static X25519 key that stays in a secure-channel vault, named by its handle."""

    __slots__ = ("handle", "public", "vault")

    def __init__(self, vault: SecureChannelVault, handle: str) -> None:
        self.vault = vault
        self.handle = handle
        self.public: bytes = vault.x25519_public_key(handle)  # raises when the handle is unknown

    def dh(self, peer: X25519PublicKey) -> bytes:
        try:
            return self.vault.x25519_dh(self.handle, peer.public_bytes_raw())
        except VaultError as e:
            raise VerificationError(f"Diffie-Hellman with the peer's key failed: {e}") from None

    def __repr__(self) -> str:
        return f"VaultX25519Key({self.handle!r})"
