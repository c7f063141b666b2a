"""Keep policies in a store and look them up by resource: resource, then type, then a default.

The same code runs against the in-memory store and the SQL one (``open_storage``: SQLite here, the
state database; a ``postgresql://`` URL works the same); a node would hold one store and call
``authorize`` for each message.

    python examples/policy_store.py
"""

import asyncio
import tempfile
from pathlib import Path

from policies import Environment, InMemoryPolicyRepository, Policy, PolicyRepository, authorize
from trust.storage import open_storage


async def demo(store: PolicyRepository) -> None:
    # Every tcp-outlet needs a verified credential; the billing outlet also needs a role.
    await store.set_policy("(= subject.has_credential true)", resource_type="tcp-outlet")
    await store.set_policy('subject.has_credential and role="billing"', resource="billing")

    member = Environment.build(has_credential=True, subject={"role": "dev"})
    for resource in ("web", "billing"):
        allowed = await authorize(store, member, resource, "tcp-outlet")
        print(f"  member -> {resource}: {'allowed' if allowed else 'denied'}")

    # No policy for the resource nor for its type: the caller's default decides (else deny).
    deny = await authorize(store, member, "printer", "echoer")
    allow = await authorize(store, member, "printer", "echoer", default=Policy.allow_all())
    print(f"  member -> printer: {'allowed' if deny else 'denied'} "
          f"(with an allow-all default: {'allowed' if allow else 'denied'})")
    assert (deny, allow) == (False, True)

    # Scopes (node names) keep policies apart.
    await store.set_policy("false", resource="web", scope="edge-node")
    assert await authorize(store, member, "web", "tcp-outlet")
    assert not await authorize(store, member, "web", "tcp-outlet", scope="edge-node")
    for entry in await store.list_policies():
        print(f"  {entry.kind:<13} {entry.name:<8} {entry.policy}")


async def main() -> None:
    print("in memory:")
    await demo(InMemoryPolicyRepository())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp).resolve() / 'state.sqlite'}"
        async with open_storage(url) as storage:
            print("in SQLite:")
            await demo(storage.policies)
        async with open_storage(url) as storage:  # policies survive reopening
            policy = await storage.policies.policy_for("billing", "tcp-outlet")
            print("after reopening, billing:", policy)
            assert policy is not None


asyncio.run(main())
