"""The storage the identity service needs, as Protocols (SQL implementations:
:mod:`trust.storage.identities`; the composition root passes them in).

Repositories only store: deciding whether a change history may replace the stored one (newer,
equal, older, conflicting) is :meth:`trust.identities.manager.IdentityManager.remember`'s job,
made safe against concurrent writers by the compare-and-set :meth:`KnownIdentities.replace`."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LocalIdentity:
    """A named identity whose primary key this home controls."""

    name: str
    identifier: str
    vault: str
    key_handle: str
    is_default: bool
    created_at: int


@dataclass(frozen=True)
class StoredPurposeKey:
    """A purpose key of a local identity: where its private key is, and its attestation."""

    identifier: str
    purpose: str  # "secure_channel" | "credential_signing"
    vault: str
    key_handle: str
    attestation: bytes
    created_at: int
    expires_at: int


class KnownIdentities(Protocol):
    """Change histories (as exported bytes) by identifier."""

    async def get(self, identifier: str) -> bytes | None: ...

    async def add(self, identifier: str, change_history: bytes, *, now: int) -> bool:
        """Store a history for a new identifier; False (nothing written) if one is stored."""
        ...

    async def replace(self, identifier: str, change_history: bytes, *, previous: bytes,
                      now: int) -> bool:
        """Replace the stored history if it is still ``previous`` (compare-and-set, atomic);
        False (nothing written) if it changed or is gone."""
        ...

    async def list(self) -> list[str]: ...

    async def delete(self, identifier: str) -> bool: ...


class LocalIdentities(Protocol):
    async def add(self, local: LocalIdentity, *, may_be_default: bool = True) -> None:
        """Add ``local`` (``ConflictError`` if the name is taken). It becomes the default
        identity when there is none and ``may_be_default``; an identity added with
        ``may_be_default=False`` (a node's own) is never made the default implicitly, not even
        when the default identity is deleted."""
        ...

    async def get(self, name: str) -> LocalIdentity | None: ...

    async def by_identifier(self, identifier: str) -> LocalIdentity | None: ...

    async def default(self) -> LocalIdentity | None: ...

    async def list(self) -> list[LocalIdentity]: ...

    async def update_key(self, name: str, vault: str, key_handle: str) -> None: ...

    async def delete(self, name: str) -> bool: ...

    async def uses_vault(self, vault: str) -> builtins.list[str]: ...

    async def key_users(self, vault: str, key_handle: str) -> builtins.list[str]:
        """Names of the local identities whose primary key or a purpose key is ``key_handle``
        in ``vault`` (a key may be shared: ``identity create --key-id``)."""
        ...


class PurposeKeys(Protocol):
    async def add(self, key: StoredPurposeKey) -> None: ...

    async def list(self, identifier: str, purpose: str | None = None) -> list[StoredPurposeKey]: ...

    async def replace_attestation(self, identifier: str, purpose: str, key_handle: str,
                                  attestation: bytes, created_at: int, expires_at: int) -> None: ...

    async def delete(self, identifier: str, purpose: str | None = None,
                     key_handle: str | None = None) -> int: ...
