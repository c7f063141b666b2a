"""Reading a subject's verified attributes as typed values: the source of ``subject.*`` for
policies and secure channels."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from trust.credentials.repositories import AttributeRecord, AttributeRepository, SchemaRepository
from trust.credentials.schemas import Schema, text_of
from trust.models.memo import ENTRY_OVERHEAD, BoundedCache


class HasIdentifier(Protocol):
    @property
    def identifier(self) -> str: ...


def _subject_id(subject: str | HasIdentifier) -> str:
    return subject if isinstance(subject, str) else subject.identifier


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


@dataclass(frozen=True)
class TypedAttribute:
    name: str
    value: Any
    issuer: str
    schema: int
    created_at: int
    expires_at: int


class SubjectAttributes:
    """Typed, unexpired attributes of a subject, merged over issuers (on a name given by several
    issuers, the most recently created credential wins)."""

    def __init__(self, attributes: AttributeRepository, schemas: SchemaRepository) -> None:
        self.attributes = attributes
        self.schemas = schemas
        self._schemas: BoundedCache[int, Schema | None] = BoundedCache(
            "credentials.schemas", 1024 * 1024)

    async def _schema(self, schema_id: int) -> Schema | None:
        if schema_id in self._schemas:
            return self._schemas.get(schema_id)
        schema = await self.schemas.get(schema_id)
        size = ENTRY_OVERHEAD + (0 if schema is None else len(schema.description) + sum(
            ENTRY_OVERHEAD // 4 + len(name) for name, _ in schema.attributes))
        self._schemas.put(schema_id, schema, size)
        return schema

    async def records(self, subject: str | HasIdentifier, *, now: int | None = None
                      ) -> list[TypedAttribute]:
        """Every unexpired attribute record of ``subject`` (an identifier, or an identity) at
        ``now`` (default: the clock)."""
        out = []
        for r in await self.attributes.get(_subject_id(subject), now=_now(now)):
            out.append(await self._typed(r))
        return out

    async def _typed(self, r: AttributeRecord) -> TypedAttribute:
        schema = await self._schema(r.schema)
        value = schema.read(r.name, r.value) if schema else text_of(r.value)
        return TypedAttribute(text_of(r.name), value, r.issuer, r.schema, r.created_at,
                              r.expires_at)

    async def get(self, subject: str | HasIdentifier, *, now: int | None = None
                  ) -> dict[str, Any]:
        """``{name: typed value}`` for ``subject`` (an identifier, or an identity) at ``now``
        (default: the clock)."""
        best: dict[str, TypedAttribute] = {}
        for a in await self.records(subject, now=now):
            cur = best.get(a.name)
            if cur is None or (a.created_at, a.issuer) > (cur.created_at, cur.issuer):
                best[a.name] = a
        return {k: v.value for k, v in sorted(best.items())}
