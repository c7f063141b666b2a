"""Real-clock identities, an authority and nodes on 127.0.0.1 for the relying-side tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.credentials.issuance import issue_credential
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from trust.node import Node
from vaults.keys import KeyType
from vaults.software import SoftwareVault


@dataclass
class Party:
    identity: Identity
    channel: ChannelIdentity

    @property
    def identifier(self) -> str:
        return self.identity.identifier


@dataclass
class Authority:
    identity: Identity
    vault: SoftwareVault
    key: str
    signing_key: str
    signing_attestation: PurposeKeyAttestation
    channel: ChannelIdentity

    @property
    def identifier(self) -> str:
        return self.identity.identifier

    async def issue(self, subject: Identity, attributes: dict[str, str], *, ttl: int = 3600,
                    now: int | None = None) -> CredentialAndPurposeKey:
        return await issue_credential(subject, attributes, self.vault, self.signing_key,
                                      self.signing_attestation,
                                      now=int(time.time()) - 5 if now is None else now, ttl=ttl)


async def party(vault: SoftwareVault) -> Party:
    now = int(time.time()) - 60
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key, PurposePublicKey.secure_channel(static.public),
                                   now=now, ttl=86_400)
    return Party(identity, ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att)))


async def authority(vault: SoftwareVault) -> Authority:
    now = int(time.time()) - 120
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    sk = await vault.generate_key(KeyType.ED25519)
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.credential_signing(await vault.public_key(sk)),
                                   now=now, ttl=86_400)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    sc = await attest_purpose_key(identity, vault, key, PurposePublicKey.secure_channel(static.public),
                                  now=now, ttl=86_400)
    return Authority(identity, vault, key, sk, att,
                     ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), sc)))


@asynccontextmanager
async def nodes(*names: str) -> AsyncIterator[list[Node]]:
    made = [Node(n) for n in names]
    try:
        yield made
    finally:
        for n in made:
            await n.stop()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def run(test: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))
