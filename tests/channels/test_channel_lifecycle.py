"""When no channel may exist, none does: a responder that refuses the initiator after message 3
closes the initiator's channel at once (an encrypted Close), an initiator that refuses leaves
the responder's half-done handshake to time out; a handshake message changed on its way
leaves no channel; deleting a listener closes what it accepted; a channel inside a channel to
the same node's listener opens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.channels.node_helpers import live, nodes
from trust.channels import (
    ChannelIdentity,
    IdentityAndCredentials,
    Initiator,
    TrustAuthority,
    TrustIdentifier,
    X25519KeyPair,
)
from trust.channels.keys import DhKey
from trust.channels.workers import ChannelClosedError, SecureChannelListener
from trust.errors import NotFoundError, TrustError, UntrustedError, VerificationError
from trust.node import Context, Node
from trust.node.node import from_peer
from trust.routing import Address, LocalMessage, Route


def run(test: Callable[[], Awaitable[None]]) -> None:
    live()  # (built outside the test's event loop)
    asyncio.run(asyncio.wait_for(test(), 30))


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def _forged(static: DhKey, payload: IdentityAndCredentials) -> ChannelIdentity:
    """A ChannelIdentity without the local check that its attestation names its key."""
    ident = object.__new__(ChannelIdentity)
    ident.static = static
    ident.payload = payload
    ident.payload_bytes = payload.encode()
    return ident


def _refused_cases() -> list[tuple[str, ChannelIdentity, dict[str, Any]]]:
    """(what, the initiator, the listener's options): each listener refuses that initiator."""
    w = live()
    alice = w.alice.payload
    history = bytearray(alice.change_history_raw)
    history[-1] ^= 1  # the change's signature
    return [
        ("untrusted identifier", w.alice, {"trust": TrustIdentifier(w.carol.identifier)}),
        ("required credential missing", w.alice, {"trust": TrustAuthority(w.authority)}),
        ("credential from an unknown authority",
         ChannelIdentity(w.alice.static, IdentityAndCredentials.of(
             alice.change_history_raw, alice.purpose_key_attestation, (w.alice_credential,))),
         {"trust": TrustAuthority(w.other_authority)}),
        ("attested key is not the Noise key", _forged(X25519KeyPair.generate(), alice), {}),
        ("expired attestation", w.expired, {}),
        ("future attestation", w.future, {}),
        ("history that does not verify",
         _forged(w.alice.static, IdentityAndCredentials.of(bytes(history),
                                                           alice.purpose_key_attestation)), {}),
    ]


async def _listener(bob: Node, address: str = "api", **options: Any
                    ) -> tuple[SecureChannelListener, Route]:
    listener = await bob.create_secure_channel_listener(live().bob, address, **options)
    tcp = await bob.create_tcp_listener("127.0.0.1:0")
    return listener, Route([Address.tcp(tcp.address), address])


async def _refused(what: str, initiator: ChannelIdentity, options: dict[str, Any]) -> None:
    async with nodes("alice", "bob") as (alice, bob):
        listener, route = await _listener(bob, **options)
        bob_workers = set(bob.workers())
        alice_workers = set(alice.workers())
        accepted: list[object] = []
        register = bob.register_secure_channel

        def spy(channel: Any) -> None:
            accepted.append(channel)
            register(channel)

        bob.register_secure_channel = spy  # type: ignore[method-assign]
        # alice trusts bob: her side completes (XX: the initiator finishes first)
        channel = await alice.create_secure_channel(initiator, route, timeout=5)
        t0 = time.monotonic()
        await _until(lambda: alice.secure_channels() == [], 1.0)
        assert time.monotonic() - t0 < 1.0, what
        assert channel.closed and not alice.has_address(channel.address), what
        assert not alice.has_address(channel.addresses.decryptor_remote), what
        assert set(alice.workers()) == alice_workers, what
        try:
            await alice.send(channel.route / "echo", b"after the refusal")
            raise AssertionError(f"{what}: sent through a refused channel")
        except NotFoundError:
            pass
        try:
            await channel.refresh_credentials([])
            raise AssertionError(f"{what}: refreshed a refused channel")
        except ChannelClosedError:
            pass
        # the responder never had a channel, and told alice it refused her
        assert accepted == [] and bob.secure_channels() == [], what
        assert listener.stats.failed_handshakes == 1, what
        assert listener.stats.refusals_sent == 1, what
        await _until(lambda: set(bob.workers()) == bob_workers)
        assert listener.in_progress == 0, what


def test_a_responder_that_refuses_closes_the_initiators_channel_at_once() -> None:
    async def main() -> None:
        for what, initiator, options in _refused_cases():
            await _refused(what, initiator, options)

    run(main)


def test_an_initiator_that_refuses_leaves_no_channel_on_either_side() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            listener, route = await _listener(bob, handshake_timeout=0.3)
            bob_workers = set(bob.workers())
            alice_workers = set(alice.workers())
            try:
                await alice.create_secure_channel(w.alice, route,
                                                  trust=TrustIdentifier(w.carol.identifier), timeout=5)
                raise AssertionError("trusted the wrong responder")
            except UntrustedError:
                pass
            assert alice.secure_channels() == [] and set(alice.workers()) == alice_workers
            # bob's half of the handshake waits for a message 3 that never comes, then goes
            assert listener.in_progress == 1 and bob.secure_channels() == []
            await _until(lambda: listener.stats.timed_out == 1, 2.0)
            await _until(lambda: set(bob.workers()) == bob_workers)
            assert listener.in_progress == 0 and bob.secure_channels() == []
            assert listener.stats.refusals_sent == 0

    run(main)


async def _bad_responder(what: str, responder: ChannelIdentity) -> None:
    async with nodes("alice", "bob") as (alice, bob):
        listener = await bob.create_secure_channel_listener(responder, handshake_timeout=0.3)
        tcp = await bob.create_tcp_listener("127.0.0.1:0")
        bob_workers = set(bob.workers())
        alice_workers = set(alice.workers())
        try:
            await alice.create_secure_channel(live().alice, [Address.tcp(tcp.address), "api"],
                                              timeout=5)
            raise AssertionError(f"{what}: accepted")
        except VerificationError:
            pass
        assert alice.secure_channels() == [] and set(alice.workers()) == alice_workers, what
        await _until(lambda: listener.stats.timed_out == 1, 2.0)
        await _until(lambda: set(bob.workers()) == bob_workers)
        assert bob.secure_channels() == [] and listener.stats.failed_handshakes == 0, what


def test_an_initiator_refusing_any_bad_responder_leaves_no_channel() -> None:
    async def main() -> None:
        for what, responder, _ in _refused_cases()[3:]:  # (the bad identities)
            await _bad_responder(what, responder)

    run(main)


def test_deleting_a_listener_closes_the_channels_it_accepted() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            _, route = await _listener(bob)
            other = await bob.create_secure_channel_listener(w.bob, "other")
            bob.flow_controls.add_consumer("other", bob.tcp.listeners[0].flow_control_id)
            one = await alice.create_secure_channel(w.alice, route, timeout=5)
            two = await alice.create_secure_channel(w.alice, route, timeout=5)
            kept = await alice.create_secure_channel(w.alice, route[:1] / "other", timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 3)
            assert len(other.accepted_channels()) == 1
            # a handshake in progress at the listener is abandoned with it
            ctx = bob.context()
            await ctx.send("api", Initiator(w.alice).start())
            await ctx.receive(5)  # message 2
            workers = set(bob.workers())
            await bob.delete_secure_channel_listener("api")
            assert [c.address for c in bob.secure_channels()] == [other.accepted_channels()[0].address]
            await _until(lambda: alice.secure_channels() == [kept], 1.0)  # Close reached alice
            assert one.closed and two.closed and not kept.closed
            assert len(bob.workers()) == len(workers) - 1 - 2 * 2 - 1  # listener, 2 channels, 1 handshake
            for gone in (one, two):
                try:
                    await alice.send(gone.route / "echo", b"x")
                    raise AssertionError("sent through a channel of a deleted listener")
                except NotFoundError:
                    pass
            assert await alice.send_and_receive(kept.route / "echo", b"still", timeout=5) == b"still"
            ctx.close()

    run(main)


def test_a_channel_inside_a_channel_to_the_same_nodes_listener() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            _, route = await _listener(bob, trust=TrustIdentifier(w.alice.identifier))
            outer = await alice.create_secure_channel(w.alice, route, timeout=5)
            inner = await alice.create_secure_channel(w.alice, outer.route / "api", timeout=5,
                                                      trust=TrustIdentifier(w.bob.identifier))
            assert await alice.send_and_receive(inner.route / "echo", b"in-in", timeout=5) == b"in-in"
            await _until(lambda: len(bob.secure_channels()) == 2)
            # and to a listener at another address, inside a channel it accepted itself
            await bob.create_secure_channel_listener(w.bob, "only")
            bob.flow_controls.add_consumer("only", bob.tcp.listeners[0].flow_control_id)
            first = await alice.create_secure_channel(w.alice, route[:1] / "only", timeout=5)
            second = await alice.create_secure_channel(w.alice, first.route / "only", timeout=5)
            assert await alice.send_and_receive(second.route / "echo", b"o", timeout=5) == b"o"
            assert bob.stats.refused_by_flow_control == 0
            await inner.close()
            assert await alice.send_and_receive(outer.route / "echo", b"out", timeout=5) == b"out"

    run(main)


def test_a_changed_handshake_message_leaves_no_channel() -> None:
    """A worker on alice's node relays the handshake to bob over TCP and changes one byte of
    the Nth message it passes toward bob (message 1 or 3) or back (message 2)."""

    async def once(outward: bool, nth: int, index: int) -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            listener, route = await _listener(bob, handshake_timeout=0.3)
            seen = {True: 0, False: 0}

            async def tamper(ctx: Context, msg: LocalMessage) -> None:
                onward = msg.onward_route.pop_front()
                out = not from_peer(msg)  # from alice's side of the handshake, toward bob
                seen[out] += 1
                payload = msg.payload
                if out is outward and seen[out] == nth:
                    changed = bytearray(payload)
                    changed[index] ^= 0x01
                    payload = bytes(changed)
                await ctx.forward(LocalMessage(onward, msg.return_route.push_front(ctx.address),
                                               payload))

            await alice.start_worker("tamper", tamper)
            bob_workers = set(bob.workers())
            alice_workers = set(alice.workers())
            try:
                channel = await alice.create_secure_channel(w.alice, ["tamper", *route], timeout=2)
            except TrustError:
                assert (outward, nth) != (True, 2)  # only message 3 fails after alice is done
            else:
                assert (outward, nth) == (True, 2)
                # bob could not read message 3's payload, but had its keys: it told alice
                await _until(lambda: alice.secure_channels() == [], 1.0)
                assert channel.closed and listener.stats.refusals_sent == 1
            await _until(lambda: set(alice.workers()) == alice_workers, 1.0)
            await _until(lambda: set(bob.workers()) == bob_workers, 2.0)  # (timed out, or failed)
            assert alice.secure_channels() == [] and bob.secure_channels() == []
            assert listener.stats.failed_handshakes + listener.stats.timed_out == 1

    async def main() -> None:
        for outward, nth, index in ((True, 1, 5), (False, 1, 3), (False, 1, 100), (True, 2, 70),
                                    (True, 2, -1)):
            await once(outward, nth, index)

    run(main)


def test_replayed_handshake_messages_make_no_channel() -> None:
    async def main() -> None:
        w = live()
        async with nodes("alice", "bob") as (alice, bob):
            listener, route = await _listener(bob)
            recorded: list[LocalMessage] = []

            async def recorder(ctx: Context, msg: LocalMessage) -> None:
                onward = msg.onward_route.pop_front()
                if not from_peer(msg):
                    recorded.append(LocalMessage(onward, msg.return_route, msg.payload))
                await ctx.forward(LocalMessage(onward, msg.return_route.push_front(ctx.address),
                                               msg.payload))

            await alice.start_worker("recorder", recorder)
            channel = await alice.create_secure_channel(w.alice, ["recorder", *route], timeout=5)
            await _until(lambda: len(bob.secure_channels()) == 1 and len(recorded) == 2)
            [bobs] = bob.secure_channels()
            m1, m3 = recorded
            ctx = alice.context()
            # message 3 again, to the channel it opened: a record that does not decrypt
            rejected = bob.stats.channel_records_rejected
            await ctx.send(m3.onward_route, m3.payload)
            await _until(lambda: bob.stats.channel_records_rejected == rejected + 1)
            # message 1 again: a new handshake (a fresh ephemeral key), whose message 2 no one
            # can answer; message 3 replayed to it fails
            await ctx.send(m1.onward_route, m1.payload)
            m2 = await ctx.receive(5)
            await ctx.send(m2.return_route, m3.payload)
            await _until(lambda: listener.stats.failed_handshakes == 1)
            assert listener.stats.handshakes == 2 and listener.stats.refusals_sent == 0
            assert bob.secure_channels() == [bobs] and alice.secure_channels() == [channel]
            assert await alice.send_and_receive(channel.route / "echo", b"ok", timeout=5) == b"ok"
            ctx.close()

    run(main)
