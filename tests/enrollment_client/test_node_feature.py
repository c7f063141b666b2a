"""The enrollment feature of a node process, in process (NodeRuntime) against an in-process
authority over TCP on 127.0.0.1: a node enrolled with a ticket presents its credential and
refreshes it before expiry on its open channels; a relying node pulls the revocation list, drops
a deleted member's messages on open channels, refuses its new channels, keeps the list across a
restart and keeps enforcing it when the authority is gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.enrollment_client.helpers import Authority, Party, authority, party, run, until
from trust.channels.peer import VerifiedPeer
from trust.channels.workers import SecureChannel
from trust.enrollment import (
    AuthorityClient,
    AuthorityOptions,
    AuthoritySigner,
    EnrollmentTicket,
    MemoryAuthorityRepository,
    start_authority,
)
from trust.errors import TrustError
from trust.node import Node, enrollment_feature
from trust.node import daemon as daemon_module
from trust.node.daemon import NodeRuntime
from trust.node.enrollment_feature import REVOCATION_FILE, EnrollmentState, enroll_identity
from trust.node.errors import ReceiveTimeoutError
from trust.node.files import NodePaths, write_json
from trust.node.launcher import node_config
from trust.routing import Address, Route
from vaults.software import SoftwareVault


@pytest.fixture(autouse=True)
def only_this_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "NODE_FEATURES", ["trust.node.enrollment_feature"])


@dataclass
class World:
    authority: Authority
    admin: Party
    node: Node
    route: Route
    route_text: str
    repository: MemoryAuthorityRepository

    async def ticket(self, attributes: dict[str, str]) -> EnrollmentTicket:
        client = await AuthorityClient.connect(self.node, self.admin.channel, self.route,
                                               self.authority.identity, timeout=5)
        async with client:
            code = await client.create_ticket(attributes)
        return EnrollmentTicket.for_authority(code, self.route_text, self.authority.identity,
                                              "auth")

    async def delete(self, identifier: str) -> None:
        client = await AuthorityClient.connect(self.node, self.admin.channel, self.route,
                                               self.authority.identity, timeout=5)
        async with client:
            await client.delete_member(identifier)


@asynccontextmanager
async def an_authority(credential_ttl: int = 3600) -> AsyncIterator[World]:
    vault = SoftwareVault()
    auth, admin = await authority(vault), await party(vault)
    repository = MemoryAuthorityRepository()
    async with Node("authority") as node:
        await node.create_secure_channel_listener(auth.channel)
        tcp = await node.create_tcp_listener("127.0.0.1:0")
        signer = AuthoritySigner(auth.identity, vault, auth.signing_key, auth.signing_attestation)
        running = await start_authority(node, signer, repository, AuthorityOptions(
            admins=frozenset({admin.identifier}), credential_ttl=credential_ttl),
            housekeeping_interval=None)
        host, port = tcp.address.rsplit(":", 1)
        try:
            yield World(auth, admin, node, Route([Address.tcp(tcp.address), "api"]),
                        f"/ip4/{host}/tcp/{port}/service/api", repository)
        finally:
            await running.stop()


@asynccontextmanager
async def runtime(home: Path, name: str, config: dict[str, object]) -> AsyncIterator[NodeRuntime]:
    paths = NodePaths(name, home)
    if not paths.exists():
        paths.create_dir()
    write_json(paths.config, config)
    rt = NodeRuntime(paths, dict(config))
    try:
        await rt.start()
        yield rt
    finally:
        await rt.shutdown()


def feature(rt: NodeRuntime) -> EnrollmentState:
    state = rt.features[enrollment_feature.__name__]
    assert isinstance(state, EnrollmentState)
    return state


def test_relying_node_drops_and_refuses_a_deleted_member_and_keeps_its_list(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"

    async def main() -> None:
        async with an_authority() as world:
            auth = world.authority
            # the relying node trusts the authority and pulls its list every 0.2 s
            config = node_config("relying", authorities=[auth.identity.export_hex()],
                                 extra={"authority_route": world.route_text,
                                        "revocation_refresh": 0.2})
            # a member enrolled with a ticket (its attributes come from the ticket)
            vault = SoftwareVault()
            member = await party(vault)
            async with Node("member") as mn:
                client = await AuthorityClient.connect(mn, member.channel, world.route,
                                                       auth.identity, timeout=5)
                async with client:
                    credential = await client.enroll(await world.ticket({"role": "db"}))
                async with runtime(home, "relying", config) as rt:
                    state = feature(rt)
                    await until(lambda: state.poller.refreshes >= 1)
                    assert state.revocations.version >= 0 and rt.access.revoked == {}
                    tcp = await rt.node.create_tcp_listener("127.0.0.1:0") \
                        if not rt.node.tcp.listeners else rt.node.tcp.listeners[0]
                    route = Route([Address.tcp(tcp.address), "api"])
                    ident = member.channel
                    from trust.channels.handshake import ChannelIdentity
                    from trust.channels.messages import IdentityAndCredentials

                    with_cred = ChannelIdentity(ident.static, IdentityAndCredentials.of(
                        ident.payload.change_history_raw, ident.payload.purpose_key_attestation,
                        (credential,)))
                    ch = await mn.create_secure_channel(with_cred, route, timeout=5)
                    # the relying node's default: a credential from its authority
                    assert await mn.send_and_receive(ch.route / "echo", b"hi", timeout=5) == b"hi"

                    await world.delete(member.identifier)
                    t0 = time.monotonic()
                    await until(lambda: member.identifier in rt.access.revoked, timeout=3)
                    assert time.monotonic() - t0 < 2
                    # a listener created later is guarded from the next pull on (same list)
                    extra = await rt.node.create_secure_channel_listener(
                        (await party(vault)).channel, "extra")
                    pulls = state.poller.refreshes
                    await until(lambda: state.poller.refreshes > pulls)
                    assert state.poller.updates == 2
                    attestation = member.channel.payload.purpose_key_attestation
                    revoked_peer = VerifiedPeer(member.identity, member.channel.static.public,
                                                attestation.attestation_data)
                    assert not extra.authenticator.trust.allows(revoked_peer)
                    with caplog.at_level(logging.WARNING):
                        with pytest.raises(ReceiveTimeoutError):
                            await mn.send_and_receive(ch.route / "echo", b"x", timeout=0.5)
                        refused: SecureChannel | None = None
                        with contextlib.suppress(TrustError):
                            refused = await mn.create_secure_channel(with_cred, route, timeout=5)
                        [listener] = [lst for lst in rt.node.secure_channel_listeners()
                                      if lst.address.name == "api"]
                        await until(lambda: listener.stats.failed_handshakes >= 1)
                        if refused is not None:
                            with pytest.raises(TrustError):
                                await mn.send_and_receive(refused.route / "echo", b"x",
                                                          timeout=0.3)
                    text = caplog.text
                    assert f"dropped: {member.identifier} is revoked" in text
                    assert f"secure channel from {member.identifier} refused" in text
                    kept = (home / "nodes" / "relying" / REVOCATION_FILE).read_bytes()
                    assert member.identifier in state.show()["revocation"]["revoked"]
                    version = state.revocations.version

            # the authority is gone: a restart enforces the kept list at once, pulls fail and
            # are logged, the list stays enforced
        async with runtime(home, "relying", config) as rt:
            state = feature(rt)
            assert member.identifier in rt.access.revoked
            assert state.revocations.version == version
            assert state.revocations.raw == kept
            with caplog.at_level(logging.WARNING, logger="trust.enrollment.revocation"):
                await until(lambda: state.poller.failures >= 2, timeout=5)
            assert member.identifier in rt.access.revoked
            assert "revocation list refresh failed (still enforcing version" in caplog.text

    run(main, timeout=40)


def test_enrolled_node_presents_and_refreshes_its_credential(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def main() -> None:
        # credentials live 3 s: refreshed a second before expiry
        async with an_authority(credential_ttl=3) as world:
            auth = world.authority
            ticket = await world.ticket({"role": "web"})
            credential = await enroll_identity(ticket, "web", home=home, create=True)
            with pytest.raises(TrustError):    # a ticket is used once
                await enroll_identity(ticket, "web2", home=home, create=True)
            config = node_config("web", identity="web", authorities=[auth.identity.export_hex()],
                                 credential=credential.encode().hex(),
                                 extra={"authority_route": ticket.route_text,
                                        "revocation_refresh": 30, "credential_refresh": True})
            # a peer that trusts the authority sees the credential's attributes
            peer = await party(SoftwareVault())
            async with Node("peer") as pn:
                await pn.start_services()
                await pn.create_secure_channel_listener(peer.channel,
                                                        authorities=[auth.identity])
                tcp = await pn.create_tcp_listener("127.0.0.1:0")
                async with runtime(home, "web", config) as rt:
                    state = feature(rt)
                    assert rt.credential is not None and state.refresher is not None
                    first = state.refresher.verified
                    assert first is not None
                    ch = await rt.open_channel(Route([Address.tcp(tcp.address), "api"]),
                                               timeout=5)
                    await until(lambda: len(pn.secure_channels()) == 1)
                    [theirs] = pn.secure_channels()
                    assert theirs.peer.attributes.get("role") == "web"
                    before = theirs.peer.credentials[0].created_at
                    await until(lambda: state.refresher is not None
                                and state.refresher.refreshes >= 1, timeout=6)
                    # the open channel got the new one (RefreshCredentials) before the old expired
                    await until(lambda: theirs.peer.credentials[0].created_at > before, timeout=3)
                    assert theirs.peer.credentials[0].expires_at > first.expires_at
                    assert time.time() < first.expires_at + 1
                    assert not ch.closed and theirs.peer.attributes.get("role") == "web"
                    new_at = theirs.peer.credentials[0].created_at
                    # new channels present the new credential: opened by the node ...
                    await rt.open_channel(Route([Address.tcp(tcp.address), "api"]), timeout=5)
                    await until(lambda: len(pn.secure_channels()) == 2)
                    latest = next(c for c in pn.secure_channels() if c is not theirs)
                    assert latest.peer.credentials[0].created_at >= new_at
                    # ... and accepted by its listener
                    rt_tcp = rt.node.tcp.listeners[0].address
                    inbound = await pn.create_secure_channel(
                        peer.channel, Route([Address.tcp(rt_tcp), "api"]),
                        authorities=[auth.identity], timeout=5)
                    assert inbound.peer.credentials[0].created_at >= new_at
                    # recorded for `node start`, and shown
                    recorded = (home / "nodes" / "web" / "node.json").read_text()
                    assert rt.credential.encode().hex() in recorded
                    shown = state.show()["credential"]
                    assert shown["refreshes"] >= 1 and shown["issuer"] == auth.identifier

    run(main, timeout=40)


def test_a_route_without_an_authority_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    async def main() -> None:
        config = node_config("lonely", extra={"authority_route": "/ip4/127.0.0.1/tcp/9/service/api"})
        with pytest.raises(TrustError, match="no authority"):
            async with runtime(tmp_path / "home", "lonely", config):
                pass

    run(main)


def test_unknown_or_bad_extra_settings_are_refused() -> None:
    for extra in ({"revocation_refresh": 0}, {"revocation_refresh": "1s"},
                  {"credential_refresh": "yes"}, {"authority_route": 5}, {"bogus": 1},
                  {"name": "other"}):
        with pytest.raises(TrustError):
            node_config("n", extra=extra)  # type: ignore[arg-type]


def test_a_node_started_with_an_expired_credential_fetches_a_new_one(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def main() -> None:
        async with an_authority(credential_ttl=2) as world:
            ticket = await world.ticket({"role": "web"})
            credential = await enroll_identity(ticket, "late", home=home, create=True)
            config = node_config("late", identity="late",
                                 authorities=[world.authority.identity.export_hex()],
                                 credential=credential.encode().hex(),
                                 extra={"authority_route": ticket.route_text,
                                        "credential_refresh": True})
            await asyncio.sleep(3.1)  # the recorded credential has expired (`node start` later)
            async with runtime(home, "late", config) as rt:
                state = feature(rt)
                assert state.refresher is not None
                await until(lambda: rt.credential is not None, timeout=5)  # fetched at start
                assert state.refresher.valid() and rt.credential != credential
                recorded = (home / "nodes" / "late" / "node.json").read_text()
                assert rt.credential.encode().hex() in recorded

    run(main)
