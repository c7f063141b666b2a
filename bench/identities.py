"""Identity benchmark: creations/s, change-history verifications/s (1 and 5 changes, cold and
warm), attestation verifications/s, next to raw `cryptography` Ed25519 verify (key loaded).

Cold = no cache of verified histories: every verification decodes the history and loads the keys
from its bytes. Warm = the verified-history cache is filled. Target: cold 1-change verify >= 0.85x
the raw Ed25519 verify rate.

    python bench/identities.py [--json] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, bench/ would come first on sys.path and its policies.py/vaults.py would hide
# the packages of the same names: search the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.timing import rates, report
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Identity, clear_cache, verify_change_history
from trust.identities.purpose_keys import attest_purpose_key, verify_purpose_key_attestation
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault


async def build(changes: int) -> tuple[Identity, SoftwareVault, str]:
    vault = SoftwareVault()
    handle = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, handle)
    for _ in range(changes - 1):
        new = await vault.generate_key(KeyType.ED25519)
        identity = await rotate_identity(identity, vault, handle, vault, new)
        handle = new
    return identity, vault, handle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measured function")
    args = ap.parse_args()
    s = args.seconds

    one, vault, handle = asyncio.run(build(1))
    five, _, _ = asyncio.run(build(5))
    att = asyncio.run(attest_purpose_key(one, vault, handle,
                                         PurposePublicKey.secure_channel(b"\x07" * 32)))
    att_raw = att.encode()
    raw1, raw5 = one.export(), five.export()

    # peer: raw cryptography Ed25519 verify, public key already loaded
    sk = ed25519.Ed25519PrivateKey.generate()
    pk = sk.public_key()
    m = hashlib.sha256(b"message").digest()
    sig = sk.sign(m)
    def cold(raw: bytes) -> Callable[[], object]:
        return lambda: verify_change_history(raw)

    clear_cache()
    verify_change_history(raw1, cache=True)
    verify_change_history(raw5, cache=True)
    r = rates({
        "raw": (lambda: pk.verify(sig, m), 50),
        "cold_1": (cold(raw1), 50),
        "cold_5": (cold(raw5), 10),
        "warm_1": (lambda: verify_change_history(raw1, cache=True), 1000),
        "warm_5": (lambda: verify_change_history(raw5, cache=True), 1000),
        "att_cold": (lambda: verify_purpose_key_attestation(
            verify_change_history(raw1), PurposeKeyAttestation.decode(att_raw)), 20),
        "att_warm": (lambda: verify_purpose_key_attestation(
            verify_change_history(raw1, cache=True), PurposeKeyAttestation.decode(att_raw)), 50),
    }, s)
    raw_verify, cold_1, cold_5 = r["raw"], r["cold_1"], r["cold_5"]
    warm_1, warm_5, att_cold, att_warm = r["warm_1"], r["warm_5"], r["att_cold"], r["att_warm"]

    async def creates(n: int) -> float:
        v = SoftwareVault()
        t = time.perf_counter()
        for _ in range(n):
            h = await v.generate_key(KeyType.ED25519)
            await create_identity(v, h)
        return n / (time.perf_counter() - t)

    created = max(asyncio.run(creates(max(200, int(2000 * s / 1.5)))) for _ in range(2))

    figures = {
        "identities_created_per_s": round(created),
        "verify_1_change_cold_per_s": round(cold_1),
        "verify_5_changes_cold_per_s": round(cold_5),
        "verify_1_change_warm_per_s": round(warm_1),
        "verify_5_changes_warm_per_s": round(warm_5),
        "attestation_verify_cold_per_s": round(att_cold),
        "attestation_verify_warm_per_s": round(att_warm),
        "peer_cryptography_ed25519_verify_per_s": round(raw_verify),
    }
    ratios = {
        "verify_1_change_cold/ed25519_verify": round(cold_1 / raw_verify, 3),
        "verify_5_changes_cold/ed25519_verify": round(cold_5 / raw_verify, 3),
        "attestation_verify_warm/ed25519_verify": round(att_warm / raw_verify, 3),
    }
    report(figures, ratios, as_json=args.json,
           targets="target: verify_1_change_cold/ed25519_verify >= 0.85")


if __name__ == "__main__":
    main()
