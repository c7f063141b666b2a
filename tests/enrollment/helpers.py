"""Parties (identities with channel keys), an authority signer, and nodes on 127.0.0.1 running an
authority for the enrollment tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.enrollment.authority import Authority, start_authority
from trust.enrollment.client import AuthorityClient
from trust.enrollment.repositories import AuthorityRepository, MemoryAuthorityRepository
from trust.enrollment.service import AuthorityOptions
from trust.enrollment.signer import AuthoritySigner
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.routing import Address, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault


@dataclass(frozen=True)
class Party:
    identity: Identity
    side: ChannelIdentity

    @property
    def identifier(self) -> str:
        return self.identity.identifier


@dataclass(frozen=True)
class World:
    signer: AuthoritySigner
    authority_side: ChannelIdentity
    admin: Party
    parties: tuple[Party, ...]


async def make_party(vault: SoftwareVault, now: int) -> Party:
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.secure_channel(static.public), now=now,
                                   ttl=86_400)
    return Party(identity, ChannelIdentity(static, IdentityAndCredentials.of(identity.export(),
                                                                             att)))


async def make_world(n: int = 6) -> World:
    now = int(time.time()) - 60
    vault = SoftwareVault()
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.secure_channel(static.public), now=now,
                                   ttl=86_400)
    side = ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))
    sk = await vault.generate_key(KeyType.ED25519)
    satt = await attest_purpose_key(identity, vault, key, PurposePublicKey.credential_signing(
        await vault.public_key(sk)), now=now, ttl=86_400)
    parties = tuple([await make_party(vault, now) for _ in range(n + 1)])
    return World(AuthoritySigner(identity, vault, sk, satt), side, parties[0], parties[1:])


@cache
def world() -> World:
    """One world for the whole test process (made in a thread of its own, so it may be called
    from inside a running event loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make_world()).result()


@dataclass
class Running:
    world: World
    server: Node
    client_node: Node
    authority: Authority
    route: Route
    clients: list[AuthorityClient]

    async def connect(self, party: Party, **kw: Any) -> AuthorityClient:
        client = await AuthorityClient.connect(self.client_node, party.side, self.route,
                                               self.world.signer.identity, timeout=10, **kw)
        self.clients.append(client)
        return client


@asynccontextmanager
async def running(repository: AuthorityRepository | None = None,
                  options: AuthorityOptions | None = None, w: World | None = None,
                  clock: Any = time.time, incoming: Any = None, **start: Any
                  ) -> AsyncIterator[Running]:
    w = w or world()
    opts = options or AuthorityOptions(admins=frozenset({w.admin.identifier}))
    repo = repository or MemoryAuthorityRepository()
    server = Node("authority")
    client_node = Node("client")
    try:
        await server.create_secure_channel_listener(w.authority_side)
        tcp = await server.create_tcp_listener("127.0.0.1:0")
        authority = await start_authority(server, w.signer, repo, opts, clock=clock,
                                          incoming=incoming, **start)
        run = Running(w, server, client_node, authority,
                      Route([Address.tcp(tcp.address), "api"]), [])
        try:
            yield run
        finally:
            for c in run.clients:
                await c.close()
            await authority.stop()
    finally:
        await client_node.stop()
        await server.stop()
