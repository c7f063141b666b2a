"""Vault backend benchmark: signs/s and identity creations/s on each HSM/KMS backend next to the
in-process software vault, all measured in this run on this machine.

Backends as the tests run them, on 127.0.0.1: PKCS#11 = SoftHSM2 (a private token), AWS KMS =
moto's server in a subprocess over HTTP, GCP KMS = the real google-cloud-kms client over gRPC to
the fake KMS service of ``tests/fixtures``. The peer is :class:`vaults.software.SoftwareVault`.

- ``sign``: one ``vault.sign(handle, m)`` of a 32-byte ``m`` through the async vault interface,
  warm (session open, public key cached), P-256 and Ed25519 where the backend has it (moto has
  no Ed25519).
- ``identity_create``: a new key in the backend plus a signed one-change identity
  (``generate_key`` + ``trust.identities.creation.create_identity``).

    python bench/vaults.py [--json] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Run as a script, bench/ would come first on sys.path and its policies.py/vaults.py would hide
# the packages of the same names: search the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from tests.fixtures.gcp_kms_fake import FakeKmsServer
from tests.fixtures.servers import start_moto
from tests.fixtures.softhsm import start_softhsm
from trust.identities.creation import create_identity
from vaults.keys import KeyType
from vaults.signing import SigningVault
from vaults.software import SoftwareVault

KEY_RING = "projects/bench/locations/global/keyRings/bench"
M = hashlib.sha256(b"bench").digest()
AsyncFn = Callable[[], Awaitable[object]]
TAGS = ("software", "pkcs11", "aws_kms", "gcp_kms")


def rates(loop: asyncio.AbstractEventLoop, fns: dict[str, AsyncFn], seconds: float,
          rounds: int = 3) -> dict[str, float]:
    """Operations per second of each async function: rounds alternate between the functions (a
    load that comes and goes hits all alike) and the best window of each counts."""

    async def window(fn: AsyncFn, length: float) -> float:
        n = 0
        start = time.perf_counter()
        while True:
            await fn()
            n += 1
            now = time.perf_counter()
            if now - start >= length:
                return n / (now - start)

    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = max(best[name], loop.run_until_complete(window(fn, seconds / rounds)))
    return best


def functions(loop: asyncio.AbstractEventLoop, tag: str, vault: SigningVault,
              key_types: list[KeyType]) -> dict[str, AsyncFn]:
    fns: dict[str, AsyncFn] = {}
    for kt in key_types:
        handle = loop.run_until_complete(vault.generate_key(kt))
        loop.run_until_complete(vault.sign(handle, M))  # warm: public key cached

        def sign(h: str = handle) -> Awaitable[object]:
            return vault.sign(h, M)

        async def identity(k: KeyType = kt) -> object:
            return await create_identity(vault, await vault.generate_key(k))

        fns[f"{tag}_{kt.value}_sign"] = sign
        fns[f"{tag}_{kt.value}_identity_create"] = identity
    return fns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=1.5, help="per measured function")
    args = ap.parse_args()

    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():
        os.environ[k] = v
    hsm = start_softhsm()
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)  # before the PKCS#11 module is loaded
    moto = start_moto()
    gcp = FakeKmsServer()
    loop = asyncio.new_event_loop()
    vaults: list[Any] = []
    try:
        from tests.fixtures.gcp_kms_fake import make_client
        from vaults.aws_kms import AwsKmsVault
        from vaults.gcp_kms import GcpKmsVault
        from vaults.pkcs11 import Pkcs11Vault

        client = make_client(gcp.address)
        parent, _, ring = KEY_RING.rpartition("/keyRings/")
        client.create_key_ring(request={"parent": parent, "key_ring_id": ring}, retry=None, timeout=5)
        client.transport.close()

        both = [KeyType.P256, KeyType.ED25519]
        software = SoftwareVault()
        pkcs11 = Pkcs11Vault.open(hsm.uri(), hsm.pin)
        aws = AwsKmsVault(region="us-east-1", endpoint_url=moto.url, timeout=10)
        gcp_vault = GcpKmsVault(KEY_RING, endpoint=gcp.address, plaintext=True, timeout=10)
        vaults = [software, pkcs11, aws, gcp_vault]
        fns: dict[str, AsyncFn] = {}
        fns.update(functions(loop, "software", software, both))
        fns.update(functions(loop, "pkcs11", pkcs11, both))
        fns.update(functions(loop, "aws_kms", aws, [KeyType.P256]))
        fns.update(functions(loop, "gcp_kms", gcp_vault, both))
        figures = rates(loop, fns, args.seconds)
    finally:
        for v in vaults:
            loop.run_until_complete(v.close())
        loop.close()
        gcp.stop()
        moto.stop()
        hsm.stop()

    ratios = {}
    for name in figures:
        tag, op = _split(name)
        if tag != "software":
            ratios[f"{name}/software_{op}"] = round(figures[name] / figures[f"software_{op}"], 5)
    figures = {k: round(v, 1) for k, v in figures.items()}
    if args.json:
        print(json.dumps({"figures": figures, "ratios": ratios}))
        return
    print(f"{'operation':38} {'per second':>12}   ratio to the software vault")
    for name, value in figures.items():
        ratio = ratios.get(f"{name}/software_{_split(name)[1]}")
        print(f"{name:38} {value:12,.1f}   {'' if ratio is None else f'{ratio:.4f}x'}")


def _split(name: str) -> tuple[str, str]:
    """("pkcs11", "p256_sign") from "pkcs11_p256_sign"."""
    for tag in TAGS:
        if name.startswith(tag + "_"):
            return tag, name[len(tag) + 1:]
    raise ValueError(name)

if __name__ == "__main__":
    main()
