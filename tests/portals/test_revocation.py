"""Revocation on portals: when a node's revocation list (``NodeAccess.revoked``) is replaced,
its inlets' and outlets' open connections whose channel peer the list revokes are closed at
once, and that peer's new connections are refused (Ping at the outlet, Pong at the inlet);
a peer with a credential created after its revocation is not cut. Two nodes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.node.helpers import arun
from tests.portals.helpers import Pair, echo_server, parties, portal_pair
from trust.channels.access import NodeAccess
from trust.node import Node
from trust.portals.policy import (
    INLET_TYPE,
    OUTLET_TYPE,
    close_revoked,
    enforce_revocations,
    resource_authorizer,
)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the connection ends (EOF or reset) within ``seconds``, whatever it still read."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _echoes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  data: bytes) -> None:
    writer.write(data)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(len(data)), 5) == data


@asynccontextmanager
async def _guarded(side: str) -> AsyncIterator[tuple[Pair, NodeAccess, Callable[[], None]]]:
    """A portal pair whose ``side`` node (``inlet``: a; ``outlet``: b) decides with a
    NodeAccess (its authority: the parties') and enforces its revocations on that portal."""
    p = await parties()
    access = NodeAccess(side, authorities=[p.authority.identifier])
    outlet_authorize = inlet_authorize = None
    if side == "outlet":
        outlet_authorize = resource_authorizer(access, "outlet", OUTLET_TYPE)
    else:
        inlet_authorize = resource_authorizer(access, "web", INLET_TYPE)
    async with echo_server() as port, portal_pair(f"127.0.0.1:{port}",
                                                  inlet_authorize=inlet_authorize,
                                                  outlet_authorize=outlet_authorize) as pair:
        portal = pair.outlet if side == "outlet" else pair.inlet
        unwatch = enforce_revocations(access, lambda: [portal])
        try:
            yield pair, access, unwatch
        finally:
            unwatch()


@pytest.mark.parametrize("side", ["outlet", "inlet"])
def test_revoking_the_peer_closes_its_open_portal_connections_and_refuses_new_ones(
        side: str, caplog: pytest.LogCaptureFixture) -> None:
    ids: list[str] = []

    async def main() -> None:
        p = await parties()
        revoked_id = p.inlet_id if side == "outlet" else p.outlet_id
        ids.append(revoked_id)
        async with _guarded(side) as (pair, access, _):
            portal = pair.outlet if side == "outlet" else pair.inlet
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            try:
                await _echoes(reader, writer, b"x" * 100_000)  # bytes flow
                assert portal.stats.active == 1 and access.allowed == 1
                # bytes keep flowing while the list changes
                writer.write(b"y" * 200_000)
                start = time.monotonic()
                access.revoked = {revoked_id: int(time.time())}
                assert await _closed_within(reader, 2)
                assert time.monotonic() - start < 2
            finally:
                writer.close()
            assert portal.stats.denied == 1
            await asyncio.sleep(0.1)
            assert pair.outlet.stats.active == 0 and pair.inlet.stats.active == 0
            out_before = pair.outlet.stats.bytes_out
            # a new connection through the same inlet (its channel still open) is refused
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            try:
                writer.write(b"hello")
                assert await _closed_within(reader, 2)
            finally:
                writer.close()
            assert portal.stats.denied == 2
            assert access.revoked_dropped == 1 and access.denied == 1
            assert pair.outlet.stats.bytes_out == out_before  # nothing reached the target

    with caplog.at_level(logging.INFO, logger="trust.portals"):
        arun(main(), timeout=30)
    reason = f"the peer is denied: {ids[0]} is revoked by its authority"
    assert caplog.text.count(reason) >= 2, caplog.text  # the cut, then the refusal


def test_a_peer_with_a_credential_created_after_its_revocation_is_not_cut() -> None:
    async def main() -> None:
        p = await parties()
        async with _guarded("outlet") as (pair, access, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            try:
                await _echoes(reader, writer, b"before")
                # revoked an hour ago; its credential was issued a minute ago (it enrolled again)
                access.revoked = {p.inlet_id: int(time.time()) - 3600}
                await asyncio.sleep(0.2)
                await _echoes(reader, writer, b"after")
            finally:
                writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
            try:
                await _echoes(reader, writer, b"new")
            finally:
                writer.close()
            assert pair.outlet.stats.denied == 0 and access.revoked_dropped == 0
            # others' revocations cut nobody either
            access.revoked = {p.stranger_id: int(time.time())}
            assert close_revoked(access, [pair.outlet, pair.inlet]) == 0

    arun(main(), timeout=30)


def test_a_ping_allowed_before_the_revocation_is_refused_once_the_target_is_connected() -> None:
    """The outlet connects to its target after the Ping was allowed: a list that changed
    meanwhile is honoured then (the connection was not open yet when it was replaced)."""
    async def main() -> None:
        p = await parties()
        async with _guarded("outlet") as (pair, access, _):
            outlet = pair.outlet
            gate = asyncio.Event()
            loop: Any = asyncio.get_running_loop()
            connect = loop.create_connection

            async def slow_connect(factory: Any, host: Any = None, port: Any = None,
                                   **kw: Any) -> Any:
                if port == outlet.port:  # (the outlet's connection to its target)
                    await gate.wait()
                return await connect(factory, host, port, **kw)

            loop.create_connection = slow_connect
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", pair.port)
                try:
                    while access.allowed < 1:  # the Ping was allowed; the target connects
                        await asyncio.sleep(0.01)
                    access.revoked = {p.inlet_id: int(time.time())}
                    gate.set()
                    assert await _closed_within(reader, 2)
                finally:
                    writer.close()
            finally:
                del loop.create_connection
            assert outlet.stats.denied == 1 and outlet.stats.active == 0

    arun(main(), timeout=30)


def test_revocation_listeners_are_told_each_list_and_can_be_removed() -> None:
    access = NodeAccess("n")
    seen: list[dict[str, int]] = []

    def boom(revoked: object) -> None:
        raise RuntimeError("a broken listener")

    access.on_revocation(boom)  # does not keep the list from the others
    remove = access.on_revocation(lambda r: seen.append(dict(r)))
    access.revoked = {"I" + "a" * 64: 1}
    assert seen == [{"I" + "a" * 64: 1}] and access.revoked == {"I" + "a" * 64: 1}
    remove()
    remove()  # (idempotent)
    access.revoked = {}
    assert len(seen) == 1 and access.revoked == {}


def test_a_credential_refreshed_on_the_channel_counts_even_before_the_next_message() -> None:
    """The peer enrolled again and presented its new credential on the open channel
    (RefreshCredentials), then sent nothing more through the portal: the list revoking its
    identifier before that credential was created cuts nothing; with only its old credential,
    the same list cuts the connection."""
    from tests.enrollment_client.helpers import authority, party
    from trust.portals import create_inlet, create_outlet
    from trust.routing import Address, Route
    from vaults.software import SoftwareVault

    async def main() -> None:
        vault = SoftwareVault()
        alice, bob, auth = await party(vault), await party(vault), await authority(vault)
        now = int(time.time())
        old = await auth.issue(alice.identity, {"role": "web"}, now=now - 100)
        new = await auth.issue(alice.identity, {"role": "web"}, now=now - 5)
        access = NodeAccess("b", authorities=[auth.identifier])
        async with echo_server() as port, _two_nodes() as (a, b):
            await b.create_secure_channel_listener(bob.channel, authorities=[auth.identity])
            tcp = await b.create_tcp_listener("127.0.0.1:0", consumers=["api", "outlet"])
            outlet = await create_outlet(b, f"127.0.0.1:{port}", authorize=resource_authorizer(
                access, "outlet", OUTLET_TYPE))
            unwatch = enforce_revocations(access, lambda: [outlet])
            try:
                channels = []
                for _ in range(2):
                    channels.append(await a.create_secure_channel(
                        alice.channel, Route([Address.tcp(tcp.address), "api"]),
                        credentials=[old], authorities=[auth.identity], timeout=5))
                inlets = [await create_inlet(a, "127.0.0.1:0", ch.route / "outlet")
                          for ch in channels]
                clients = [await asyncio.open_connection("127.0.0.1", i.port) for i in inlets]
                try:
                    for reader, writer in clients:
                        await _echoes(reader, writer, b"before")
                    # the first channel presents the new credential; nothing else is sent on it
                    await channels[0].refresh_credentials([new])
                    assert len(b.secure_channels()) == 2
                    for _ in range(200):
                        if any(len(ch.peer.credentials) == 1 and ch.peer.credentials[0]
                               .created_at == now - 5 for ch in b.secure_channels()):
                            break
                        await asyncio.sleep(0.01)
                    else:
                        raise AssertionError("the refresh did not reach b")
                    access.revoked = {alice.identifier: now - 30}
                    (r0, w0), (r1, _) = clients
                    assert await _closed_within(r1, 2)  # the old credential only: cut
                    await _echoes(r0, w0, b"after")      # enrolled again: kept
                    assert outlet.stats.denied == 1
                finally:
                    for _, writer in clients:
                        writer.close()
                    for inlet in inlets:
                        await inlet.stop()
            finally:
                unwatch()

    arun(main(), timeout=30)


@asynccontextmanager
async def _two_nodes() -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node("a"), Node("b")
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()
