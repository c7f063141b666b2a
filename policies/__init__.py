"""The ABAC policy language: parser, printer, evaluator, explain and policy stores.

    from policies import Environment, Policy

    policy = Policy.parse('(and (= subject.role "admin") (= resource.env "prod"))')
    env = Environment.build(identifier="I...", has_credential=True,
                            subject={"role": "admin"}, resource={"env": "prod"})
    policy.evaluate(env)            # True
    print(policy.explain(env))      # the tree of sub-results and why each is false/unknown

Both forms parse: the boolean form (``web and not (db or ops)``, ``role="admin"``) and Ockam's
s-expressions. Evaluation is three-valued and fails closed: a missing attribute or an impossible
comparison is *unknown*, and only *true* allows. See docs/policies.md.

The names below are imported on first use, so ``import policies.errors`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.environment import SCHEMA_TYPES, Environment, TextAttributes, text_attributes
    from policies.errors import PolicyError
    from policies.explain import Explanation
    from policies.lint import LintWarning
    from policies.policy import Policy
    from policies.repository import (
        DEFAULT_SCOPE,
        InMemoryPolicyRepository,
        PolicyEntry,
        PolicyRepository,
        authorize,
    )

_EXPORTS = {
    "DEFAULT_SCOPE": "policies.repository",
    "SCHEMA_TYPES": "policies.environment",
    "Environment": "policies.environment",
    "Explanation": "policies.explain",
    "InMemoryPolicyRepository": "policies.repository",
    "LintWarning": "policies.lint",
    "Policy": "policies.policy",
    "PolicyEntry": "policies.repository",
    "PolicyError": "policies.errors",
    "PolicyRepository": "policies.repository",
    "TextAttributes": "policies.environment",
    "authorize": "policies.repository",
    "text_attributes": "policies.environment",
}

__all__ = [
    "DEFAULT_SCOPE",
    "SCHEMA_TYPES",
    "Environment",
    "Explanation",
    "InMemoryPolicyRepository",
    "LintWarning",
    "Policy",
    "PolicyEntry",
    "PolicyError",
    "PolicyRepository",
    "TextAttributes",
    "authorize",
    "text_attributes",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
