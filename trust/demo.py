"""``truststack demo``: the seed scenario on one machine, on an embedded SQLite home.

Part one runs in this process: an authority issues credentials to two members, a service
verifies them and decides access with an attribute policy, a member discloses only some
attributes to another verifier, the authority rotates its key and later revokes its purpose
keys.

Part two is the scenario truststack is for, with real node processes on 127.0.0.1: a
**project** node (an authority, and the relay node), a **bank** node with an outlet to Bank
Corp's service (an HTTP server the demo starts, or PostgreSQL with ``postgres=``), registered as
relay ``bank`` at the project, and an **analysis** node enrolled with a one-time ticket, with an
inlet ``--via bank``. A request goes through the portal: three secure channels (bank → project,
analysis → project, and analysis → bank inside them), read back from the nodes with the policy
decisions and the bytes moved. Every byte that reaches the project node's TCP listener passes
through a wiretap (a TCP proxy in this process, :class:`~trust.demo_services.Wiretap`): the
demo checks that none of the application's plaintext is in it. The nodes are stopped and
deleted at the end, also when a step fails or the run is interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from trust.errors import TrustError, VerificationError

T = TypeVar("T")

NODES = ("project", "bank", "analysis")
"""The demo's node processes, in the order they start."""
ADMIN = "project-admin"
"""The identity that administers the project's authority (makes the tickets)."""
OUTLET_POLICY = '(= subject.role "analyst")'


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
    total_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"home": self.home, "ok": True, "total_ms": round(self.total_ms, 1),
                "steps": [{"title": s.title, "detail": s.detail, "ms": round(s.ms, 2), **s.data}
                          for s in self.steps]}


class DemoFailed(TrustError):
    """A demo step did not produce the expected result."""


@dataclass
class PostgresOption:
    """``--postgres``: Bank Corp's service is PostgreSQL: the server at ``url``
    (``postgresql://USER[:PASSWORD]@HOST:PORT/DB``), or one the demo starts (``url`` None)."""

    url: str | None = None


_KEY_LABELS = {"ed25519": "Ed25519", "p256": "P-256"}


async def run_demo(home: str | Path, *, on_step: Callable[[Step], None] | None = None,
                   postgres: PostgresOption | None = None) -> DemoReport:
    """Run the scenario in ``home`` (which should be empty); raise :class:`DemoFailed` if any
    step does not behave as it should. The node processes are gone when this returns."""
    from trust.services import open_credentials
    from trust.storage import open_storage

    started = time.perf_counter()
    report = DemoReport(str(home))

    async def step(title: str, fn: Callable[[], Awaitable[tuple[str, dict[str, Any]]]]) -> None:
        t = time.perf_counter()
        detail, data = await fn()
        s = Step(title, detail, (time.perf_counter() - t) * 1000, data)
        report.steps.append(s)
        if on_step is not None:
            on_step(s)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo")
    seed = _Seed(Path(home), pool, postgres)
    storage = open_storage(home=home)
    svc = open_credentials(home, storage=storage)
    try:
        admin = await svc.identities.create_identity(ADMIN)
        # the project node starts in the background while part one runs
        project_start = asyncio.ensure_future(seed.call(seed.start_project, admin.identifier))
        seed.service_start = asyncio.ensure_future(seed.call(seed.start_service_quietly))
        try:
            await _credentials_story(step, svc, storage)
        except BaseException:
            for pending in (project_start, seed.service_start):
                with contextlib.suppress(BaseException):
                    await pending
            raise
        await step("Start the project node (authority and relay)",
                   lambda: seed.project_started(project_start))
        await step("Enroll bank and analysis with one-time tickets", seed.enroll)
        await step("Start the bank and analysis nodes", seed.start_members)
        await step("Bank: a relay at the project and an outlet to its service", seed.bank_setup)
        await step("Analysis: an inlet via the relay", seed.analysis_setup)
        await step("Through the portal", seed.traffic)
        await step("A stranger is denied", seed.stranger)
        await step("Three secure channels, read back from the nodes", seed.channels)
        await step("Policy decisions", seed.decisions)
        await step("Only ciphertext at the project node's transport", seed.ciphertext)
        await step("Stop and delete the nodes", seed.stop)
    finally:
        seed.cleanup()
        await svc.close()
        await storage.close()
    report.total_ms = (time.perf_counter() - started) * 1000
    return report


# -- part one: identities and credentials, in this process --------------------------------------

async def _credentials_story(step: Any, svc: Any, storage: Any) -> None:
    from policies import Environment, Policy

    ids = svc.identities
    now = int(time.time())
    state: dict[str, Any] = {}

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


# -- part two: the seed scenario with node processes ---------------------------------------------

def _short(identifier: str) -> str:
    return identifier[:13] + "…"


class _Seed:
    """The node part of the demo. Blocking work (starting node processes, control requests)
    runs in ``pool`` so this process's event loop stays free."""

    def __init__(self, home: Path, pool: concurrent.futures.ThreadPoolExecutor,
                 postgres: PostgresOption | None) -> None:
        self.home = home
        self.pool = pool
        self.postgres = postgres
        self.ids: dict[str, str] = {}
        self.tap: Any = None
        self.service: Any = None
        self.local_pg: Any = None
        self.target = ""
        self.marker = f"bank-corp-secret-{secrets.token_hex(8)}"
        self.authority_route = ""
        self.tickets: dict[str, Any] = {}
        self.credentials: dict[str, Any] = {}
        self.authority: Any = None
        self.inlet_address = ""
        self.shown: dict[str, dict[str, Any]] = {}
        self.stopped = False
        self.service_start: Awaitable[str | Exception] | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def request(self, node: str, method: str, params: dict[str, Any] | None = None, *,
                timeout: float = 30.0) -> dict[str, Any]:
        from trust.node.control_client import ControlClient

        return ControlClient.for_node(node, self.home).request(method, params, timeout=timeout)

    # -- the project node ------------------------------------------------------------------------
    def start_project(self, admin: str) -> dict[str, Any]:
        from trust.demo_services import Wiretap
        from trust.node.authority_feature import AuthorityOptions
        from trust.node.files import NodePaths, write_json
        from trust.node.launcher import node_config, start_node

        paths = NodePaths("project", self.home)
        config = node_config("project")
        config["authority"] = AuthorityOptions(admins=(admin,)).to_record()
        paths.create_dir()
        write_json(paths.config, config)
        state = start_node("project", home=self.home)
        port = int(state["listeners"][0].rpartition(":")[2])
        self.tap = Wiretap(port)
        return state

    async def project_started(self, started: Awaitable[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        from trust.enrollment.ticket import authority_route_text

        state = await started
        self.ids["project"] = state["identifier"]
        self.authority_route = authority_route_text(f"127.0.0.1:{self.tap.port}")
        return (f"project {_short(state['identifier'])} (pid {state['pid']}) listens on "
                f"{state['listeners'][0]}; bank and analysis reach it through a wiretap on "
                f"127.0.0.1:{self.tap.port} that keeps every byte",
                {"project": {"identifier": state["identifier"], "pid": state["pid"],
                             "listener": state["listeners"][0]},
                 "wiretap": f"127.0.0.1:{self.tap.port}",
                 "authority_route": self.authority_route})

    # -- enrollment ------------------------------------------------------------------------------
    async def enroll(self) -> tuple[str, dict[str, Any]]:
        from trust.enrollment.client import AuthorityClient
        from trust.enrollment.ticket import EnrollmentTicket
        from trust.node import Node
        from trust.node.enrollment_feature import enroll_identity
        from trust.node.resolve import route_from_text
        from trust.services import open_identities

        wanted = {"bank": {"role": "bank", "ockam-relay": "bank"}, "analysis": {"role": "analyst"}}
        references: dict[str, str] = {}
        async with open_identities(self.home) as manager, Node("demo-admin") as node:
            admin = await manager.get(ADMIN)
            client = await AuthorityClient.connect(node, admin, route_from_text(
                self.authority_route), self.ids["project"], identities=manager)
            async with client:
                self.authority = client.channel.peer.identity
                for name, attrs in wanted.items():
                    code = await client.create_ticket(attrs, ttl=600, usage_count=1)
                    references[name] = code.reference or ""
                    self.tickets[name] = EnrollmentTicket.for_authority(
                        code, self.authority_route, self.authority, "project")
        enrolled = await asyncio.gather(*(
            enroll_identity(self.tickets[name], name, home=self.home, create=True)
            for name in wanted))
        async with open_identities(self.home) as manager:
            for name, credential in zip(wanted, enrolled, strict=True):
                self.credentials[name] = credential
                self.ids[name] = (await manager.get(name)).identifier
        # a ticket works once: redeeming it again is refused
        try:
            await enroll_identity(self.tickets["analysis"], "analysis", home=self.home)
        except TrustError as e:
            reused = str(e).replace(references["analysis"], "REF")
        else:
            raise DemoFailed("a one-time ticket was redeemed twice")
        size = len(self.tickets["bank"].encode())
        return (f"the admin made two tickets ({size} hex characters each); bank "
                f"{_short(self.ids['bank'])} got role=bank, ockam-relay=bank; analysis "
                f"{_short(self.ids['analysis'])} got role=analyst; redeeming analysis's ticket "
                f"again was refused ({reused})",
                {"members": {n: {"identifier": self.ids[n], "attributes": wanted[n],
                                 "ticket": references[n]} for n in wanted},
                 "ticket_reuse_refused": reused})

    def _create_member(self, name: str) -> dict[str, Any]:
        from trust.node.launcher import create_node

        return create_node(name, home=self.home, authorities=[self.authority.export_hex()],
                           credential=self.credentials[name].encode().hex(),
                           extra={"authority_route": self.authority_route,
                                  "revocation_refresh": 30.0, "credential_refresh": True})

    async def start_members(self) -> tuple[str, dict[str, Any]]:
        states = await asyncio.gather(*(self.call(self._create_member, n)
                                        for n in ("bank", "analysis")))
        pids = {n: s["pid"] for n, s in zip(("bank", "analysis"), states, strict=True)}
        return (f"bank (pid {pids['bank']}) and analysis (pid {pids['analysis']}) run with "
                "their credentials from the project and pull its revocation list",
                {"pids": pids})

    # -- portal ----------------------------------------------------------------------------------
    def start_service_quietly(self) -> str | Exception:
        """:meth:`start_service`, its error returned (raised when the bank step needs it)."""
        try:
            return self.start_service()
        except Exception as e:
            return e

    def start_service(self) -> str:
        """Start Bank Corp's service (or check the PostgreSQL URL); its ``HOST:PORT``."""
        from trust.demo_services import BankService, LocalPostgres

        if self.postgres is None:
            self.service = BankService(self.marker)
            return f"127.0.0.1:{self.service.port}"
        if self.postgres.url is None:
            self.local_pg = LocalPostgres()
            return f"127.0.0.1:{self.local_pg.port}"
        return postgres_target(self.postgres.url)

    def _bank_setup(self) -> tuple[dict[str, Any], dict[str, Any]]:
        relay = self.request("bank", "relay.create", {
            "name": "bank", "at": f"/ip4/127.0.0.1/tcp/{self.tap.port}", "timeout": 15})
        outlet = self.request("bank", "tcp_outlet.create",
                              {"to": self.target, "from": "outlet", "allow": OUTLET_POLICY})
        return relay, outlet

    async def bank_setup(self) -> tuple[str, dict[str, Any]]:
        assert self.service_start is not None
        target = await self.service_start
        if isinstance(target, Exception):
            raise target
        self.target = target
        relay, outlet = await self.call(self._bank_setup)
        what = "PostgreSQL" if self.postgres is not None else "its HTTP service"
        return (f"bank registered relay 'bank' at the project ({relay['route']}), through its "
                f"own channel, and opened outlet 'outlet' to {what} at {self.target}, allowed "
                f"for {OUTLET_POLICY}",
                {"relay": relay, "outlet": {"target": self.target, "policy": outlet["policy"]},
                 "local_postgres": None if self.local_pg is None else str(self.local_pg.root)})

    async def analysis_setup(self) -> tuple[str, dict[str, Any]]:
        inlet = await self.call(lambda: self.request(
            "analysis", "tcp_inlet.create", {"via": "bank", "authorized": [self.ids["bank"]]}))
        self.inlet_address = inlet["address"]
        return (f"inlet on {inlet['address']} → {inlet['route']} (the last channel accepts "
                f"only bank {_short(self.ids['bank'])})",
                {"inlet": {"address": inlet["address"], "route": inlet["route"]}})

    async def traffic(self) -> tuple[str, dict[str, Any]]:
        if self.postgres is None:
            first, got = await self.call(_http_get, self.inlet_address)
            second, _ = await self.call(_http_get, self.inlet_address)
            if self.marker not in got:
                raise DemoFailed(f"the answer through the portal lacks the marker: {got[:200]!r}")
            what = f"GET / answered 200 with Bank Corp's ledger ({len(got)} characters)"
        else:
            url = self.postgres.url or f"postgresql://postgres@{self.target}/postgres"
            first, got = await self.call(_pg_query, url, self.inlet_address, self.marker)
            second, _ = await self.call(_pg_query, url, self.inlet_address, self.marker)
            client, _, got = got.partition(": ")
            what = f"{client} got PostgreSQL's answer through the portal: {got}"
        deadline = time.monotonic() + 5
        while True:  # (the client's last bytes, e.g. PostgreSQL's Terminate, may be in flight)
            for name in NODES:
                self.shown[name] = await self.call(self.request, name, "node.show")
            inlet = self.shown["analysis"]["inlets"][0]
            outlet = self.shown["bank"]["outlets"][0]
            if (inlet["bytes_in"], inlet["bytes_out"]) == (outlet["bytes_out"],
                                                           outlet["bytes_in"]):
                break
            if time.monotonic() > deadline:
                raise DemoFailed(f"the portal lost bytes: inlet {inlet}, outlet {outlet}")
            await asyncio.sleep(0.05)
        return (f"{what}; first connection {first * 1000:.0f} ms (opens two channels), "
                f"second {second * 1000:.0f} ms; {inlet['connections']} connections, "
                f"{inlet['bytes_in']} bytes client→service and {inlet['bytes_out']} back",
                {"first_ms": round(first * 1000, 1), "second_ms": round(second * 1000, 1),
                 "connections": inlet["connections"],
                 "bytes": {"client_to_service": inlet["bytes_in"],
                           "service_to_client": inlet["bytes_out"]}})

    async def stranger(self) -> tuple[str, dict[str, Any]]:
        """A fresh identity that is no member (no credential from the project) reaches bank's
        outlet the same way, from a node in this process: bank's outlet denies its connection
        (its Ping), the client's TCP connection is closed at once, bank's log says why."""
        from trust.channels.trust_policies import TrustIdentifier
        from trust.node import Node
        from trust.portals import create_inlet
        from trust.routing import Address, Route
        from trust.services import open_identities

        async with open_identities(self.home) as manager, Node("stranger") as node:
            me = await manager.get_or_create("stranger")
            self.ids["stranger"] = me.identifier
            outer = await node.create_secure_channel(
                me, Route([Address.tcp(f"127.0.0.1:{self.tap.port}"), "api"]),
                identities=manager, timeout=10)
            inner = await node.create_secure_channel(
                me, outer.route / "forward_to_bank" / "api",
                trust=TrustIdentifier(self.ids["bank"]), identities=manager, timeout=10)
            inlet = await create_inlet(node, "127.0.0.1:0", inner.route / "outlet")
            try:
                t = time.perf_counter()
                got = await self.call(_closed_at_once, f"127.0.0.1:{inlet.port}")
                closed_ms = (time.perf_counter() - t) * 1000
            finally:
                await inlet.stop()
                await inner.close()
                await outer.close()
            if got:
                raise DemoFailed(f"the stranger got an answer through the portal: {got[:80]!r}")
        outlet: dict[str, Any] = {}
        reason = ""
        for _ in range(100):
            outlet = (await self.call(self.request, "bank", "tcp_outlet.show",
                                      {"name": "outlet"}))
            reason = _log_line(self.home, "bank", "outlet outlet: connection for "
                               f"{me.identifier} refused")
            if outlet["denied"] and reason:
                break
            await asyncio.sleep(0.05)
        else:
            raise DemoFailed(f"bank's outlet did not deny the stranger: {outlet}")
        return (f"stranger {_short(me.identifier)} (no credential from the project) opened "
                f"channels to the project and, through relay 'bank', to bank, but bank's outlet "
                f"denied its connection, closed after {closed_ms:.0f} ms; bank's log: "
                f"{reason.split(' refused: ', 1)[-1]}",
                {"stranger": me.identifier, "closed_ms": round(closed_ms, 1),
                 "bank_log": reason})

    async def channels(self) -> tuple[str, dict[str, Any]]:
        """The scenario's three channels, each end read back from its node: bank's relay
        channel is the one the project's hosted relay forwards into; analysis's channel to the
        project is the first hop of its channel to bank; the two ends of a channel pair up by
        the initiator's ``remote_route``, which ends at the responder's ``decryptor``."""
        ids, shown = self.ids, self.shown

        def at(node: str, **match: Any) -> dict[str, Any]:
            for ch in shown[node]["channels"]:
                if all(ch.get(k) == v for k, v in match.items()):
                    return dict(ch)
            raise DemoFailed(f"node {node} shows no channel with {match}")

        def responder_of(initiator: dict[str, Any], node: str) -> dict[str, Any]:
            return at(node, decryptor=initiator["remote_route"].split()[-1].removeprefix("0#"),
                      initiator=False)

        def initiator_of(responder: dict[str, Any], node: str) -> dict[str, Any]:
            last = responder["remote_route"].split()[-1].removeprefix("0#")
            return at(node, decryptor=last, initiator=True)

        hosted = shown["project"]["hosted_relays"]
        if len(hosted) != 1:
            raise DemoFailed(f"the project hosts {len(hosted)} relays")
        project_side = at("project", address=hosted[0]["forward_route"].split()[0]
                          .removeprefix("0#"), initiator=False)
        inner = at("analysis", peer=ids["bank"], initiator=True)
        outer = at("analysis", address=inner["remote_route"].split()[0].removeprefix("0#"))
        found = {
            "bank→project": (initiator_of(project_side, "bank"), project_side),
            "analysis→project": (outer, responder_of(outer, "project")),
            "analysis→bank": (inner, responder_of(inner, "bank")),
        }
        expected = {"bank→project": ("bank", "project"), "analysis→project": ("analysis", "project"),
                    "analysis→bank": ("analysis", "bank")}
        for label, (a, b) in found.items():
            i, r = expected[label]
            if a["peer"] != ids[r] or b["peer"] != ids[i]:
                raise DemoFailed(f"channel {label} joins the wrong identities")
        if outer["records_sent"] < inner["records_sent"]:
            raise DemoFailed("the channel to bank did not travel inside the one to the project")
        lines = []
        for label, (a, b) in found.items():
            i, r = expected[label]
            lines.append(f"{label} ({i} {a['address'][:8]}… ⇄ {r} {b['address'][:8]}…, "
                         f"{a['records_sent']}/{b['records_sent']} records)")
        return ("; ".join(lines) + "; analysis→bank runs inside the other two",
                {"channels": {label: {"initiator": a, "responder": b}
                              for label, (a, b) in found.items()},
                 "counts": {n: len(shown[n]["channels"]) for n in NODES}})

    async def decisions(self) -> tuple[str, dict[str, Any]]:
        for name in NODES:  # again: the stranger came since
            self.shown[name] = await self.call(self.request, name, "node.show")
        outlet = self.shown["bank"]["outlets"][0]
        inlet = self.shown["analysis"]["inlets"][0]
        hosted = self.shown["project"]["hosted_relays"]

        def decide(**subject: Any) -> dict[str, Any]:
            return self.request("bank", "policy.decide",
                                {"resource": "outlet", "resource_type": "tcp-outlet", **subject})

        analyst = await self.call(lambda: decide(identifier=self.ids["analysis"],
                                                 attributes={"role": "analyst"}))
        stranger = await self.call(lambda: decide(identifier=self.ids["stranger"],
                                                  has_credential=False))
        if not analyst["allowed"] or stranger["allowed"]:
            raise DemoFailed(f"unexpected decisions: {analyst}, {stranger}")
        if outlet["denied"] != 1 or inlet["denied"]:
            raise DemoFailed(f"unexpected denials: outlet {outlet}, inlet {inlet}")
        if not hosted or hosted[0]["owner"] != self.ids["bank"]:
            raise DemoFailed(f"the project does not host relay bank for bank: {hosted}")
        checks = {n: self.shown[n].get("policy_checks", {}) for n in NODES}
        allowed = outlet["connections"]  # (connections counts those set up)
        return (f"bank's outlet ({OUTLET_POLICY}) allowed {allowed} connections from analysis "
                f"(role=analyst) and denied 1, the stranger's ({stranger['reason']}); the "
                f"project let bank take relay 'bank' (ockam-relay=bank); policy checks "
                "allowed/denied: "
                + ", ".join(f"{n} {c.get('allowed', 0)}/{c.get('denied', 0)}"
                            for n, c in checks.items()),
                {"outlet": {"allowed": allowed, "denied": outlet["denied"]},
                 "analyst": analyst, "stranger": stranger, "policy_checks": checks})

    async def ciphertext(self) -> tuple[str, dict[str, Any]]:
        captured = self.tap.snapshot()
        inlet = self.shown["analysis"]["inlets"][0]
        moved = inlet["bytes_in"] + inlet["bytes_out"]
        if len(captured) < moved:
            raise DemoFailed(f"the wiretap saw {len(captured)} bytes, fewer than the portal "
                             f"moved ({moved}): the traffic did not pass the project")
        needles = [self.marker, "Bank Corp", "GET / HTTP", "HTTP/1.", "balance"] \
            if self.postgres is None else [self.marker, "SELECT", "postgres"]
        leaked = [n for n in needles if n.encode() in captured]
        if leaked:
            raise DemoFailed(f"plaintext {leaked} crossed the project node's transport")
        return (f"{self.tap.total} bytes in {self.tap.connections} TCP connections crossed the "
                f"project's listener; none of {needles} is in them (the portal moved {moved} "
                "bytes of plaintext end to end)",
                {"captured_bytes": self.tap.total, "tcp_connections": self.tap.connections,
                 "searched": needles, "found": leaked})

    async def stop(self) -> tuple[str, dict[str, Any]]:
        await self.call(self._stop_nodes)
        return "project, bank and analysis stopped and deleted", {}

    # -- cleanup ---------------------------------------------------------------------------------
    def _stop_nodes(self) -> None:
        from trust.node.files import list_node_names
        from trust.node.launcher import delete_node

        names = [n for n in list_node_names(self.home) if n in NODES]
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            for f in [pool.submit(delete_node, n, self.home) for n in names]:
                with contextlib.suppress(Exception):
                    f.result()
        _kill_leftovers(self.home)
        self.stopped = True

    def cleanup(self) -> None:
        """Stop everything the demo started (safe to call more than once, and after a failure
        or an interruption: node starts still in flight are waited for first)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if not self.stopped:
            self._stop_nodes()
        for thing in (self.tap, self.service, self.local_pg):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        self.tap = self.service = self.local_pg = None


def _kill_leftovers(home: Path) -> None:
    """A demo node that did not stop when asked: killed by its pid, and its directory removed."""
    import os
    import signal

    from trust.node.files import NodePaths, pid_alive

    for name in NODES:
        paths = NodePaths(name, home)
        if not paths.dir.is_dir():
            continue
        with contextlib.suppress(OSError, ValueError, TrustError):
            pid = paths.read_pid()
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            paths.remove()


def _closed_at_once(address: str) -> bytes:
    """Connect, send a request, and read until the connection is closed (within 10 s)."""
    import socket

    host, _, port = address.rpartition(":")
    got = b""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        with contextlib.suppress(OSError):
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            while chunk := s.recv(65536):
                got += chunk
    return got


def _log_line(home: Path, node: str, needle: str) -> str:
    """The last line of ``node``'s log that contains ``needle`` ('' when none does)."""
    from trust.node.files import NodePaths

    try:
        text = NodePaths(node, home).log.read_text(errors="replace")[-1_000_000:]
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if needle in ln]
    return lines[-1].strip() if lines else ""


def _http_get(address: str) -> tuple[float, str]:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # (no http_proxy)
    t = time.perf_counter()
    with opener.open(f"http://{address}/", timeout=15) as r:
        body = r.read().decode()
        if r.status != 200:
            raise DemoFailed(f"GET through the portal answered {r.status}")
    return time.perf_counter() - t, body


def postgres_target(url: str) -> str:
    """``HOST:PORT`` of a ``--postgres-url`` (a :class:`UsageError` when it is not one)."""
    from urllib.parse import urlsplit

    from trust.errors import UsageError

    usage = "--postgres-url must be postgresql://USER[:PASSWORD]@HOST:PORT/DB"
    if len(url) > 2048 or not url.isascii() or not url.isprintable():
        raise UsageError(usage)
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        raise UsageError(usage) from None
    host = parts.hostname
    if parts.scheme not in ("postgresql", "postgres") or not host:
        raise UsageError(usage)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _pg_query(url: str, inlet: str, marker: str) -> tuple[float, str]:
    """One connection to the server through the inlet: ``SELECT marker``; psycopg if installed,
    else ``psql``. The answer is ``"CLIENT: row"``."""
    import subprocess
    from urllib.parse import urlsplit, urlunsplit

    from trust.demo_services import postgres_binary

    host, _, port = inlet.rpartition(":")
    parts = urlsplit(url)
    user = f"{parts.username}{':' + parts.password if parts.password else ''}@" \
        if parts.username else ""
    through = urlunsplit((parts.scheme, f"{user}{host}:{port}", parts.path or "/postgres",
                          parts.query, ""))
    sql = f"SELECT '{marker}' AS marker, current_user"
    t = time.perf_counter()
    try:
        import psycopg
    except ImportError:
        psql = postgres_binary("psql")
        if psql is None:
            raise DemoFailed("--postgres needs psycopg (pip install 'truststack[postgres]') "
                             "or psql") from None
        p = subprocess.run([psql, "-X", "-A", "-t", "-F", ",", "-d", through, "-c", sql],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise DemoFailed(f"psql through the portal failed: {p.stderr.strip()[-300:]}")
        answer = "psql: " + p.stdout.strip()
    else:
        try:
            with psycopg.connect(through, connect_timeout=15) as conn:
                row = conn.execute(sql).fetchone()
        except psycopg.Error as e:
            raise DemoFailed(f"PostgreSQL through the portal failed: {str(e).strip()[-300:]}") \
                from None
        answer = "psycopg: " + ",".join(str(v) for v in row or ())
    if marker not in answer:
        raise DemoFailed(f"PostgreSQL's answer through the portal lacks the marker: {answer!r}")
    return time.perf_counter() - t, answer
