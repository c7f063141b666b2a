"""NodeAccess.revoked: messages on open channels from a revoked identifier are dropped (and
logged), its new channels refused; others are untouched. Two nodes over TCP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import time

import pytest

from tests.enrollment_client.helpers import authority, nodes, party, run, until
from trust.channels.access import NodeAccess
from trust.channels.peer import VerifiedPeer
from trust.channels.workers import SecureChannel
from trust.credentials.verification import VerifiedCredential, verify_credential
from trust.errors import TrustError
from trust.node.errors import ReceiveTimeoutError
from trust.node.services import Echo
from trust.routing import Address, Route
from vaults.software import SoftwareVault


def test_revoked_peer_is_dropped_on_open_channels_and_refused_new_ones(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        vault = SoftwareVault()
        alice, bob, carol = [await party(vault) for _ in range(3)]
        async with nodes("alice", "bob", "carol") as (a, b, c):
            access = NodeAccess("bob")
            await b.start_worker("echo", Echo(), incoming=access.access_control("echo"))
            await b.create_secure_channel_listener(bob.channel,
                                                   trust=access.revocation_trust())
            tcp = await b.create_tcp_listener("127.0.0.1:0")
            route = Route([Address.tcp(tcp.address), "api"])
            ch_a = await a.create_secure_channel(alice.channel, route, timeout=5)
            ch_c = await c.create_secure_channel(carol.channel, route, timeout=5)
            assert await a.send_and_receive(ch_a.route / "echo", b"before", timeout=5) == b"before"

            access.revoked = {alice.identifier: int(time.time())}
            with caplog.at_level(logging.WARNING, logger="trust.channels.access"), \
                    pytest.raises(ReceiveTimeoutError):
                await a.send_and_receive(ch_a.route / "echo", b"after", timeout=0.5)
            assert access.revoked_dropped == 1
            assert any("dropped" in r.getMessage() and alice.identifier in r.getMessage()
                       and "revoked" in r.getMessage() for r in caplog.records)
            # another peer's channel is untouched
            assert await c.send_and_receive(ch_c.route / "echo", b"carol", timeout=5) == b"carol"
            # a new channel from the revoked identifier is refused by the listener (the initiator
            # completes its side at message 2; the responder refuses message 3: no channel there)
            # (the responder may also send the refused initiator a Close)
            [listener] = b.secure_channel_listeners()
            refused: SecureChannel | None = None
            with caplog.at_level(logging.WARNING, logger="trust.channels.access"):
                with contextlib.suppress(TrustError):
                    refused = await a.create_secure_channel(alice.channel, route, timeout=5)
                await until(lambda: listener.stats.failed_handshakes == 1)
            assert len(b.secure_channels()) == 2
            assert any("secure channel from" in r.getMessage() and "refused" in r.getMessage()
                       for r in caplog.records)
            if refused is not None:
                with pytest.raises(TrustError):  # nothing answers: timeout, or closed
                    await a.send_and_receive(refused.route / "echo", b"x", timeout=0.3)
                await refused.close()
            # un-revoked (a newer list without it): both work again
            access.revoked = {}
            assert await a.send_and_receive(ch_a.route / "echo", b"again", timeout=5) == b"again"
            ch2 = await a.create_secure_channel(alice.channel, route, timeout=5)
            await until(lambda: len(b.secure_channels()) == 3)
            assert await a.send_and_receive(ch2.route / "echo", b"new", timeout=5) == b"new"

    run(main)


def test_revocation_is_lifted_by_a_credential_created_after_it() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        alice, auth = await party(vault), await authority(vault)
        access = NodeAccess("n")
        trust = access.revocation_trust()
        now = int(time.time())
        old = verify_credential(await auth.issue(alice.identity, {"r": "1"}, now=now - 100),
                                [auth.identity])
        new = verify_credential(await auth.issue(alice.identity, {"r": "1"}, now=now - 5),
                                [auth.identity])
        attestation = alice.channel.payload.purpose_key_attestation.attestation_data

        def peer(*credentials: VerifiedCredential) -> VerifiedPeer:
            return VerifiedPeer(alice.identity, alice.channel.static.public, attestation,
                                credentials)

        assert trust.allows(peer()) and not access.is_revoked(peer())
        access.revoked = {alice.identifier: now - 30}
        assert not trust.allows(peer()) and access.is_revoked(peer())
        assert access.is_revoked(peer(old))            # issued before the revocation
        assert not access.is_revoked(peer(old, new))   # enrolled again since: not revoked
        assert trust.allows(peer(new))
        assert repr(trust) == "NotRevoked(n)"

    run(main)
