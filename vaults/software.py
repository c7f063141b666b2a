"""The in-process software vault: signing keys (Ed25519, P-256) and secure-channel keys (X25519)
held as ``cryptography`` key objects. :class:`vaults.file.FileVault` persists the same keys."""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from vaults.errors import KeyNotFoundError, UnsupportedKeyTypeError, VaultError
from vaults.keys import KeyType, PublicKey, der_to_raw_signature

SigningPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

_DETERMINISTIC_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def signing_handle(public_key: PublicKey) -> str:
    """Software handles are the hex SHA-256 of the public key bytes (as Ockam's)."""
    return hashlib.sha256(public_key.data).hexdigest()


def public_key_of(private: SigningPrivateKey) -> PublicKey:
    return PublicKey.from_cryptography(private.public_key())


def sign_with(private: SigningPrivateKey, message: bytes) -> bytes:
    """Raw 64-byte signature. P-256 uses RFC 6979 deterministic nonces, as Ockam's software vault."""
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(message)
    return der_to_raw_signature(private.sign(message, _DETERMINISTIC_ECDSA))


def private_key_from_secret(key_type: KeyType, secret: bytes) -> SigningPrivateKey:
    """Ed25519 from its 32-byte seed; P-256 from its 32-byte big-endian scalar."""
    if len(secret) != 32:
        raise VaultError("a secret key must be 32 bytes")
    try:
        if key_type is KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        return ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
    except ValueError as e:
        raise VaultError(f"invalid {key_type.value} secret key: {e}") from None


class SoftwareVault:
    """Keys in memory. Also the base of the file vault (which adds persistence hooks)."""

    def __init__(self) -> None:
        self._signing: dict[str, SigningPrivateKey] = {}
        self._public: dict[str, PublicKey] = {}
        self._x25519: dict[str, x25519.X25519PrivateKey] = {}

    # -- SigningVault ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return "software"

    @property
    def key_types(self) -> frozenset[KeyType]:
        return frozenset((KeyType.ED25519, KeyType.P256))

    @property
    def default_key_type(self) -> KeyType:
        return KeyType.ED25519

    async def generate_key(self, key_type: KeyType) -> str:
        key_type = KeyType(key_type)
        private: SigningPrivateKey
        if key_type is KeyType.ED25519:
            private = ed25519.Ed25519PrivateKey.generate()
        elif key_type is KeyType.P256:
            private = ec.generate_private_key(ec.SECP256R1())
        else:  # pragma: no cover - KeyType is closed
            raise UnsupportedKeyTypeError(f"unsupported key type {key_type}")
        return self._add_signing(private)

    async def import_key(self, key_type: KeyType, secret: bytes) -> str:
        """Import a raw secret (Ed25519 seed or P-256 scalar); return its handle."""
        return self._add_signing(private_key_from_secret(KeyType(key_type), secret))

    def _add_signing(self, private: SigningPrivateKey) -> str:
        public = public_key_of(private)
        handle = signing_handle(public)
        self._persist(handle, private)
        self._signing[handle] = private
        self._public[handle] = public
        return handle

    async def resolve_key(self, key_id: str) -> str:
        await self.public_key(key_id)
        return key_id

    async def public_key(self, handle: str) -> PublicKey:
        pk = self._public.get(handle)
        if pk is None:
            self._signing_key(handle)
            pk = self._public[handle]
        return pk

    async def sign(self, handle: str, message: bytes) -> bytes:
        return sign_with(self._signing_key(handle), message)

    async def delete_key(self, handle: str) -> bool:
        existed = self._forget(handle)
        self._signing.pop(handle, None)
        self._public.pop(handle, None)
        self._x25519.pop(handle, None)
        return existed

    async def list_keys(self) -> list[str]:
        return sorted(self._signing)

    async def close(self) -> None:
        return None

    def _signing_key(self, handle: str) -> SigningPrivateKey:
        key = self._signing.get(handle)
        if key is None:
            loaded = self._load(handle)
            if not isinstance(loaded, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
                raise KeyNotFoundError(f"no signing key {handle} in the vault")
            key = loaded
            self._signing[handle] = key
            self._public[handle] = public_key_of(key)
        return key

    # -- secure-channel keys (X25519) -------------------------------------------------------------
    def generate_x25519(self, *, persist: bool = False) -> str:
        """A new X25519 key. Static keys (``persist=True``) are named by the SHA-256 of their
        public key and kept by the file vault; ephemeral ones get a random handle."""
        private = x25519.X25519PrivateKey.generate()
        return self._add_x25519(private, persist)

    def import_x25519(self, secret: bytes, *, persist: bool = False) -> str:
        if len(secret) != 32:
            raise VaultError("an X25519 secret key must be 32 bytes")
        return self._add_x25519(x25519.X25519PrivateKey.from_private_bytes(secret), persist)

    def _add_x25519(self, private: x25519.X25519PrivateKey, persist: bool) -> str:
        pub = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        if persist:
            handle = "x25519-" + hashlib.sha256(pub).hexdigest()
            self._persist(handle, private)
        else:
            handle = "x25519-eph-" + os.urandom(8).hex()
        self._x25519[handle] = private
        return handle

    def x25519_public_key(self, handle: str) -> bytes:
        return self._x25519_key(handle).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def x25519_dh(self, handle: str, peer_public: bytes) -> bytes:
        """The X25519 shared secret with ``peer_public`` (rejects an all-zero result)."""
        if len(peer_public) != 32:
            raise VaultError("an X25519 public key must be 32 bytes")
        try:
            return self._x25519_key(handle).exchange(
                x25519.X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as e:
            raise VaultError(f"X25519 exchange failed: {e}") from None

    def delete_x25519(self, handle: str) -> bool:
        existed = handle in self._x25519
        self._x25519.pop(handle, None)
        if not handle.startswith("x25519-eph-"):
            existed = self._forget(handle) or existed
        return existed

    def _x25519_key(self, handle: str) -> x25519.X25519PrivateKey:
        key = self._x25519.get(handle)
        if key is None:
            loaded = self._load(handle) if not handle.startswith("x25519-eph-") else None
            if not isinstance(loaded, x25519.X25519PrivateKey):
                raise KeyNotFoundError(f"no X25519 key {handle} in the vault")
            key = loaded
            self._x25519[handle] = key
        return key

    # -- persistence hooks (no-ops in memory) ---------------------------------------------------
    def _persist(self, handle: str, private: SigningPrivateKey | x25519.X25519PrivateKey) -> None:
        return None

    def _load(self, handle: str) -> SigningPrivateKey | x25519.X25519PrivateKey | None:
        return None

    def _forget(self, handle: str) -> bool:
        return handle in self._signing or handle in self._x25519
