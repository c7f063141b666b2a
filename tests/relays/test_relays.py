"""Relays on in-process nodes over TCP on 127.0.0.1: routing through a relay with an end-to-end
channel inside, no hijacking, same-identity re-registration, ockam-relay authorization, hostile
registrations, limits, and the client's recovery when the relay node restarts."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.channels.node_helpers import RecordingProxy
from tests.node.helpers import arun
from tests.relays.helpers import channel_to, client_node, eventually, parties, relay_node
from trust.errors import (
    DecodeError,
    NotFoundError,
    RemoteProtocolError,
    UntrustedError,
    UsageError,
)
from trust.node import Node
from trust.relays import RelayClient, encode_registration
from trust.relays.client import encode_ping
from trust.relays.messages import decode_notification, decode_registration
from trust.routing import Address, LocalMessage, Route
from trust.routing.bare import encode_string


def relay_workers(node: Node) -> list[str]:
    return [a.name for a in node.workers() if a.name.startswith("forward_to_")]


SECRET = b"bank-statement: account 42 holds 1,000,000"


def test_messages_through_a_relay_carry_only_ciphertext_past_the_relay_node() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay) as r, RecordingProxy(r.address) as proxy, \
                client_node("bank", p.bank) as bank, client_node("analysis", p.analysis) as an:
            # every byte the relay node's transport carries goes through the proxy
            client = RelayClient(bank, "bank", channel_to(bank, p.bank, proxy.address))
            await client.start(wait=5)
            assert client.remote_address == "forward_to_bank" and client.state == "registered"
            assert client.peer == p.identifier(p.relay)
            [hosted] = r.service.relays()
            assert (hosted.name, hosted.owner) == ("bank", p.identifier(p.bank))
            # analysis opens a channel to bank's api through the relay: bank is never dialled
            inner = await an.create_secure_channel(
                p.analysis, Route([Address.tcp(proxy.address), "forward_to_bank", "api"]),
                timeout=5)
            assert inner.peer.identifier == p.identifier(p.bank)
            for _ in range(3):
                assert await an.send_and_receive(inner.route / "echo", SECRET, timeout=5) == SECRET
            assert SECRET not in proxy.seen()
            assert hosted.messages >= 1
            # the capture works: a message sent through the relay without the inner channel
            # is seen in the clear
            marker = b"plaintext-marker-through-the-relay"
            plain = Route([Address.tcp(proxy.address), "forward_to_bank", "echo"])
            assert await an.send_and_receive(plain, marker, timeout=5) == marker
            assert marker in proxy.seen()
            # the same through a channel to the relay node first (a portal's --via route)
            outer = await an.create_secure_channel(
                p.analysis, Route([Address.tcp(proxy.address), "api"]), timeout=5)
            inner2 = await an.create_secure_channel(
                p.analysis, outer.route / "forward_to_bank" / "api", timeout=5)
            assert await an.send_and_receive(inner2.route / "echo", SECRET, timeout=5) == SECRET
            assert SECRET not in proxy.seen()
            await client.stop()
            assert client.state == "stopped" and not bank.has_address(client.main_remote)

    arun(main(), timeout=30)


def test_a_registration_whose_connection_dropped_is_not_live() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay) as r, client_node("bank", p.bank) as bank, \
                client_node("mallory", p.mallory) as mallory:
            async with RecordingProxy(r.address) as proxy:
                client = RelayClient(bank, "bank", channel_to(bank, p.bank, proxy.address))
                await client.start(wait=5)
                relay = r.service.relay("bank")
                assert r.service.is_live(relay)
            # the proxy is gone: bank's TCP connection dropped without a Close (as when its
            # node is killed); the relay node still has the channel, but not its connection
            await eventually(lambda: not r.service.is_live(relay))
            assert r.node.has_address(relay.forward_route.addresses[0])
            taker = RelayClient(mallory, "bank", channel_to(mallory, p.mallory, r.address))
            await taker.start(wait=5)
            assert r.service.relay("bank").owner == p.identifier(p.mallory)
            await taker.stop()
            await client.stop()

    arun(main(), timeout=30)


def test_a_name_held_by_another_identity_is_refused_and_the_same_identity_replaces_it() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay) as r, client_node("bank", p.bank) as bank, \
                client_node("mallory", p.mallory) as mallory, \
                client_node("analysis", p.analysis) as an:
            first = RelayClient(bank, "bank", channel_to(bank, p.bank, r.address))
            await first.start(wait=5)
            [relay] = r.service.relays()
            route_before = relay.forward_route

            thief = RelayClient(mallory, "bank", channel_to(mallory, p.mallory, r.address),
                                register_timeout=0.5, max_backoff=0.5)
            with pytest.raises(TimeoutError, match="did not confirm the registration"):
                await thief.start(wait=1.5)
            assert r.service.stats.refused >= 1
            assert r.service.relays() == [relay]
            assert relay.owner == p.identifier(p.bank) and relay.forward_route == route_before
            via = Route([Address.tcp(r.address), "forward_to_bank", "api"])
            inner = await an.create_secure_channel(p.analysis, via, timeout=5)
            assert inner.peer.identifier == p.identifier(p.bank)  # still bank behind the name
            await inner.close()

            # bank again, on a new channel (a restarted client): the route is replaced
            second = RelayClient(bank, "bank", channel_to(bank, p.bank, r.address))
            await second.start(wait=5)
            assert r.service.relays() == [relay]
            assert relay.registrations == 2 and relay.forward_route != route_before
            await first.stop()  # the old route goes away; the new one carries the traffic
            inner = await an.create_secure_channel(p.analysis, via, timeout=5)
            assert await an.send_and_receive(inner.route / "echo", b"hi", timeout=5) == b"hi"

            # once bank's link is gone, the name is free for another identity
            await second.stop()
            await eventually(lambda: not r.service.is_live(relay))
            taker = RelayClient(mallory, "bank", channel_to(mallory, p.mallory, r.address))
            await taker.start(wait=5)
            assert relay.owner == p.identifier(p.mallory)
            await taker.stop()

    arun(main(), timeout=30)


def test_with_an_authority_only_holders_of_ockam_relay_register() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay, authorities=(p.authority,)) as r, \
                client_node("bank", p.bank) as bank, client_node("star", p.star) as star, \
                client_node("mallory", p.mallory) as mallory:
            def connect(node, identity):  # type: ignore[no-untyped-def]
                return channel_to(node, identity, r.address, authorities=(p.authority,))

            # ockam-relay = "bank": bank only
            await RelayClient(bank, "bank", connect(bank, p.bank)).start(wait=5)
            other = RelayClient(bank, "other", connect(bank, p.bank), register_timeout=0.5)
            with pytest.raises(TimeoutError):
                await other.start(wait=1)
            # no ockam-relay attribute: refused, whatever the name
            nope = RelayClient(mallory, "mallory", connect(mallory, p.mallory),
                               register_timeout=0.5)
            with pytest.raises(TimeoutError):
                await nope.start(wait=1)
            # ockam-relay = "*": any name, and ephemeral relays
            await RelayClient(star, "anything", connect(star, p.star)).start(wait=5)
            ephemeral = RelayClient(star, None, connect(star, p.star))
            await ephemeral.start(wait=5)
            assert ephemeral.remote_address is not None
            assert len(ephemeral.remote_address) == len("forward_to_") + 32
            assert sorted(x.name for x in r.service.relays() if not x.ephemeral) == [
                "anything", "bank"]
            assert r.service.stats.refused >= 2

            # the service's own check, with the reasons
            reg = encode_registration("bank")
            plain = LocalMessage(Route(["forwarding_service"]), Route(["x", "y"]), reg)
            with pytest.raises(UntrustedError, match="through a secure channel"):
                r.service.authorize(plain, "bank")
            # before it, the node's policy for resource forwarding_service (type relay): with
            # an authority, by default, a credential from it; without one, denied there
            assert r.node.stats.denied_incoming == 0
            async with client_node("analysis", p.analysis) as an:
                anon = RelayClient(an, "bank", connect(an, p.analysis), register_timeout=0.5)
                with pytest.raises(TimeoutError):
                    await anon.start(wait=1)
            assert r.node.stats.denied_incoming >= 1
            assert r.service.relay("bank").owner == p.identifier(p.bank)

    arun(main(), timeout=30)


def test_hostile_registrations_get_typed_errors_and_change_nothing() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay, max_relays=2, max_per_owner=1) as r:
            service = r.service
            ret = Route(["client"])

            def reg(payload: bytes, route: Route = ret) -> LocalMessage:
                return LocalMessage(Route(["forwarding_service"]), route, payload)

            cases: list[tuple[bytes, Route, type[Exception]]] = [
                (b"", ret, DecodeError),
                (b"\x05ab", ret, DecodeError),                      # short
                (encode_string("bank") + b"x", ret, DecodeError),   # trailing byte
                (b"\x02\xff\xfe", ret, DecodeError),                # not UTF-8
                (encode_string("a/b"), ret, DecodeError),           # not a name
                (encode_string("x" * 129), ret, DecodeError),       # too long
                (encode_string("\x1b[31m"), ret, DecodeError),
                (b"\xff" * 10_000, ret, DecodeError),
                (encode_string("bank"), Route([]), RemoteProtocolError),
                (encode_string("bank"), Route([f"h{i}" for i in range(17)]), RemoteProtocolError),
            ]
            for payload, route, error in cases:
                with pytest.raises(error):
                    await service.register(reg(payload, route))
            assert service.relays() == [] and service.stats.registrations == 0
            before = set(r.node.workers())

            # a registrant's route that does not exist here: it cannot be notified
            with pytest.raises(NotFoundError):
                await service.register(reg(encode_string("ghost")))
            assert service.relays() == [] and relay_workers(r.node) == []
            assert set(r.node.workers()) == before

            # the same, over the wire, through a channel: counted, logged, node unharmed
            async with client_node("hostile", p.mallory) as hostile:
                channel = await hostile.create_secure_channel(
                    p.mallory, Route([Address.tcp(r.address), "api"]), timeout=5)
                for payload in (b"", b"\x05ab", encode_string("a/b"), b"\x80" * 11):
                    await hostile.send(channel.route / "forwarding_service", payload)
                await eventually(lambda: service.stats.refused >= 4)
                # plain TCP is denied by the resource's access control (no authority: channels
                # only), before the service sees it
                await hostile.send(Route([Address.tcp(r.address), "forwarding_service"]),
                                   encode_registration("bank"))
                await eventually(lambda: r.node.stats.denied_incoming >= 1)
                assert await hostile.send_and_receive(channel.route / "echo", b"ok", timeout=5) \
                    == b"ok"
            assert service.relays() == [] and relay_workers(r.node) == []

            # limits: per owner and per node
            async with client_node("a", p.bank) as a, client_node("b", p.star) as b, \
                    client_node("c", p.analysis) as c:
                await service.sweep()
                one = RelayClient(a, "one", channel_to(a, p.bank, r.address))
                await one.start(wait=5)
                with pytest.raises(TimeoutError):
                    await RelayClient(a, "two", channel_to(a, p.bank, r.address),
                                      register_timeout=0.5).start(wait=1)
                await RelayClient(b, "three", channel_to(b, p.star, r.address)).start(wait=5)
                with pytest.raises(TimeoutError):
                    await RelayClient(c, "four", channel_to(c, p.analysis, r.address),
                                      register_timeout=0.5).start(wait=1)
                assert sorted(x.name for x in service.relays()) == ["one", "three"]
                # a relay whose channel is gone no longer counts: its owner registers another
                await one.stop()
                await eventually(lambda: not service.is_live(service.relay("one")))
                await RelayClient(a, "two", channel_to(a, p.bank, r.address)).start(wait=5)
                assert sorted(x.name for x in service.relays()) == ["three", "two"]

    arun(main(), timeout=40)


def test_the_client_registers_again_when_the_relay_node_restarts() -> None:
    p = parties()

    async def main() -> None:
        async with client_node("bank", p.bank) as bank, client_node("analysis", p.analysis) as an:
            async with relay_node(p.relay) as r:
                address = r.address
                client = RelayClient(bank, "bank", channel_to(bank, p.bank, address),
                                     max_backoff=1.0)
                await client.start(wait=5)
            # the relay node is gone: the client notices (pings) and keeps trying
            await eventually(lambda: client.state == "reconnecting", timeout=10)
            async with relay_node(p.relay, address=address) as r2:
                restarted = time.monotonic()
                await client.wait_registered(10)
                assert time.monotonic() - restarted < 10
                assert client.registrations == 2 and [x.name for x in r2.service.relays()] == [
                    "bank"]
                inner = await an.create_secure_channel(
                    p.analysis, Route([Address.tcp(address), "forward_to_bank", "api"]), timeout=5)
                assert await an.send_and_receive(inner.route / "echo", b"back", timeout=5) \
                    == b"back"
                await client.stop()

    arun(main(), timeout=40)


def test_wire_formats() -> None:
    # registration and notification are BARE strings (a Rust String message)
    assert encode_registration("blue") == b"\x04blue"
    assert encode_registration(None) == b"\x08register"
    assert decode_registration(b"\x08register") is None
    assert decode_notification(b"\x0fforward_to_blue", "blue") == "forward_to_blue"
    assert decode_notification(b"\x04blue", "blue") == "blue"  # an Elixir relay's answer
    with pytest.raises(DecodeError):
        decode_notification(b"\x03red", "blue")
    # liveness pings: CBOR unsigned integers
    assert [encode_ping(n).hex() for n in (1, 23, 24, 500, 70_000)] == [
        "01", "17", "1818", "1901f4", "1a00011170"]
    with pytest.raises(UsageError, match="relay name"):
        RelayClient(None, "a b", None)  # type: ignore[arg-type]


def test_relays_are_listed_shown_and_deleted() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay) as r, client_node("bank", p.bank) as bank:
            client = RelayClient(bank, "bank", channel_to(bank, p.bank, r.address))
            await client.start(wait=5)
            info = r.service.info(r.service.relay("bank"))
            assert info["owner"] == p.identifier(p.bank) and info["live"] is True
            with pytest.raises(NotFoundError):
                r.service.relay("nobody")
            await r.service.delete("bank")
            assert r.service.relays() == [] and not r.node.has_address("forward_to_bank")
            # the client notices nothing (the relay node still answers pings) until it is
            # told; registering again is allowed
            await client.stop()

    arun(main(), timeout=20)


def test_a_registration_through_the_hop_service_is_not_live_once_its_channel_is_gone() -> None:
    """``hop`` puts itself in front of the return route: a relay registered through it starts
    with ``0#hop``, which always exists; it used to count as live for ever (its name held,
    never swept), after the registrant's channel and node were gone."""
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay, max_relays=1) as r:
            async with client_node("mallory", p.mallory) as m:
                ch = await m.create_secure_channel(
                    p.mallory, Route([Address.tcp(r.address), "api"]), timeout=5)
                await m.send(ch.route / "hop" / "static_forwarding_service",
                             encode_registration("bank"))
                await eventually(lambda: bool(r.service.relays()))
                relay = r.service.relay("bank")
                assert relay.forward_route.addresses[0].name == "hop"
                assert r.service.is_live(relay)  # (through hop, then the live channel)
                await ch.close()
            await eventually(lambda: not r.service.is_live(relay))
            assert await r.service.sweep() == 1
            async with client_node("bank", p.bank) as b:  # the name, and the slot, are free
                client = RelayClient(b, "bank", channel_to(b, p.bank, r.address))
                await client.start(wait=5)
                assert r.service.relay("bank").owner == p.identifier(p.bank)
                await client.stop()

    arun(main(), timeout=30)


def test_taking_over_a_gone_relay_counts_against_the_per_identity_limit() -> None:
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay, max_per_owner=1) as r, \
                client_node("a", p.bank) as a, client_node("b", p.star) as b:
            one = RelayClient(a, "one", channel_to(a, p.bank, r.address))
            await one.start(wait=5)
            other = RelayClient(b, "two", channel_to(b, p.star, r.address))
            await other.start(wait=5)
            await other.stop()
            await eventually(lambda: not r.service.is_live(r.service.relay("two")))
            refused = r.service.stats.refused
            taker = RelayClient(a, "two", channel_to(a, p.bank, r.address),
                                register_timeout=0.5, max_backoff=0.5)
            with pytest.raises(TimeoutError):
                await taker.start(wait=1.5)
            await taker.stop()
            assert r.service.stats.refused > refused
            assert [x.name for x in r.service.relays()] == ["one"]  # ("two" gone: swept)
            await one.stop()

    arun(main(), timeout=30)


def test_a_relay_address_from_a_hostile_relay_node_is_checked_before_it_is_used() -> None:
    """The client takes its relay's address from the last hop of the notification's return
    route (as Ockam's): a hostile relay node answering from an address with a newline and
    terminal escapes in it is refused, never logged or shown."""
    p = parties()
    evil = "forward_to_x\n2030-01-01 CRITICAL trust.node: FAKE LINE \x1b[2J\x1b[31mbank"

    async def main() -> None:
        hub = Node("hub")
        try:
            tcp = await hub.create_tcp_listener("127.0.0.1:0")
            await hub.create_secure_channel_listener(
                p.relay, consumers=["api", "echo", "static_forwarding_service"])
            await hub.start_services()
            evil_ctx = await hub.start_worker(evil, lambda ctx, msg: None)

            async def fake_service(ctx: object, msg: LocalMessage) -> None:
                await evil_ctx.send(msg.return_route, encode_string("forward_to_bank"))

            await hub.start_worker("static_forwarding_service", fake_service)
            async with client_node("bank", p.bank) as b:
                client = RelayClient(b, "bank", channel_to(b, p.bank, tcp.address),
                                     register_timeout=0.5, max_backoff=0.5)
                with pytest.raises(TimeoutError):
                    await client.start(wait=1.5)
                assert client.remote_address is None and client.state != "registered"
                assert "not printable ASCII" in (client.info()["last_error"] or "")
                await client.stop()
        finally:
            await hub.stop()

    arun(main(), timeout=30)


def test_a_busy_link_is_not_taken_for_a_dead_one() -> None:
    """Relayed traffic can queue the relay node's echo replies for seconds (a slow host): while
    the link keeps delivering records, unanswered pings do not make the client drop it (which
    broke the portal connections through it); once nothing comes, they do."""
    p = parties()

    async def main() -> None:
        async with relay_node(p.relay) as r, client_node("bank", p.bank) as bank:
            client = RelayClient(bank, "bank", channel_to(bank, p.bank, r.address),
                                 ping_interval=0.1, ping_timeout=0.1, max_missed=2)
            await client.start(wait=5)
            await r.node.stop_worker("echo")  # (no ping is answered from now on)
            to_bank = Route(["forward_to_bank", "echo"])
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:  # traffic through the relay, to bank's echo
                await r.node.send(to_bank, b"relayed")
                await asyncio.sleep(0.03)
            assert client.state == "registered" and client.registrations == 1
            await eventually(lambda: client.state != "registered")  # quiet: pings decide
            assert client.last_error == "the relay node stopped answering pings"
            await client.stop()

    arun(main(), timeout=30)
