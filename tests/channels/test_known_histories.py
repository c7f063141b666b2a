"""A peer's change history may only grow (as Ockam's change-history repository): once a node
has seen a newer history of an identity, a handshake or a credential refresh presenting an
older one (the history from before a rotation, signed by a key rotated away from) or a
conflicting one is refused."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.channels.helpers import NOW, alice_rotations, world
from tests.channels.node_helpers import nodes, party
from trust.channels import (
    ChannelIdentity,
    IdentityAndCredentials,
    PeerAuthenticator,
    VaultX25519Key,
)
from trust.channels.messages.refresh_credentials import RefreshCredentials
from trust.channels.workers import known_histories
from trust.errors import UsageError, VerificationError
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Identity
from trust.identities.known_histories import KnownHistories
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.routing import Address, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault


def _open(auth: PeerAuthenticator, history: Identity) -> object:
    w = world()
    payload = IdentityAndCredentials.of(history.export(), w.alice.attestation)
    return auth.authenticate(payload.encode(), w.alice.static.public, now=NOW)


def test_an_older_or_conflicting_history_is_refused_once_a_newer_one_was_seen() -> None:
    w = world()
    rotated, fork = alice_rotations()
    auth = PeerAuthenticator(histories=KnownHistories())
    _open(auth, w.alice.identity)          # new to it
    _open(auth, rotated)                   # newer: replaces it
    _open(auth, rotated)                   # the same
    with pytest.raises(VerificationError, match="older than one seen before"):
        _open(auth, w.alice.identity)
    with pytest.raises(VerificationError, match="conflicts with one seen before"):
        _open(auth, fork)
    # a refresh on a channel opened with the old history (on another authenticator) cannot
    # go back either once this one saw the rotation
    peer = _open(PeerAuthenticator(), w.alice.identity)
    with pytest.raises(VerificationError, match="conflicts"):
        auth.refresh(peer, RefreshCredentials(fork.export()), now=NOW)
    assert auth.refresh(peer, RefreshCredentials(rotated.export()), now=NOW).identity == rotated
    # without a store (the default of a bare authenticator) each handshake stands alone
    _open(PeerAuthenticator(), w.alice.identity)


def test_the_store_is_bounded_and_refusals_change_nothing() -> None:
    w = world()
    rotated, fork = alice_rotations()
    known = KnownHistories(capacity=1)
    known.accept(rotated)
    with pytest.raises(VerificationError):
        known.accept(w.alice.identity)
    with pytest.raises(VerificationError):
        known.accept(fork)
    known.check(rotated)                  # still the one remembered
    known.accept(w.bob.identity)          # one more identity: the least recent is dropped
    assert len(known) == 1
    known.accept(fork)                    # (alice forgotten)
    with pytest.raises(UsageError):
        KnownHistories(capacity=0)


def test_a_nodes_channels_share_the_histories_they_have_seen() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        now = int(time.time()) - 60
        _, bob = await party(vault, now)
        key = await vault.generate_key(KeyType.ED25519)
        old = await create_identity(vault, key, now=now)
        new_key = await vault.generate_key(KeyType.ED25519)
        new = await rotate_identity(old, vault, key, vault, new_key, now=now + 1)

        async def side(identity: Identity, signer: str) -> ChannelIdentity:
            static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
            att = await attest_purpose_key(identity, vault, signer,
                                           PurposePublicKey.secure_channel(static.public),
                                           now=now + 1, ttl=3_600)
            return ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))

        async with nodes("alice", "bob") as (alice_node, bob_node):
            await bob_node.create_secure_channel_listener(bob)
            listener = await bob_node.create_tcp_listener()
            route = Route([Address.tcp(listener.address), "api"])
            ch = await alice_node.create_secure_channel(await side(new, new_key), route, timeout=5)
            await ch.close()
            assert len(known_histories(bob_node)) == 1
            # the history from before the rotation, its attestation signed by the old key:
            # bob refuses it in the handshake's last message (and tells alice: Close)
            refused = await alice_node.create_secure_channel(await side(old, key), route,
                                                             timeout=2)
            for _ in range(100):
                if refused.closed:
                    break
                await asyncio.sleep(0.02)
            assert refused.closed and bob_node.secure_channels() == []
            assert bob_node.secure_channel_listeners()[0].stats.failed_handshakes >= 1

    asyncio.run(main())
