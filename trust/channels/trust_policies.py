"""Trust policies: which verified peers a channel accepts (wire spec §3.5 step 4), pure.

* :class:`TrustEveryone` — any peer whose identity, attestation and credentials verify;
* :class:`TrustIdentifier` (``TrustIdentifier(a, b)`` for several) — exact identifier match;
* :class:`TrustAuthority` — a valid credential from one of the given authorities is required;
* :class:`TrustPolicy` — an ABAC expression (:mod:`policies`) over ``subject.identifier``,
  ``subject.has_credential`` and the peer's credential attributes (strings);
* ``a & b`` (both) and ``a | b`` (either).

A policy is evaluated on every handshake (never cached). :meth:`Trust.check` raises
:class:`~trust.errors.UntrustedError` naming why; :meth:`Trust.allows` says yes or no. A policy
lists the :attr:`~Trust.authorities` whose credentials it reads, so the handshake verifies the
peer's credentials against them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trust.channels.peer import VerifiedPeer
from trust.errors import TrustError, UntrustedError, UsageError
from trust.identities.identity import Identity
from trust.models.primitives import identifier_from_text, identifier_text

if TYPE_CHECKING:
    from policies import Policy

__all__ = [
    "AllTrust",
    "AnyTrust",
    "Trust",
    "TrustAuthority",
    "TrustEveryone",
    "TrustIdentifier",
    "TrustIdentifiers",
    "TrustPolicy",
]


class Trust(ABC):
    """A trust policy. Combine with ``&`` and ``|``."""

    __slots__ = ()

    @abstractmethod
    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        """Raise :class:`UntrustedError` unless ``peer`` is trusted."""

    @property
    def authorities(self) -> tuple[Identity, ...]:
        """The authorities whose credentials this policy reads."""
        return ()

    def allows(self, peer: VerifiedPeer, *, now: int | None = None) -> bool:
        try:
            self.check(peer, now=now)
        except UntrustedError:
            return False
        return True

    def __and__(self, other: Trust) -> Trust:
        if not isinstance(other, Trust):
            return NotImplemented
        return AllTrust(self, other)

    def __or__(self, other: Trust) -> Trust:
        if not isinstance(other, Trust):
            return NotImplemented
        return AnyTrust(self, other)


class TrustEveryone(Trust):
    """Every authenticated peer (Ockam's default)."""

    __slots__ = ()

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return "TrustEveryone()"


def _identifier(value: str | bytes | Identity) -> str:
    if isinstance(value, Identity):
        return value.identifier
    if isinstance(value, bytes):
        if len(value) != 32:
            raise UsageError("an identifier is 32 bytes")
        return identifier_text(value)
    if isinstance(value, str):
        try:
            return identifier_text(identifier_from_text(value))
        except TrustError as e:
            raise UsageError(str(e)) from None
    raise UsageError(f"an identifier is text like 'I…', not {type(value).__name__}")


class TrustIdentifier(Trust):
    """Peers whose identifier is one of those given (``I…`` text, 32 bytes or an Identity)."""

    __slots__ = ("identifiers",)

    def __init__(self, *identifiers: str | bytes | Identity) -> None:
        if not identifiers:
            raise UsageError("TrustIdentifier needs at least one identifier")
        self.identifiers = frozenset(_identifier(i) for i in identifiers)

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        if peer.identifier not in self.identifiers:
            raise UntrustedError(f"{peer.identifier} is not a trusted identifier")

    def __repr__(self) -> str:
        return f"TrustIdentifier({', '.join(sorted(self.identifiers))})"


TrustIdentifiers = TrustIdentifier
"""Several identifiers: ``TrustIdentifiers(a, b)`` is ``TrustIdentifier(a, b)``."""


class TrustAuthority(Trust):
    """Peers holding a valid credential (verified during the handshake, at its time) from one of
    ``authorities`` (verified identities). As in Ockam an authority's own identifier is not
    trusted by this alone; combine with ``| TrustIdentifier(authority)`` for that."""

    __slots__ = ("_authorities", "_ids")

    def __init__(self, *authorities: Identity) -> None:
        if not authorities:
            raise UsageError("TrustAuthority needs at least one authority")
        for a in authorities:
            if not isinstance(a, Identity):
                raise UsageError("an authority is a verified Identity (its change history)")
        self._authorities = tuple(authorities)
        self._ids = frozenset(a.identifier for a in authorities)

    @property
    def authorities(self) -> tuple[Identity, ...]:
        return self._authorities

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        if not peer.credentials_from(self._ids):
            raise UntrustedError(f"{peer.identifier} presented no valid credential from "
                                 f"{', '.join(sorted(self._ids))}")

    def __repr__(self) -> str:
        return f"TrustAuthority({', '.join(sorted(self._ids))})"


class TrustPolicy(Trust):
    """Peers for which an ABAC policy evaluates to true, in the environment
    :meth:`VerifiedPeer.environment` builds (``subject.identifier``, ``subject.has_credential``,
    credential attributes as strings; ``env.now``). ``authorities``: whose credentials count
    (their attributes fill the environment); ``schema`` types attributes as in
    :meth:`policies.Environment.build`."""

    __slots__ = ("_authorities", "policy", "schema")

    def __init__(self, policy: Policy | str, *, authorities: tuple[Identity, ...] = (),
                 schema: Mapping[str, str] | None = None) -> None:
        from policies import Policy  # imported on first use: the policy engine is not small

        self.policy = policy if isinstance(policy, Policy) else Policy.parse(policy)
        self._authorities = tuple(authorities)
        self.schema = dict(schema) if schema is not None else None

    @property
    def authorities(self) -> tuple[Identity, ...]:
        return self._authorities

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        from policies import Environment

        t = int(time.time()) if now is None else int(now)
        env = Environment.build(identifier=peer.identifier, has_credential=peer.has_credential,
                                subject=peer.attributes, schema=self.schema, now=t, strict=False)
        if not self.policy.evaluate(env):
            reason = self.policy.explain(env).render().splitlines()
            raise UntrustedError(f"{peer.identifier} is refused by the policy {self.policy.text}"
                                 + (f": {reason[0]}" if reason else ""))

    def __repr__(self) -> str:
        return f"TrustPolicy({self.policy.text!r})"


class AllTrust(Trust):
    """Every one of ``policies`` must trust the peer (``a & b``)."""

    __slots__ = ("policies",)

    def __init__(self, *policies: Trust) -> None:
        self.policies = tuple(policies)

    @property
    def authorities(self) -> tuple[Identity, ...]:
        return tuple(a for p in self.policies for a in p.authorities)

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        for p in self.policies:
            p.check(peer, now=now)

    def __repr__(self) -> str:
        return " & ".join(f"({p!r})" for p in self.policies)


class AnyTrust(Trust):
    """At least one of ``policies`` must trust the peer (``a | b``)."""

    __slots__ = ("policies",)

    def __init__(self, *policies: Trust) -> None:
        if not policies:
            raise UsageError("AnyTrust needs at least one policy")
        self.policies = tuple(policies)

    @property
    def authorities(self) -> tuple[Identity, ...]:
        return tuple(a for p in self.policies for a in p.authorities)

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        reasons = []
        for p in self.policies:
            try:
                p.check(peer, now=now)
                return
            except UntrustedError as e:
                reasons.append(str(e))
        raise UntrustedError("; ".join(reasons))

    def __repr__(self) -> str:
        return " | ".join(f"({p!r})" for p in self.policies)
