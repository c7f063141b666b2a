"""Parties with real-clock keys and nodes on 127.0.0.1 for the secure-channel worker tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.credentials.issuance import issue_credential
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from vaults.keys import KeyType
from vaults.software import SoftwareVault


@dataclass
class Live:
    authority: Identity
    alice: ChannelIdentity
    bob: ChannelIdentity
    carol: ChannelIdentity
    alice_credential: CredentialAndPurposeKey
    other_authority: Identity
    """An authority that issued nothing to anyone here."""
    expired: ChannelIdentity
    """A party whose attestation of its static key expired (real clock)."""
    future: ChannelIdentity
    """A party whose attestation of its static key is valid only from an hour ahead."""


async def party(vault: SoftwareVault, now: int, ttl: int = 86_400, attested_at: int | None = None
                ) -> tuple[Identity, ChannelIdentity]:
    """A new Ed25519 identity in ``vault`` and its side of secure channels (an attested,
    in-memory X25519 static key, valid ``ttl`` seconds from ``attested_at``, default ``now``)."""
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key, PurposePublicKey.secure_channel(static.public),
                                   now=now if attested_at is None else attested_at, ttl=ttl)
    return identity, ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))


async def _live() -> Live:
    now = int(time.time()) - 60
    vault = SoftwareVault()
    akey = await vault.generate_key(KeyType.ED25519)
    authority = await create_identity(vault, akey, now=now)
    sk = await vault.generate_key(KeyType.ED25519)
    satt = await attest_purpose_key(authority, vault, akey,
                                    PurposePublicKey.credential_signing(await vault.public_key(sk)),
                                    now=now, ttl=86_400)
    (alice_id, alice), (_, bob), (_, carol) = [await party(vault, now) for _ in range(3)]
    cred = await issue_credential(alice_id, {"role": "admin"}, vault, sk, satt,
                                  now=now, ttl=3_600)
    other = await create_identity(vault, await vault.generate_key(KeyType.ED25519), now=now)
    _, expired = await party(vault, now, ttl=30)
    _, future = await party(vault, now, attested_at=now + 3_600)
    return Live(authority, alice, bob, carol, cred, other, expired, future)


@cache
def live() -> Live:
    return asyncio.run(_live())


@asynccontextmanager
async def nodes(*names: str) -> AsyncIterator[list[Node]]:
    made = [Node(n) for n in names]
    try:
        for n in made:
            await n.start_services()
        yield made
    finally:
        for n in made:
            await n.stop()


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 to ``target`` (``host:port``) that records every byte both ways."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self._seen = bytearray()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address = ""

    def seen(self) -> bytes:
        return bytes(self._seen)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self._seen += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        r2, w2 = await asyncio.open_connection(*self.target)
        for t in (self._pipe(reader, w2), self._pipe(r2, writer)):
            task = asyncio.get_running_loop().create_task(t)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
