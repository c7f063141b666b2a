"""Where policies are kept: the :class:`PolicyRepository` Protocol and an in-memory implementation.

Policies are keyed by *scope* (a node name, default ``"default"``) and by a resource name or a
resource type. :meth:`PolicyRepository.policy_for` looks a resource's policy up in that order:
the resource's own policy, then its type's, then the ``default`` the caller passes (``None``:
no policy, which callers treat as deny). The SQLite implementation lives in
``trust/storage/policies.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

from policies.errors import PolicyError
from policies.policy import Policy

__all__ = [
    "DEFAULT_SCOPE",
    "InMemoryPolicyRepository",
    "Kind",
    "PolicyEntry",
    "PolicyRepository",
    "as_policy",
    "authorize",
    "check_name",
    "target",
]

DEFAULT_SCOPE: Final = "default"
MAX_NAME: Final = 255

Kind = Literal["resource", "resource_type"]


def check_name(value: object, what: str) -> str:
    """A scope, resource or resource-type name: 1 to 255 printable characters, no whitespace."""
    if not isinstance(value, str) or not value:
        raise PolicyError(f"the {what} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise PolicyError(f"the {what} is longer than {MAX_NAME} characters")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise PolicyError(f"the {what} {value!r} holds whitespace or control characters")
    return value


def target(resource: str | None, resource_type: str | None) -> tuple[Kind, str]:
    """(kind, name) from exactly one of ``resource`` and ``resource_type``."""
    if (resource is None) == (resource_type is None):
        raise PolicyError("give exactly one of resource and resource_type")
    if resource is not None:
        return "resource", check_name(resource, "resource name")
    return "resource_type", check_name(resource_type, "resource type")


def as_policy(policy: Policy | str) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        return Policy.parse(policy)
    raise PolicyError(f"expected a Policy or policy text, not {type(policy).__name__}")


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A stored policy and its key."""

    scope: str
    kind: Kind
    name: str
    policy: Policy
    updated_at: int

    @property
    def resource(self) -> str | None:
        return self.name if self.kind == "resource" else None

    @property
    def resource_type(self) -> str | None:
        return self.name if self.kind == "resource_type" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.scope,
            "resource": self.resource,
            "resource_type": self.resource_type,
            "expression": self.policy.text,
            "updated_at": self.updated_at,
        }


@runtime_checkable
class PolicyRepository(Protocol):
    """Policies by (scope, resource name or resource type)."""

    async def set_policy(self, policy: Policy | str, *, resource: str | None = None,
                         resource_type: str | None = None, scope: str = DEFAULT_SCOPE,
                         now: int | None = None) -> PolicyEntry:
        """Store (create or replace) the policy of a resource or of a resource type."""
        ...

    async def get_policy(self, *, resource: str | None = None, resource_type: str | None = None,
                         scope: str = DEFAULT_SCOPE) -> PolicyEntry | None:
        """The policy stored for exactly this resource or type (no fallback)."""
        ...

    async def delete_policy(self, *, resource: str | None = None,
                            resource_type: str | None = None,
                            scope: str = DEFAULT_SCOPE) -> bool:
        """Delete it; False when there was none."""
        ...

    async def list_policies(self, *, scope: str = DEFAULT_SCOPE) -> list[PolicyEntry]:
        """Every policy of a scope, resources first, by name."""
        ...

    async def policy_for(self, resource: str, resource_type: str | None = None, *,
                         scope: str = DEFAULT_SCOPE,
                         default: Policy | None = None) -> Policy | None:
        """The compiled policy that governs ``resource``: its own, else its type's, else
        ``default``."""
        ...


class InMemoryPolicyRepository:
    """A :class:`PolicyRepository` in a dict (tests, single-process tools)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], PolicyEntry] = {}

    async def set_policy(self, policy: Policy | str, *, resource: str | None = None,
                         resource_type: str | None = None, scope: str = DEFAULT_SCOPE,
                         now: int | None = None) -> PolicyEntry:
        kind, name = target(resource, resource_type)
        entry = PolicyEntry(check_name(scope, "node name"), kind, name, as_policy(policy),
                            int(time.time()) if now is None else int(now))
        self._entries[(entry.scope, kind, name)] = entry
        return entry

    async def get_policy(self, *, resource: str | None = None, resource_type: str | None = None,
                         scope: str = DEFAULT_SCOPE) -> PolicyEntry | None:
        kind, name = target(resource, resource_type)
        return self._entries.get((check_name(scope, "node name"), kind, name))

    async def delete_policy(self, *, resource: str | None = None,
                            resource_type: str | None = None,
                            scope: str = DEFAULT_SCOPE) -> bool:
        kind, name = target(resource, resource_type)
        return self._entries.pop((check_name(scope, "node name"), kind, name), None) is not None

    async def list_policies(self, *, scope: str = DEFAULT_SCOPE) -> list[PolicyEntry]:
        check_name(scope, "node name")
        found = [e for (s, _, _), e in self._entries.items() if s == scope]
        return sorted(found, key=lambda e: (e.kind, e.name))

    async def policy_for(self, resource: str, resource_type: str | None = None, *,
                         scope: str = DEFAULT_SCOPE,
                         default: Policy | None = None) -> Policy | None:
        entry = self._entries.get((scope, "resource", resource))
        if entry is None and resource_type is not None:
            entry = self._entries.get((scope, "resource_type", resource_type))
        return default if entry is None else entry.policy


async def authorize(repository: PolicyRepository, env: Any, resource: str,
                    resource_type: str | None = None, *, scope: str = DEFAULT_SCOPE,
                    default: Policy | None = None) -> bool:
    """Look up the policy of ``resource`` (resource, then type, then ``default``) and evaluate it
    in ``env``; no policy at all denies."""
    policy = await repository.policy_for(resource, resource_type, scope=scope, default=default)
    return policy is not None and policy.evaluate(env)
