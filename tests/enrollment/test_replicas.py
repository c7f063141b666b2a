"""Two authority processes sharing one PostgreSQL database behave as one authority: a ticket
made at one redeems at the other, and of 50 concurrent redemptions of a 1-use ticket spread
over both, exactly one succeeds."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tests.enrollment.helpers import make_party
from trust.enrollment.client import AuthorityClient
from trust.enrollment.errors import TicketUsedError
from trust.enrollment.signer import AuthoritySigner
from trust.identities.creation import create_identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.routing import Address, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault

ROOT = Path(__file__).resolve().parents[2]


async def test_two_processes_sharing_postgresql(postgres_url: str) -> None:
    now = int(time.time()) - 60
    vault = SoftwareVault()
    id_secret, sign_secret = secrets.token_bytes(32), secrets.token_bytes(32)
    key = await vault.import_key(KeyType.ED25519, id_secret)
    identity = await create_identity(vault, key, now=now)
    sk = await vault.import_key(KeyType.ED25519, sign_secret)
    satt = await attest_purpose_key(identity, vault, key, PurposePublicKey.credential_signing(
        await vault.public_key(sk)), now=now, ttl=3600)
    signer = AuthoritySigner(identity, vault, sk, satt)
    admin = await make_party(vault, now)
    parties = [await make_party(vault, now) for _ in range(50)]
    config = json.dumps({"url": postgres_url, "history": identity.export_hex(),
                         "identity_secret": id_secret.hex(), "signing_secret": sign_secret.hex(),
                         "attestation": satt.encode().hex(), "admins": [admin.identifier]})
    procs = [subprocess.Popen([sys.executable, "-m", "tests.enrollment.authority_process"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    node = Node("clients")
    try:
        ports = []
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write(config + "\n")
            p.stdin.flush()
            line = await asyncio.get_running_loop().run_in_executor(None, p.stdout.readline)
            ports.append(json.loads(line)["port"])
        routes = [Route([Address.tcp(f"127.0.0.1:{port}"), "api"]) for port in ports]

        async def client(party_side: object, i: int) -> AuthorityClient:
            return await AuthorityClient.connect(node, party_side, routes[i % 2], signer.identity,
                                                 timeout=20)

        admin_a = await client(admin.side, 0)
        admin_b = await client(admin.side, 1)
        clients = [await client(p.side, i) for i, p in enumerate(parties)]
        code = await admin_a.create_ticket({"replicated": "yes"})
        results = await asyncio.gather(*[c.redeem(code) for c in clients],
                                       return_exceptions=True)
        assert sum(isinstance(r, CredentialAndPurposeKey) for r in results) == 1, results
        assert all(isinstance(r, TicketUsedError) for r in results
                   if not isinstance(r, CredentialAndPurposeKey))
        members = await admin_b.list_members()
        assert len(members) == 1
        winner = next(p for p, r in zip(parties, results, strict=True)
                      if isinstance(r, CredentialAndPurposeKey))
        assert members[winner.identifier].attributes == {"replicated": "yes"}
        # a ticket made at one replica redeems at the other; the audit log is shared
        second = await admin_b.create_ticket({"x": "1"})
        loser = next(c for i, (c, r) in enumerate(zip(clients, results, strict=True))
                     if isinstance(r, TicketUsedError) and i % 2 == 0)     # connected to the first replica
        await loser.redeem(second)
        assert [e.action for e in await admin_a.audit()].count("ticket.redeem") == 2
    finally:
        await node.stop()
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
