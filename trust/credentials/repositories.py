"""The storage the credential service needs, as Protocols (SQL implementations for SQLite and
PostgreSQL: :mod:`trust.storage.credentials`; the composition root passes them in).

* :class:`SchemaRepository`: numbered credential schemas.
* :class:`CredentialWallet`: credentials a local identity holds (with their disclosures).
* :class:`AttributeRepository`: verified attributes per subject, with issuer and expiry: the
  source of ``subject.*`` for policies and secure channels.
* :class:`NonceRepository`: presentation nonces a verifier has seen, for the freshness window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from trust.credentials.schemas import Schema


@dataclass(frozen=True)
class StoredCredential:
    """A credential in a holder's wallet. ``data`` is the hex-transport bytes: a
    CredentialAndPurposeKey, or a DisclosableCredential when ``selective``."""

    id: int
    holder: str
    issuer: str
    subject: str
    schema: int
    selective: bool
    data: bytes
    created_at: int
    expires_at: int
    stored_at: int


@dataclass(frozen=True)
class AttributeRecord:
    """One verified attribute of ``subject``, vouched for by ``issuer`` until ``expires_at``."""

    subject: str
    issuer: str
    name: bytes
    value: bytes
    schema: int
    created_at: int
    expires_at: int


class SchemaRepository(Protocol):
    async def add(self, schema: Schema) -> None:
        """Store a new schema (``ConflictError`` if its id is taken)."""
        ...

    async def get(self, schema_id: int) -> Schema | None: ...

    async def list(self) -> list[Schema]: ...

    async def delete(self, schema_id: int) -> bool: ...


class CredentialWallet(Protocol):
    async def add(self, holder: str, issuer: str, subject: str, schema: int, selective: bool,
                  data: bytes, created_at: int, expires_at: int, *, now: int) -> StoredCredential:
        """Keep a credential (storing the same bytes twice returns the existing entry)."""
        ...

    async def get(self, credential_id: int) -> StoredCredential | None: ...

    async def list(self, holder: str | None = None) -> list[StoredCredential]: ...

    async def delete(self, credential_id: int) -> bool: ...


class AttributeRepository(Protocol):
    async def record(self, subject: str, issuer: str, attributes: Mapping[bytes, bytes], *,
                     schema: int, created_at: int, expires_at: int, replace: bool) -> None:
        """Record verified attributes. ``replace``: they are the issuer's complete set for the
        subject (an Ockam-format credential), so older ones from that issuer are dropped;
        otherwise (a presentation) each attribute is upserted. A credential older than what is
        stored never overwrites it."""
        ...

    async def get(self, subject: str, *, now: int) -> list[AttributeRecord]:
        """The subject's attributes that have not expired at ``now``."""
        ...

    async def subjects(self, *, now: int) -> list[str]: ...

    async def purge_expired(self, *, now: int) -> int: ...

    async def delete(self, subject: str, issuer: str | None = None) -> int: ...


class NonceRepository(Protocol):
    async def use(self, audience: str, nonce: str, *, expires_at: int, now: int) -> bool:
        """Record ``(audience, nonce)`` until ``expires_at``; False if it was already recorded
        and has not expired (a replay). Atomic."""
        ...
