"""Parties with real-clock keys (an authority, relay clients with and without the
``ockam-relay`` attribute) and in-process nodes on 127.0.0.1 for the relay tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.channels.access import NodeAccess
from trust.credentials.issuance import issue_credential
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.relays import RelayService, start_relay_service
from trust.routing import Address, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault


@dataclass
class Parties:
    authority: Identity
    relay: ChannelIdentity
    """The relay node's identity."""
    bank: ChannelIdentity
    """Credential: ockam-relay = bank."""
    mallory: ChannelIdentity
    """Credential without ockam-relay."""
    star: ChannelIdentity
    """Credential: ockam-relay = *."""
    analysis: ChannelIdentity
    """No credential."""

    def identifier(self, party: ChannelIdentity) -> str:
        from trust.models.primitives import identifier_text

        return identifier_text(party.payload.purpose_key_attestation.attestation_data.subject)


async def _parties() -> Parties:
    now = int(time.time()) - 60
    vault = SoftwareVault()
    akey = await vault.generate_key(KeyType.ED25519)
    authority = await create_identity(vault, akey, now=now)
    sk = await vault.generate_key(KeyType.ED25519)
    satt = await attest_purpose_key(authority, vault, akey,
                                    PurposePublicKey.credential_signing(await vault.public_key(sk)),
                                    now=now, ttl=86_400)

    async def party(attributes: dict[str, str] | None) -> ChannelIdentity:
        key = await vault.generate_key(KeyType.ED25519)
        identity = await create_identity(vault, key, now=now)
        static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
        att = await attest_purpose_key(identity, vault, key,
                                       PurposePublicKey.secure_channel(static.public),
                                       now=now, ttl=86_400)
        creds = [] if attributes is None else [
            await issue_credential(identity, attributes, vault, sk, satt, now=now, ttl=3_600)]
        return ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att, creds))

    return Parties(authority, await party({"role": "relay"}), await party({"ockam-relay": "bank"}),
                   await party({"role": "member"}), await party({"ockam-relay": "*"}),
                   await party(None))


@cache
def parties() -> Parties:
    return asyncio.run(_parties())


@dataclass
class RelayNode:
    node: Node
    service: RelayService
    address: str
    """host:port of its TCP listener."""


@asynccontextmanager
async def relay_node(identity: ChannelIdentity, *, authorities: tuple[Identity, ...] = (),
                     address: str = "127.0.0.1:0", max_relays: int = 1024,
                     max_per_owner: int = 64) -> AsyncIterator[RelayNode]:
    """A node with echo, a TCP listener, a secure-channel listener at ``api`` and the relay
    service (checking ``ockam-relay`` when ``authorities`` are given)."""
    node = Node("relay")
    try:
        await node.start_services()
        listener = await node.create_tcp_listener(address)
        await node.create_secure_channel_listener(identity, authorities=authorities)
        # as a node process does: the node's policies guard resource forwarding_service
        access = NodeAccess("relay", authorities=[a.identifier for a in authorities])
        access.registry.add("forwarding_service", "relay")
        service = await start_relay_service(
            node, authorities=[a.identifier for a in authorities],
            incoming=access.access_control("forwarding_service"),
            max_relays=max_relays, max_per_owner=max_per_owner)
        yield RelayNode(node, service, listener.address)
    finally:
        await node.stop()


@asynccontextmanager
async def client_node(name: str, identity: ChannelIdentity) -> AsyncIterator[Node]:
    """A node with echo and a secure-channel listener at ``api`` (nothing listens on TCP)."""
    node = Node(name)
    try:
        await node.start_services()
        await node.create_secure_channel_listener(identity)
        yield node
    finally:
        await node.stop()


def channel_to(node: Node, identity: ChannelIdentity, tcp: str, *,
               authorities: tuple[Identity, ...] = ()):  # type: ignore[no-untyped-def]
    """A ``connect()`` for :class:`RelayClient`: a channel to the ``api`` at ``tcp``."""
    async def connect():  # type: ignore[no-untyped-def]
        return await node.create_secure_channel(identity, Route([Address.tcp(tcp), "api"]),
                                                authorities=authorities, timeout=5)
    return connect


async def eventually(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
