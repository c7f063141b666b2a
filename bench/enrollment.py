"""Enrollment benchmark: enrollments/s against an authority on SQLite and on PostgreSQL, and
credential issuances/s over open channels next to the same signing in process.

* **One enrollment** = a fresh identity (made before timing: key, identity, secure-channel key
  and its attestation) opens a new secure channel to the authority over TCP on 127.0.0.1,
  redeems a 1-use ticket the admin made (before timing), gets its credential (with the
  redemption's answer: ``AuthorityClient.enroll``, one round trip), and closes the channel.
  The clients run in a separate process (this script with ``--client``), as 1 and as 20
  concurrent tasks; the authority runs in this process with its repository on SQLite (a
  file, WAL, ``synchronous=NORMAL`` as shipped) or on PostgreSQL (a private server started here
  with fsync on as shipped, or ``--postgres URL``). Cold: every identity is new to the
  authority. Each figure is the best of three rounds. Target: >= 200/s for each figure
  (``enrollments_per_s_{sqlite,postgres}_{1,20}``).
* **Credential issuances**: 20 members already enrolled, each with an open channel, fetch
  credentials in a loop (20 concurrent tasks, client process), next to ``issue_credential``
  (the same attributes, key and TTL) called in process. Ratio
  ``issue_over_channel/issue_in_process``.

* ``--cpu`` prints, per figure, the CPU time per enrollment (per credential) of the authority
  process (with its SQLite thread; PostgreSQL's own processes are not counted) and of the
  client process while the clients ran: load-independent figures next to the rates, which
  follow the machine's load.

    python bench/enrollment.py [--json] [--seconds S] [--postgres URL] [--loop L] [--cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from bench.timing import report
from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
from trust.credentials.issuance import issue_credential
from trust.enrollment.authority import start_authority
from trust.enrollment.client import AuthorityClient
from trust.enrollment.messages import OneTimeCode
from trust.enrollment.service import PROJECT_MEMBER_SCHEMA, AuthorityOptions
from trust.enrollment.signer import AuthoritySigner
from trust.identities.creation import create_identity
from trust.identities.identity import Identity, verify_change_history
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import Attributes
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.routing import Address, Route
from trust.storage.authority import SqlAuthorityRepository
from trust.storage.sql import database
from vaults.keys import KeyType
from vaults.software import SoftwareVault

CONCURRENCY = (1, 20)
ROUNDS = 3
LOOP = ["auto"]
CPU = [False]
ISSUE_MEMBERS = 20
TARGETS = ("targets: enrollments_per_s_{sqlite,postgres}_{1,20} >= 200; "
           "issue_over_channel/issue_in_process reported")


async def party(vault: SoftwareVault, now: int) -> tuple[Identity, ChannelIdentity]:
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.secure_channel(static.public), now=now,
                                   ttl=86_400)
    return identity, ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))


# -- the client process ------------------------------------------------------------------------

async def client_main(config: dict[str, Any]) -> dict[str, Any]:
    """Pre-make identities, say ready, then run what was asked; answer with the timings."""
    now = int(time.time()) - 60
    vault = SoftwareVault()
    authority = verify_change_history(bytes.fromhex(config["authority"]))
    route = Route([Address.tcp(config["address"]), "api"])
    node = Node("bench-clients")
    try:
        if config["mode"] == "enroll":
            codes = [OneTimeCode(bytes.fromhex(c)) for c in config["codes"]]
            sides = [(await party(vault, now))[1] for _ in codes]
            print(json.dumps({"ready": True}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            pairs = list(zip(sides, codes, strict=True))
            rounds = config["rounds"]
            per_round = len(pairs) // rounds
            failures = 0
            rates: list[float] = []
            cpu = time.process_time()
            for k in range(rounds):
                jobs = pairs[k * per_round:(k + 1) * per_round]

                async def worker(jobs: list[tuple[ChannelIdentity, OneTimeCode]]) -> None:
                    nonlocal failures
                    while jobs:
                        side, code = jobs.pop()
                        try:
                            client = await AuthorityClient.connect(node, side, route, authority,
                                                                   timeout=60)
                            try:
                                await client.enroll(code)
                            finally:
                                await client.close()
                        except Exception:
                            failures += 1

                start = time.perf_counter()
                await asyncio.gather(*[worker(jobs) for _ in range(config["concurrency"])])
                rates.append(per_round / (time.perf_counter() - start))
            return {"rates": rates, "failures": failures, "cpu": time.process_time() - cpu,
                    "n": per_round * rounds}
        # issue: members enrolled and connected before timing
        codes = [OneTimeCode(bytes.fromhex(c)) for c in config["codes"]]
        clients = []
        for code in codes:
            _, side = await party(vault, now)
            client = await AuthorityClient.connect(node, side, route, authority, timeout=60)
            await client.redeem(code)
            clients.append(client)
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        count = 0
        deadline = time.perf_counter() + config["seconds"]
        cpu = time.process_time()

        async def fetch(client: AuthorityClient) -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await client.get_credential()
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*[fetch(c) for c in clients])
        return {"rates": [count / (time.perf_counter() - start)], "failures": 0,
                "cpu": time.process_time() - cpu, "n": count}
    finally:
        await node.stop()


# -- PostgreSQL as shipped (fsync on) --------------------------------------------------------

def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    path = found[0] if found else shutil.which(name)
    if not path:
        raise SystemExit(f"bench/enrollment.py: PostgreSQL's {name} was not found (apt-get "
                         "install postgresql, or pass --postgres URL)")
    return path


@contextlib.contextmanager
def private_postgres() -> Any:
    """A throwaway PostgreSQL server with its default durability (fsync on, synchronous_commit
    on; only ``initdb`` skips syncing its set-up files); yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    try:
        subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                        "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],  # set-up only
                       check=True, capture_output=True, timeout=120)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-o",
                        f"-k {root} -p {port} -c listen_addresses=127.0.0.1", "-l",
                        str(root / "log"), "-w", "-t", "60", "start"], check=True,
                       capture_output=True, timeout=90)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                            "stop"], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the authority side ------------------------------------------------------------------------

async def make_authority() -> tuple[AuthoritySigner, ChannelIdentity]:
    """The authority's signer and its secure-channel identity."""
    now = int(time.time()) - 60
    vault = SoftwareVault()
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key, now=now)
    sk = await vault.generate_key(KeyType.ED25519)
    att = await attest_purpose_key(identity, vault, key, PurposePublicKey.credential_signing(
        await vault.public_key(sk)), now=now, ttl=86_400)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    satt = await attest_purpose_key(identity, vault, key,
                                    PurposePublicKey.secure_channel(static.public), now=now,
                                    ttl=86_400)
    return (AuthoritySigner(identity, vault, sk, att),
            ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), satt)))


async def run_clients(config: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--client", "--loop", LOOP[0],
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write((json.dumps(config) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise SystemExit("bench/enrollment.py: the client process failed to start")
        cpu = time.process_time()
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        out = await proc.stdout.readline()
        cpu = time.process_time() - cpu  # this process's CPU while the clients ran
        await proc.wait()
        if proc.returncode != 0 or not out:
            raise SystemExit("bench/enrollment.py: the client process failed")
        result: dict[str, Any] = json.loads(out)
        result["authority_cpu"] = cpu
        if result["failures"]:
            raise SystemExit(f"bench/enrollment.py: {result['failures']} enrollments failed")
        return result
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def measure(url: str, seconds: float, figures: dict[str, float], engine: str,
                  issue: dict[str, float] | None) -> None:
    signer, side = await make_authority()
    db = database(url)
    admin, admin_side = await party(SoftwareVault(), int(time.time()) - 60)
    node = Node("bench-authority")
    try:
        await node.create_secure_channel_listener(side)
        tcp = await node.create_tcp_listener("127.0.0.1:0")
        authority = await start_authority(
            node, signer, SqlAuthorityRepository(db, signer.identifier),
            AuthorityOptions(admins=frozenset({admin.identifier})), max_in_flight=256)
        route = Route([Address.tcp(tcp.address), "api"])
        admin_client = await AuthorityClient.connect(node, admin_side, route, signer.identity)
        base = {"authority": signer.identity.export_hex(), "address": tcp.address}

        async def tickets(n: int) -> list[str]:
            made = await asyncio.gather(*[admin_client.create_ticket({"bench": "yes"})
                                          for _ in range(n)])
            return [c.hex() for c in made]

        for conc in CONCURRENCY:
            # ROUNDS rounds of ``per_round`` enrollments each (about ``seconds`` in all at the
            # target rate); the best round counts, as a load that comes and goes would
            per_round = max(2 * conc, int(seconds * 200 / ROUNDS))
            n = per_round * ROUNDS
            codes = await tickets(n)
            r = await run_clients({**base, "mode": "enroll", "concurrency": conc,
                                   "rounds": ROUNDS, "codes": codes})
            if CPU[0]:
                print(f"{engine} {conc}: authority cpu/enrollment "
                      f"{r['authority_cpu'] / n * 1000:.2f} ms (with its database thread), "
                      f"client cpu/enrollment {r['cpu'] / n * 1000:.2f} ms, rounds "
                      f"{', '.join(f'{x:.0f}/s' for x in r['rates'])}", file=sys.stderr)
            figures[f"enrollments_per_s_{engine}_{conc}"] = round(max(r["rates"]), 1)
        if issue is not None:
            r = await run_clients({**base, "mode": "issue", "seconds": seconds,
                                   "codes": await tickets(ISSUE_MEMBERS)})
            issue["over_channel"] = r["rates"][0]
            if CPU[0]:
                print(f"issue over channel: authority cpu/credential "
                      f"{r['authority_cpu'] / r['n'] * 1000:.3f} ms, client cpu/credential "
                      f"{r['cpu'] / r['n'] * 1000:.3f} ms", file=sys.stderr)
            attrs = Attributes.of({"bench": "yes"}, PROJECT_MEMBER_SCHEMA)
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                await issue_credential(admin, attrs, signer.vault, signer.handle,
                                       signer.attestation, ttl=3600)
                count += 1
            issue["in_process"] = count / (time.perf_counter() - start)
        await admin_client.close()
        await authority.stop()
    finally:
        await node.stop()
        await db.close()


async def main_async(args: argparse.Namespace) -> None:
    figures: dict[str, float] = {}
    issue: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-enroll-") as tmp:
        await measure(f"sqlite:///{tmp}/authority.sqlite", args.seconds, figures, "sqlite",
                      issue)
    if args.postgres:
        await measure(args.postgres, args.seconds, figures, "postgres", None)
    else:
        with private_postgres() as url:
            await measure(url, args.seconds, figures, "postgres", None)
    figures["credential_issuances_per_s_over_channel"] = round(issue["over_channel"], 1)
    figures["credential_issuances_per_s_in_process"] = round(issue["in_process"], 1)
    ratios = {"issue_over_channel/issue_in_process":
              round(issue["over_channel"] / issue["in_process"], 3)}
    report(figures, ratios, as_json=args.json, targets=TARGETS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="about how long each figure is measured")
    ap.add_argument("--postgres", metavar="URL", help="an existing PostgreSQL database to use "
                    "(default: a private server started here, fsync on)")
    ap.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                    help="event loop of both processes (auto: uvloop when installed, as node "
                    "processes run)")
    ap.add_argument("--cpu", action="store_true",
                    help="also print each side's CPU time per enrollment (stderr)")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    runner: Any = asyncio.run
    if args.loop != "asyncio":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            if args.loop == "uvloop":
                raise SystemExit("uvloop is not installed") from None
    if args.client:
        config = json.loads(sys.stdin.readline())
        print(json.dumps(runner(client_main(config))), flush=True)
        return
    LOOP[0] = args.loop
    CPU[0] = args.cpu
    runner(main_async(args))


if __name__ == "__main__":
    main()
