"""Credential attributes arrive as strings; a schema types them, and reserved names stay safe.

    python examples/policy_typed_attributes.py
"""

from policies import Environment, Policy, PolicyError

policy = Policy.parse(
    '(and (>= subject.clearance 3) (member? "ops" subject.teams) (< env.now subject.until))')

attributes = {"clearance": "4", "teams": "dev, ops", "until": "1900000000"}
schema = {"clearance": "int", "teams": "list", "until": "int"}
env = Environment.build(subject=attributes, schema=schema, now=1_800_000_000)
print("typed:", dict(env))
assert policy.evaluate(env)

# Without a schema, "4" still compares as a number with 3, but "dev, ops" is one string.
untyped = Environment.build(subject=attributes, now=1_800_000_000)
print("untyped result:", policy.truth(untyped))  # None: unknown, so denied
assert policy.truth(untyped) is None and not policy.evaluate(untyped)
print(policy.explain(untyped).render())

# A value that does not fit its type is an error (or, with strict=False, dropped: missing).
try:
    Environment.build(subject={"clearance": "high"}, schema=schema)
except PolicyError as e:
    print("schema error:", e)
loose = Environment.build(subject={"clearance": "high"}, schema=schema, strict=False)
assert "subject.clearance" not in loose and loose.dropped == ("subject.clearance",)

# An attribute cannot impersonate: subject.identifier and subject.has_credential are reserved.
victim = "I" + "0a" * 32
forged = Environment.build(identifier="I" + "3f" * 32, has_credential=False,
                           subject={"identifier": victim, "has_credential": "true"})
print("dropped:", forged.dropped)
assert not Policy.parse(f'(= subject.identifier "{victim}")').evaluate(forged)
assert not Policy.parse("subject.has_credential").evaluate(forged)
