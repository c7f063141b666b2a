""":class:`VerifiedPeer`: who is on the other side of a handshake, once everything verified."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trust.credentials.verification import VerifiedCredential
from trust.identities.identity import Identity
from trust.models.purpose_key import PurposeKeyAttestationData

if TYPE_CHECKING:
    from policies import Environment

__all__ = ["VerifiedPeer", "merge_attributes"]


def merge_attributes(credentials: Iterable[VerifiedCredential]) -> dict[str, str]:
    """Credential attributes as strings (non-UTF-8 names or values are left out); a name two
    credentials give different values is left out too (ambiguous, so missing: fail closed)."""
    out: dict[str, str] = {}
    conflicting: set[str] = set()
    for c in credentials:
        for k, v in c.attributes.items():
            try:
                name, value = k.decode("utf-8"), v.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if name in out and out[name] != value:
                conflicting.add(name)
            out.setdefault(name, value)
    for name in conflicting:
        del out[name]
    return out


@dataclass(frozen=True)
class VerifiedPeer:
    """The peer's verified identity, the Noise static key its attestation binds to it, and the
    credentials that verified against the configured authorities."""

    identity: Identity
    static_key: bytes
    attestation: PurposeKeyAttestationData
    credentials: tuple[VerifiedCredential, ...] = ()
    attributes: dict[str, str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", merge_attributes(self.credentials))

    @property
    def identifier(self) -> str:
        """``I`` + 64 hex digits."""
        return self.identity.identifier

    @property
    def has_credential(self) -> bool:
        return bool(self.credentials)

    def credentials_from(self, authorities: frozenset[str]) -> tuple[VerifiedCredential, ...]:
        """The verified credentials issued by one of ``authorities`` (identifiers)."""
        return tuple(c for c in self.credentials if c.issuer in authorities)

    def environment(self, *, now: int | None = None, **kw: object) -> Environment:
        """The policy environment of this peer: ``subject.identifier``,
        ``subject.has_credential`` and its credential attributes as strings (``kw`` are passed
        on to :meth:`policies.Environment.build`, e.g. ``resource_id``)."""
        from policies import Environment

        return Environment.build(identifier=self.identifier, has_credential=self.has_credential,
                                 subject=self.attributes, now=now, **kw)  # type: ignore[arg-type]
