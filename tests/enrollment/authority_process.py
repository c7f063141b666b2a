"""An authority replica in a process of its own, for the tests that need several sharing one
PostgreSQL database: ``python -m tests.enrollment.authority_process`` reads one JSON line
(``url``, ``history``, ``identity_secret``, ``signing_secret``, ``attestation``, ``admins``:
hex and identifiers), serves on 127.0.0.1 (a free port, printed as one JSON line
``{"port": N}``) and stops when its standard input closes."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.enrollment.authority import start_authority
from trust.enrollment.service import AuthorityOptions
from trust.enrollment.signer import AuthoritySigner
from trust.identities.identity import verify_change_history
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from trust.node import Node
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database
from vaults.keys import KeyType
from vaults.software import SoftwareVault


async def serve(config: dict[str, Any]) -> None:
    vault = SoftwareVault()
    identity = verify_change_history(bytes.fromhex(config["history"]))
    key = await vault.import_key(KeyType.ED25519, bytes.fromhex(config["identity_secret"]))
    signing = await vault.import_key(KeyType.ED25519, bytes.fromhex(config["signing_secret"]))
    signer = AuthoritySigner(identity, vault, signing,
                             PurposeKeyAttestation.decode(bytes.fromhex(config["attestation"])))
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.secure_channel(static.public), ttl=3600)
    side = ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))
    db = database(config["url"])
    node = Node("replica")
    try:
        await node.create_secure_channel_listener(side)
        tcp = await node.create_tcp_listener("127.0.0.1:0")
        authority = await start_authority(
            node, signer, SqlAuthorityRepository(db, identity.identifier),
            AuthorityOptions(admins=frozenset(config["admins"])))
        print(json.dumps({"port": int(tcp.address.rpartition(":")[2])}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await authority.stop()
    finally:
        await node.stop()
        await db.close()


def main() -> None:
    asyncio.run(serve(json.loads(sys.stdin.readline())))


if __name__ == "__main__":
    main()
