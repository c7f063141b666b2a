"""Secure channels between nodes over real TCP on 127.0.0.1: echo, trust failures, flow control,
Close, timeouts, the handshake cap, credential refresh, back-pressure, channels in channels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from tests.channels.node_helpers import RecordingProxy, live, nodes
from trust.channels import Initiator, TrustAuthority, TrustIdentifier
from trust.channels.local_info import channel_info
from trust.channels.workers import ChannelTimeoutError, SecureChannel
from trust.errors import NotFoundError, UntrustedError
from trust.node import Context, Node
from trust.routing import Address, LocalMessage, Route


def run(test: Callable[[], Awaitable[None]]) -> None:
    live()  # (built outside the test's event loop)
    asyncio.run(asyncio.wait_for(test(), 20))


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def _bob(bob: Node, **options: object) -> Route:
    """Bob's listener at ``api`` and a TCP listener; the route to the channel listener."""
    await bob.create_secure_channel_listener(live().bob, **options)  # type: ignore[arg-type]
    tcp = await bob.create_tcp_listener("127.0.0.1:0")
    return Route([Address.tcp(tcp.address), "api"])


def test_channel_between_two_nodes_echo_and_replies_reenter() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob, trust=TrustIdentifier(w.alice.identifier))
            channel = await alice.create_secure_channel(
                w.alice, route, trust=TrustIdentifier(w.bob.identifier), timeout=5)
            assert channel.peer.identifier == w.bob.identifier
            assert await alice.send_and_receive(channel.route / "echo", b"hello", timeout=5) == b"hello"
            # the reply came back through alice's channel: it carries the channel's local info
            reply = await alice.ctx.request(channel.route / "echo", b"again", timeout=5)
            info = channel_info(reply)
            assert info is not None and info.identifier == w.bob.identifier
            assert reply.return_route.addresses[0] == channel.address
            # and bob's echo saw alice, verified, through bob's side of the channel
            seen: list[LocalMessage] = []

            async def app(ctx: Context, msg: LocalMessage) -> None:
                seen.append(msg)
                await ctx.send(msg.return_route, b"ok")

            await bob.start_worker("app", app)
            [listener] = bob.secure_channel_listeners()
            bob.flow_controls.add_consumer("app", listener.flow_control_id)
            assert await alice.send_and_receive(channel.route / "app", b"x", timeout=5) == b"ok"
            theirs = channel_info(seen[0])
            assert theirs is not None and theirs.identifier == w.alice.identifier
            [bobs] = bob.secure_channels()
            assert bobs.peer.identifier == w.alice.identifier
            assert theirs.channel == bobs.addresses.decryptor_api
            assert alice.secure_channels() == [channel]

    run(main)


def test_wrong_trust_fails_cleanly() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob)
            before = set(alice.workers())
            try:
                await alice.create_secure_channel(w.alice, route, trust=TrustIdentifier(w.carol.identifier),
                                                  timeout=5)
                raise AssertionError("trusted the wrong peer")
            except UntrustedError:
                pass
            assert set(alice.workers()) == before and alice.secure_channels() == []
            try:  # a credential the peer does not have
                await alice.create_secure_channel(w.alice, route, trust=TrustAuthority(w.authority),
                                                  timeout=5)
                raise AssertionError("accepted a peer without a credential")
            except UntrustedError:
                pass
            assert set(alice.workers()) == before and alice.secure_channels() == []

    run(main)


def test_a_worker_the_channel_flow_does_not_admit_never_gets_channel_traffic() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob)
            got: list[bytes] = []

            async def secret(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                await ctx.send(msg.return_route, b"leak")

            await bob.start_worker("secret", secret)
            channel = await alice.create_secure_channel(w.alice, route, timeout=5)
            refused = bob.stats.refused_by_flow_control
            await alice.send(channel.route / "secret", b"let me in")
            assert await alice.send_and_receive(channel.route / "echo", b"after", timeout=5) == b"after"
            assert got == [] and bob.stats.refused_by_flow_control == refused + 1
            # a local sender on bob still reaches it
            assert await bob.send_and_receive("secret", b"local", timeout=5) == b"leak"

    run(main)


def test_close_both_ways() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob)
            one = await alice.create_secure_channel(w.alice, route, timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 1)
            await one.close()
            assert alice.secure_channels() == [] and not alice.has_address(one.address)
            await _until(lambda: bob.secure_channels() == [])
            try:
                await alice.send(one.route / "echo", b"x")
                raise AssertionError("sent through a closed channel")
            except NotFoundError:
                pass
            two = await alice.create_secure_channel(w.alice, route, timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 1)
            await bob.secure_channels()[0].close()
            await _until(lambda: alice.secure_channels() == [])
            assert not alice.has_address(two.address)
            assert not alice.has_address(two.addresses.decryptor_remote)
            three = await alice.create_secure_channel(w.alice, route, timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 1)
            await alice.stop()  # a node that stops closes its channels
            await _until(lambda: bob.secure_channels() == [])
            assert three.closed

    run(main)


def test_a_stopping_node_whose_link_is_gone_closes_its_channels_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two nodes stopping together (the peer's link is gone first): the Close that cannot be
    sent is no warning (it is logged at debug level); the channel is closed all the same."""
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            channel = await alice.create_secure_channel(w.alice, await _bob(bob), timeout=5)
            for connection in bob.tcp.connections:
                connection.abort()
            await _until(lambda: alice.tcp.connections == [])
            with caplog.at_level(logging.DEBUG, logger="trust.channels"):
                await alice.stop()
            assert channel.closed and alice.secure_channels() == []
            closes = [r for r in caplog.records if "could not send Close" in r.getMessage()]
            assert closes and all(r.levelno == logging.DEBUG for r in closes), closes

    run(main)


def test_handshake_timeouts_both_sides() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            async def sink(ctx: Context, msg: LocalMessage) -> None:
                return None

            await alice.start_worker("sink", sink)
            before = set(alice.workers())
            try:
                await alice.create_secure_channel(w.alice, ["sink"], timeout=0.2)
                raise AssertionError("no timeout")
            except ChannelTimeoutError:
                pass
            assert set(alice.workers()) == before and alice.secure_channels() == []
            # the responder side: message 1 and nothing more
            listener = await bob.create_secure_channel_listener(w.bob, handshake_timeout=0.2)
            ctx = bob.context()
            workers = set(bob.workers())
            await ctx.send("api", Initiator(w.alice).start())
            await ctx.receive(5)  # message 2
            assert listener.in_progress == 1 and len(bob.workers()) == len(workers) + 1
            await _until(lambda: listener.stats.timed_out == 1)
            await _until(lambda: set(bob.workers()) == workers)
            assert listener.in_progress == 0 and bob.secure_channels() == []
            ctx.close()

    run(main)


def test_handshakes_in_progress_are_capped() -> None:
    async def main() -> None:
        w = live()
        async with nodes("bob") as (bob,):
            listener = await bob.create_secure_channel_listener(w.bob, max_handshakes=3)
            ctx = bob.context(mailbox_size=16)
            for _ in range(5):
                await ctx.send("api", Initiator(w.alice).start())
            for _ in range(3):
                await ctx.receive(5)
            await _until(lambda: listener.stats.dropped_over_limit == 2)
            assert listener.in_progress == 3 and listener.stats.handshakes == 3
            ctx.close()
        async with nodes("bob") as (bob,):  # hostile message 1s fail at once, freeing their slot
            listener = await bob.create_secure_channel_listener(w.bob, max_handshakes=2)
            workers = set(bob.workers())
            ctx = bob.context()
            await ctx.forward(LocalMessage(Route(["api"]), Route(), Initiator(w.alice).start()))
            await ctx.send("api", b"not a handshake message")
            await _until(lambda: listener.stats.failed_handshakes == 2)
            assert listener.in_progress == 0 and listener.stats.dropped_over_limit == 0
            assert set(bob.workers()) == workers | {ctx.address}
            ctx.close()

    run(main)


def test_credential_refresh_on_an_open_channel() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob, authorities=[w.authority])
            channel = await alice.create_secure_channel(w.alice, route, timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 1)
            [bobs] = bob.secure_channels()
            assert not bobs.peer.has_credential
            await channel.refresh_credentials([w.alice_credential])
            await _until(lambda: bobs.peer.has_credential)
            assert bobs.peer.attributes == {"role": "admin"}
            seen: list[LocalMessage] = []

            async def app(ctx: Context, msg: LocalMessage) -> None:
                seen.append(msg)
                await ctx.send(msg.return_route, b"ok")

            await bob.start_worker("app", app)
            bob.flow_controls.add_consumer("app", bob.secure_channel_listeners()[0].flow_control_id)
            assert await alice.send_and_receive(channel.route / "app", b"x", timeout=5) == b"ok"
            info = channel_info(seen[0])
            assert info is not None and info.peer.attributes == {"role": "admin"}

    run(main)


def test_a_flood_to_a_slow_worker_pauses_the_channel_and_drops_nothing() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob)
            got: list[bytes] = []

            async def slow(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                if len(got) % 50 == 0:
                    await asyncio.sleep(0.01)

            await bob.start_worker("slow", slow, mailbox_size=4)
            bob.flow_controls.add_consumer("slow", bob.secure_channel_listeners()[0].flow_control_id)
            channel = await alice.create_secure_channel(w.alice, route, timeout=5)
            n = 2_000
            for i in range(n):
                await alice.send(channel.route / "slow", i.to_bytes(4, "big") + bytes(1020))
            await _until(lambda: len(got) == n, 10)
            assert [int.from_bytes(p[:4], "big") for p in got] == list(range(n))
            assert bob.stats.dropped_full == 0 and alice.stats.dropped_full == 0
            assert bob.stats.channel_records_rejected == 0

    run(main)


def test_channel_inside_a_channel_through_an_intermediary() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "middle", "bob") as (alice, middle, bob):
            bob_route = await _bob(bob, trust=TrustIdentifier(w.alice.identifier))
            await middle.create_secure_channel_listener(w.carol)
            middle_tcp = await middle.create_tcp_listener("127.0.0.1:0")
            async with RecordingProxy(middle_tcp.address) as to_middle, \
                    RecordingProxy(str(bob_route[0].name)) as to_bob:
                await middle.connect_tcp(to_bob.address)  # the intermediary's way to bob
                # control: plaintext over plain routing shows in the capture
                assert await alice.send_and_receive(
                    [Address.tcp(to_middle.address), "echo"], b"control-plaintext", timeout=5) == \
                    b"control-plaintext"
                assert b"control-plaintext" in to_middle.seen()
                outer = await alice.create_secure_channel(
                    w.alice, [Address.tcp(to_middle.address), "api"],
                    trust=TrustIdentifier(w.carol.identifier), timeout=5)
                inner = await alice.create_secure_channel(
                    w.alice, outer.route / "hop" / Address.tcp(to_bob.address) / "api",
                    trust=TrustIdentifier(w.bob.identifier), timeout=5)
                secret = b"top-secret-payload-" * 4
                assert await alice.send_and_receive(inner.route / "echo", secret, timeout=5) == secret
                # bob sees alice as the peer of the inner channel
                assert [c.peer.identifier for c in bob.secure_channels()] == [w.alice.identifier]
                for proxy in (to_middle, to_bob):
                    data = proxy.seen()
                    assert len(data) > 1000 and b"top-secret" not in data
                await inner.close()
                await outer.close()

    run(main)


def test_lookup_and_delete_by_address() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            route = await _bob(bob)
            channel = await alice.create_secure_channel(w.alice, route, timeout=5)
            assert alice.secure_channel(str(channel.address)) is channel
            await alice.delete_secure_channel(channel.address)
            await _until(lambda: bob.secure_channels() == [])
            for call in (lambda: alice.secure_channel(channel.address),):
                try:
                    call()
                    raise AssertionError("found a deleted channel")
                except NotFoundError:
                    pass
            await bob.delete_secure_channel_listener("api")
            assert bob.secure_channel_listeners() == [] and not bob.has_address("api")
            try:
                await bob.delete_secure_channel_listener("api")
                raise AssertionError("deleted a listener twice")
            except NotFoundError:
                pass

    run(main)


def test_an_open_channel_encrypts_and_decrypts_inside_the_delivery() -> None:
    """The encryptor and the decryptor of an open channel are inline workers: a message handed
    to them without waiting is encrypted (or decrypted and passed on) before the sender gets
    control back, with no task switch; the channel works as before afterwards."""

    async def main() -> None:
        async with nodes("alice", "bob") as (alice, bob):
            channel, far = await _warm_channel(alice, bob)
            # alice: the encryptor makes the record inside forward_nowait
            ctx = alice.context()
            nonce = channel.session.encryptor.nonce
            assert ctx.forward_nowait(LocalMessage(channel.route / "echo", Route([ctx.address]), b"x"))
            assert channel.session.encryptor.nonce == nonce + 1
            assert (await ctx.receive(5)).payload == b"x"
            # bob: a record given to the decryptor is decrypted and delivered at once
            sink = bob.context()
            bob.flow_controls.add_consumer(sink.address, bob.secure_channel_listeners()[0].flow_control_id)
            record = channel.session.encrypt_payload(Route([sink.address]), Route(["r"]), b"inline")
            highest = far.session.decryptor.highest_nonce
            assert bob.ctx.forward_nowait(LocalMessage(Route([far.addresses.decryptor_remote]),
                                                       Route([bob.ctx.address]), bytes(record)))
            assert far.session.decryptor.highest_nonce == highest + 1
            got = await sink.receive(5)
            assert got.payload == b"inline" and got.return_route.addresses[0] == far.address
            assert bob.stats.channel_records_rejected == 0
            # and the channel goes on (alice's next nonces follow the one used by hand)
            assert await alice.send_and_receive(channel.route / "echo", b"after", timeout=5) == b"after"
            ctx.close()
            sink.close()

    run(main)


async def _warm_channel(alice: Node, bob: Node) -> tuple[SecureChannel, SecureChannel]:
    """A channel from alice to bob's listener, used once; both of its sides."""
    route = await _bob(bob)
    channel = await alice.create_secure_channel(live().alice, route, timeout=5)
    assert await alice.send_and_receive(channel.route / "echo", b"warm", timeout=5) == b"warm"
    await _until(lambda: len(bob.secure_channels()) == 1)
    [far] = bob.secure_channels()
    return channel, far


async def _blocked_consumer(node: Node) -> tuple[asyncio.Event, list[bytes]]:
    """A worker ``blocked`` (mailbox of one) that consumes the node's channel listener's flow
    and takes nothing until the event is set; the payloads it got."""
    go = asyncio.Event()
    got: list[bytes] = []

    async def blocked(ctx: Context, msg: LocalMessage) -> None:
        await go.wait()
        got.append(bytes(msg.payload))

    await node.start_worker("blocked", blocked, mailbox_size=1)
    node.flow_controls.add_consumer("blocked", node.secure_channel_listeners()[0].flow_control_id)
    await asyncio.sleep(0)
    return go, got


def test_records_waiting_behind_a_full_consumer_are_decrypted_as_they_arrive() -> None:
    """A record that must wait in the decryptor's mailbox (its consumer is full) is decrypted
    on arrival all the same: it is counted at once, the mailbox keeps no copy of it, and a
    record given as a view of the sender's reused buffer may change right after; the
    messages still reach the consumer intact and in order."""

    async def main() -> None:
        async with nodes("alice", "bob") as (alice, bob):
            channel, far = await _warm_channel(alice, bob)
            go, got = await _blocked_consumer(bob)
            counted, highest = far.records_received, far.session.decryptor.highest_nonce
            buf = bytearray(40_000)
            n = 6
            for i in range(n):
                record = channel.session.encrypt_payload(Route(["blocked"]), Route(["r"]),
                                                         bytes([i]) * 30_000)
                buf[:len(record)] = record
                assert bob.ctx.forward_nowait(LocalMessage(
                    Route([far.addresses.decryptor_remote]), Route([bob.ctx.address]),
                    memoryview(buf)[:len(record)]))  # type: ignore[arg-type]
                buf[:] = bytes(len(buf))  # the sender reuses its buffer at once
            assert far.records_received == counted + n
            assert far.session.decryptor.highest_nonce == highest + n
            assert len(got) == 0
            go.set()
            await _until(lambda: len(got) == n)
            assert got == [bytes([i]) * 30_000 for i in range(n)]
            assert bob.stats.channel_records_rejected == 0
            assert await alice.send_and_receive(channel.route / "echo", b"after", timeout=5) == b"after"

    run(main)


def test_messages_waiting_behind_a_full_next_hop_are_encrypted_as_they_arrive() -> None:
    """A message that must wait in the encryptor's mailbox (the next hop is full) is
    encrypted on arrival all the same: nonces follow arrival order, the mailbox keeps no copy
    of the payload (a view of the sender's reused buffer may change right after), and the
    messages reach the far side intact and in order."""

    async def main() -> None:
        w = live()
        node = Node("solo", mailbox_size=2)
        try:
            await node.start_services()
            await node.create_secure_channel_listener(w.bob)
            channel = await node.create_secure_channel(w.alice, Route(["api"]), timeout=5)
            assert await node.send_and_receive(channel.route / "echo", b"warm", timeout=5) == b"warm"
            go, got = await _blocked_consumer(node)
            ctx = node.context()
            nonce = channel.session.encryptor.nonce
            buf = bytearray(30_000)
            n = 10
            for i in range(n):
                buf[:] = bytes([i]) * len(buf)
                msg = LocalMessage(channel.route / "blocked", Route([ctx.address]),
                                   memoryview(buf))  # type: ignore[arg-type]
                assert node.deliver(msg, ctx.address, None, None, None) is True
                buf[:] = bytes(len(buf))  # the sender reuses its buffer at once
            assert channel.session.encryptor.nonce == nonce + n  # all encrypted on arrival
            go.set()
            await _until(lambda: len(got) == n)
            assert got == [bytes([i]) * 30_000 for i in range(n)]
            assert node.stats.channel_records_rejected == 0 and node.stats.dropped_full == 0
            ctx.close()
        finally:
            await node.stop()

    run(main)
