"""``truststack demo``: the whole toolkit in one run, on an embedded SQLite home.

An authority issues credentials to two members, a service verifies them and decides access with
an attribute policy, a member discloses only some attributes to another verifier, the authority
rotates its key (and later revokes its purpose keys), and two nodes exchange a message over TCP.
Every step is real: keys in file vaults, state in ``state.sqlite``, sockets on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trust.errors import TrustError, VerificationError


@dataclass
class Step:
    title: str
    detail: str
    ms: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoReport:
    home: str
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"home": self.home, "ok": True,
                "steps": [{"title": s.title, "detail": s.detail, "ms": round(s.ms, 2), **s.data}
                          for s in self.steps]}


class DemoFailed(TrustError):
    """A demo step did not produce the expected result."""


_KEY_LABELS = {"ed25519": "Ed25519", "p256": "P-256"}


async def run_demo(home: str | Path, *, on_step: Callable[[Step], None] | None = None) -> DemoReport:
    """Run the scenario in ``home`` (which should be empty); raise :class:`DemoFailed` if any
    step does not behave as it should."""
    from policies import Environment, Policy
    from trust.services import open_credentials
    from trust.storage import open_storage

    report = DemoReport(str(home))

    async def step(title: str, fn: Callable[[], Awaitable[tuple[str, dict[str, Any]]]]) -> None:
        t = time.perf_counter()
        detail, data = await fn()
        s = Step(title, detail, (time.perf_counter() - t) * 1000, data)
        report.steps.append(s)
        if on_step is not None:
            on_step(s)

    storage = open_storage(home=home)
    svc = open_credentials(home, storage=storage)
    ids = svc.identities
    now = int(time.time())
    state: dict[str, Any] = {}
    try:
        async def identities() -> tuple[str, dict[str, Any]]:
            authority = await ids.create_identity("authority")
            alice = await ids.create_identity("alice")
            bob = await ids.create_identity("bob", key_type="p256")
            state.update(authority=authority, alice=alice, bob=bob)
            made = (authority, alice, bob)
            # each identity's key type as its history says (not as asked for)
            types = {n.name: n.latest_public_key.key_type.value for n in made}
            return (", ".join(f"{n.name} {n.identifier[:13]}… ({_KEY_LABELS[types[n.name]]})"
                              for n in made),
                    {"identifiers": {n.name: n.identifier for n in made}, "key_types": types})

        async def issue() -> tuple[str, dict[str, Any]]:
            alice, bob = state["alice"], state["bob"]
            state["alice_cred"] = await svc.issue("authority", alice.identity,
                                                  {"role": "admin", "team": "db"}, ttl=3600)
            state["bob_cred"] = await svc.issue("authority", bob.identity,
                                                {"role": "viewer", "team": "web"}, ttl=3600)
            size = len(state["alice_cred"].encode())
            return (f"alice: role=admin, bob: role=viewer (Ockam-format, {size} bytes, 1 h)",
                    {"credential_bytes": size})

        async def verify() -> tuple[str, dict[str, Any]]:
            authority = state["authority"].identity
            for name in ("alice", "bob"):
                await svc.verify(state[f"{name}_cred"], [authority])
            attrs = await svc.subject_attributes().get(state["alice"].identifier, now=now)
            return f"both verified against the authority; alice's attributes {attrs}", \
                {"alice_attributes": attrs}

        async def decide() -> tuple[str, dict[str, Any]]:
            policies = storage.policies
            await policies.set_policy('(and (= subject.role "admin") (= resource.env "prod"))',
                                      resource="orders-db")
            policy = await policies.policy_for("orders-db")
            assert policy is not None
            decisions: dict[str, bool] = {}
            why = ""
            for name in ("alice", "bob"):
                ident = state[name].identifier
                attrs = await svc.subject_attributes().get(ident, now=now)
                env = Environment.build(identifier=ident, has_credential=bool(attrs),
                                        subject=attrs, resource_id="orders-db",
                                        resource={"env": "prod"}, now=now)
                decisions[name] = policy.evaluate(env)
                if not decisions[name]:
                    why = policy.explain(env).reason or "false"
            if decisions != {"alice": True, "bob": False}:
                raise DemoFailed(f"unexpected decisions {decisions}")
            stranger = Environment.build(identifier="I" + "00" * 32, has_credential=False,
                                         resource_id="orders-db", resource={"env": "prod"})
            if Policy.parse('subject.role = "admin"').evaluate(stranger):
                raise DemoFailed("a subject without attributes was allowed")
            return f"orders-db: alice allowed, bob denied ({why})", {"decisions": decisions}

        async def disclose() -> tuple[str, dict[str, Any]]:
            from trust.models.credential import DisclosableCredential, Presentation

            alice = state["alice"]
            held = await svc.issue("authority", alice.identity,
                                   {"role": "admin", "team": "db", "clearance": "secret"},
                                   selective=True, decoys=2, ttl=3600)
            assert isinstance(held, DisclosableCredential)
            nonce = secrets.token_hex(16)
            p = await svc.present("alice", held, ["role"], audience="audit-service", nonce=nonce)
            wire = p.encode()
            if b"secret" in wire or b"clearance" in wire:
                raise DemoFailed("a hidden attribute leaked into the presentation")
            vp = await svc.verify_presentation(Presentation.decode(wire),
                                               [state["authority"].identity],
                                               audience="audit-service", nonce=nonce)
            revealed = {k.decode(): v.decode() for k, v in vp.attributes.items()}
            try:
                await svc.verify_presentation(Presentation.decode(wire),
                                              [state["authority"].identity],
                                              audience="audit-service", nonce=nonce)
            except VerificationError:
                pass
            else:
                raise DemoFailed("a replayed presentation was accepted")
            return (f"alice revealed {revealed} of 3 attributes ({len(wire)} bytes); "
                    "the replay was refused", {"revealed": revealed})

        async def rotate() -> tuple[str, dict[str, Any]]:
            rotated = await ids.rotate("authority", key_type="p256")
            await svc.verify(state["alice_cred"], [rotated.identity], record=False)
            revoked = await ids.rotate("authority", revoke_purpose_keys=True)
            try:
                await svc.verify(state["alice_cred"], [revoked.identity], record=False)
            except VerificationError as e:
                refused = str(e)
            else:
                raise DemoFailed("a credential survived the revocation of its signing key")
            fresh = await svc.issue("authority", state["alice"].identity, {"role": "admin"},
                                    ttl=600)
            await svc.verify(fresh, [revoked.identity], record=False)
            return ("authority rotated Ed25519→P-256: old credential still valid; after a "
                    f"revoking rotation it is refused ({refused}); a new one verifies",
                    {"changes": len(revoked.identity.changes)})

        await step("Create three identities", identities)
        await step("Issue credentials", issue)
        await step("Verify credentials", verify)
        await step("Decide access with a policy", decide)
        await step("Disclose selectively", disclose)
        await step("Rotate and revoke", rotate)
        await step("Route a message over TCP", _route_messages)
    finally:
        await svc.close()
        await storage.close()
    return report


async def _route_messages() -> tuple[str, dict[str, Any]]:
    """Three nodes on 127.0.0.1: A reaches C's echo through B's hop (B allows its hop to
    connect to C: ``hop_allow``); without the hop, B's flow control refuses to pass a message
    from one TCP connection to another."""
    from trust.node import Node
    from trust.routing import parse_multiaddr

    a, c = Node("demo-a"), Node("demo-c")
    nodes = [a, c]
    try:
        lc = await c.create_tcp_listener("127.0.0.1:0")
        b = Node("demo-b", hop_allow=[lc.address])  # `node create --hop-allow HOST:PORT`
        nodes.append(b)
        for node in nodes:
            await node.start_services()
        lb = await b.create_tcp_listener("127.0.0.1:0")
        text = (f"/ip4/127.0.0.1/tcp/{lb.port}/service/hop"
                f"/ip4/127.0.0.1/tcp/{lc.port}/service/echo")
        route = parse_multiaddr(text).to_route()
        await a.send_and_receive(route, b"warm-up")
        t = time.perf_counter()
        n = 200
        for i in range(n):
            reply = await a.send_and_receive(route, b"hello %d" % i)
            if reply != b"hello %d" % i:
                raise DemoFailed(f"echo returned {reply!r}")
        per_trip = (time.perf_counter() - t) / n * 1e6
        direct = parse_multiaddr(
            f"/ip4/127.0.0.1/tcp/{lb.port}/ip4/127.0.0.1/tcp/{lc.port}/service/echo").to_route()
        try:
            await a.send_and_receive(direct, b"no hop", timeout=0.3)
        except TrustError:
            pass
        else:
            raise DemoFailed("B forwarded between two connections without its hop service")
    finally:
        for node in nodes:
            await node.stop()
    return (f"A → B (hop) → C (echo) and back: {per_trip:.0f} µs per round trip over two TCP "
            "hops; without the hop B refused to forward", {"round_trip_us": round(per_trip, 1)})
