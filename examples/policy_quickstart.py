"""Parse a policy, build the environment of one decision, evaluate it and explain a denial.

    python examples/policy_quickstart.py
"""

from policies import Environment, Policy

policy = Policy.parse('(and (= subject.role "admin") (= resource.env "prod"))')
print("policy:", policy)

admin = Environment.build(
    identifier="I" + "3f" * 32,  # the peer's identifier
    has_credential=True,  # a credential was verified
    subject={"role": "admin"},  # the credential's attributes
    resource_id="orders-db",
    resource={"env": "prod"},
)
assert policy.evaluate(admin) is True
print("admin in prod:", "allowed" if policy.evaluate(admin) else "denied")

# A missing attribute does not raise and is not merely false: the comparison is *unknown*,
# and a policy allows only when it is true.
guest = Environment.build(subject={"role": "guest"})
assert policy.evaluate(guest) is False
assert policy.truth(guest) is False  # role is "guest": false, whatever resource.env is
print("guest:", "allowed" if policy.evaluate(guest) else "denied")
print(policy.explain(guest).render())

# The boolean form reads like the CLI's --allow: names are subject attributes set to "true".
simple = Policy.parse('web and not (db or ops) and region="eu"')
print("boolean form:", simple)
env = Environment.build(subject={"web": "true", "db": "false", "ops": "false", "region": "eu"})
assert simple.evaluate(env)
print("web in eu:", "allowed" if simple.evaluate(env) else "denied")
