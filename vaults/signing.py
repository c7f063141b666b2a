"""The signing-vault interface: keys for identities and credentials.

A vault holds many keys addressed by opaque string handles. Private keys never leave HSM/KMS
vaults. Methods are async because remote backends do I/O.

``sign(handle, message)`` returns a raw 64-byte signature over ``message`` following Ockam's
rules: Ed25519 signs ``message`` itself; P-256 is ECDSA-SHA256 over ``message``, raw r||s.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vaults.keys import KeyType, PublicKey


@runtime_checkable
class SigningVault(Protocol):
    """What identities and credential issuers need from a vault."""

    @property
    def backend(self) -> str:
        """The backend's name: ``software``, ``file``, ``pkcs11``, ``aws-kms``, ``gcp-kms``."""
        ...

    @property
    def key_types(self) -> frozenset[KeyType]:
        """The key types this vault can generate and use."""
        ...

    @property
    def default_key_type(self) -> KeyType:
        """The key type used when the caller names none."""
        ...

    async def generate_key(self, key_type: KeyType) -> str:
        """Make a new key; return its handle."""
        ...

    async def resolve_key(self, key_id: str) -> str:
        """The handle of an existing key named by the user (a handle, HSM label, KMS key id,
        ARN, alias or key version name); ``KeyNotFoundError`` if there is none."""
        ...

    async def public_key(self, handle: str) -> PublicKey:
        """The public key of ``handle`` (``KeyNotFoundError`` if unknown)."""
        ...

    async def sign(self, handle: str, message: bytes) -> bytes:
        """A raw 64-byte signature of ``message`` with the key ``handle``."""
        ...

    async def delete_key(self, handle: str) -> bool:
        """Delete (or schedule the deletion of) a key; False if it did not exist."""
        ...

    async def list_keys(self) -> list[str]:
        """The handles of the keys this vault knows."""
        ...

    async def close(self) -> None:
        """Release sessions and connections."""
        ...
