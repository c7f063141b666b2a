"""Secure-channel benchmark, sans-IO part: handshakes and records, next to PyPI ``noiseprotocol``
(a bare ``Noise_XX_25519_AESGCM_SHA256`` handshake and transport) and raw ``cryptography``
AES-256-GCM, measured in the same run with interleaved rounds.

* Handshakes drive the two sans-IO machines directly (no node, no event loop). Every handshake
  uses fresh ephemeral keys and all six DH operations; the static keys live in a software vault.
  **Warm**: the same two identities again (only signature checks on byte-identical inputs are
  skipped; the attestation windows, the binding and the trust policy are checked every time).
  **Cold**: both identities come from a pre-built pool of single-change identities never seen
  before (creation untimed), so both histories and both attestations are verified; Ed25519 and
  P-256. The floor is 2 X25519 key generations + 6 DH, measured in the same run.
* Records: encrypt + decrypt with the CBOR envelope (one-address routes), nonce and replay window:
  1 KiB next to noiseprotocol's bare transport, one 65,536-byte payload next to raw AES-256-GCM
  encrypt + decrypt of the same bytes.

Figures are each function's best window; ratios the median of the per-round ratios (the rounds
alternate short windows, so a load that comes and goes hits both sides of a ratio alike). The
sans-IO parts are timed on this thread's CPU clock (``time.thread_time``), reading it once per
batch of calls (a batch takes about 0.5 ms): the machine the targets are checked on is shared,
and a wall clock would charge a function for the time the scheduler gave to other work. The
set-up objects (the identity pools) are frozen out of the garbage collector before measuring,
so its collections do not scan them in the middle of some function's window (``timeit`` turns
the collector off for the same reason; here it stays on for what the measured code allocates).
Targets: handshake_warm/noiseprotocol >= 1.3, handshake_cold_ed25519/noiseprotocol >= 0.6,
transport_1k/noiseprotocol >= 0.7, transport_64k/aesgcm >= 0.8.
* Nodes: messages/s and MB/s through a secure channel between two nodes over TCP on 127.0.0.1
  (one process, one event loop), next to the same traffic over plain TCP routing, 1 KiB and
  64 KiB payloads, sent one after another (each send waits only for space) to a counting worker,
  timed until the last one arrived. Ratio ``node_channel_64k/node_plain_64k``.

    python bench/channels.py [--json] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, bench/ would come first on sys.path and its policies.py/vaults.py would hide
# the packages of the same names: search the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from noise.connection import Keypair, NoiseConnection

from bench.timing import report
from trust.channels import (
    ChannelIdentity,
    IdentityAndCredentials,
    Initiator,
    PeerAuthenticator,
    RecordSession,
    Responder,
    VaultX25519Key,
)
from trust.identities.creation import create_identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.node import Context, Node
from trust.routing import Address, LocalMessage, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault

NOISE_NAME = b"Noise_XX_25519_AESGCM_SHA256"
SMALL = 1024
LARGE = 65_536
MAX_POOL = 40_000


# ---------------------------------------------------------------------------------------------
# set-up (untimed)


async def _identities(vault: SoftwareVault, key_type: KeyType, count: int) -> list[ChannelIdentity]:
    out = []
    for _ in range(count):
        key = await vault.generate_key(key_type)
        identity = await create_identity(vault, key)
        static = VaultX25519Key(vault, vault.generate_x25519())
        att = await attest_purpose_key(identity, vault, key,
                                       PurposePublicKey.secure_channel(static.public))
        out.append(ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att)))
    return out


def identities(key_type: KeyType, count: int) -> list[ChannelIdentity]:
    return asyncio.run(_identities(SoftwareVault(), key_type, count))


# ---------------------------------------------------------------------------------------------
# the measured operations


def ours_handshake(a: ChannelIdentity, b: ChannelIdentity, auth_a: PeerAuthenticator,
                   auth_b: PeerAuthenticator) -> None:
    ini = Initiator(a, auth_a)
    res = Responder(b, auth_b)
    m2 = res.receive(ini.start())[0]
    m3 = ini.receive(m2.data)[0]  # type: ignore[union-attr]
    res.receive(m3.data)  # type: ignore[union-attr]


def noise_pair() -> Callable[[], tuple[NoiseConnection, NoiseConnection]]:
    si = X25519PrivateKey.generate().private_bytes_raw()
    sr = X25519PrivateKey.generate().private_bytes_raw()

    def handshake() -> tuple[NoiseConnection, NoiseConnection]:
        i = NoiseConnection.from_name(NOISE_NAME)
        r = NoiseConnection.from_name(NOISE_NAME)
        i.set_as_initiator()
        r.set_as_responder()
        i.set_keypair_from_private_bytes(Keypair.STATIC, si)
        r.set_keypair_from_private_bytes(Keypair.STATIC, sr)
        i.start_handshake()
        r.start_handshake()
        r.read_message(i.write_message())
        i.read_message(r.write_message())
        r.read_message(i.write_message())
        return i, r

    return handshake


def signature_peers() -> dict[str, Callable[[], object]]:
    """Raw ``cryptography`` signature verification (key loaded): a cold handshake verifies four
    signatures (two histories, two attestations), so these bound it."""
    m = os.urandom(32)
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_pub, ed_sig = ed.public_key(), ed.sign(m)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p_pub, p_sig = p256.public_key(), p256.sign(m, ec.ECDSA(hashes.SHA256()))
    alg = ec.ECDSA(hashes.SHA256())
    return {"ed25519_verify": lambda: ed_pub.verify(ed_sig, m),
            "p256_verify": lambda: p_pub.verify(p_sig, m, alg)}


def floor() -> None:
    peer_e = X25519PrivateKey.generate().public_key()
    e1 = X25519PrivateKey.generate()
    e1.public_key().public_bytes_raw()
    e2 = X25519PrivateKey.generate()
    e2.public_key().public_bytes_raw()
    for _ in range(3):
        e1.exchange(peer_e)
        e2.exchange(peer_e)


CLOCK = time.thread_time
"""The sans-IO measuring clock: this thread's CPU time (see the module docstring)."""
BATCH_SECONDS = 0.0005


def batch_size(fn: Callable[[], object]) -> int:
    """How many calls of ``fn`` take about :data:`BATCH_SECONDS` (at least one)."""
    n = 1
    while True:
        start = CLOCK()
        for _ in range(n):
            fn()
        spent = CLOCK() - start
        if spent >= BATCH_SECONDS / 4 or n >= 1 << 16:
            return max(1, round(n * BATCH_SECONDS / max(spent, 1e-9)))
        n *= 4


def interleaved(fns: dict[str, Callable[[], object]], seconds: float, rounds: int = 10,
                batches: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Operations per second of each function in each round. The rounds alternate between the
    functions in short windows (a load that comes and goes hits all of them alike); figures
    take each function's best window, ratios the median of the per-round ratios (as
    bench/routing.py). ``seconds`` is the total measuring time per function; the clock is read
    after each batch of calls (``batches``, by default :func:`batch_size`)."""
    sizes = {name: (batches or {}).get(name) or batch_size(fn) for name, fn in fns.items()}
    out: dict[str, list[float]] = {name: [] for name in fns}
    window = seconds / rounds
    clock = CLOCK
    for _ in range(rounds):
        for name, fn in fns.items():
            batch = range(sizes[name])
            n = 0
            start = clock()
            while True:
                for _ in batch:
                    fn()
                n += len(batch)
                now = clock()
                if now - start >= window:
                    break
            out[name].append(n / (now - start))
    return out


def best(rates: list[float]) -> float:
    return max(rates)


def ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios ``a / b``."""
    return round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 3)


class Pool:
    """Fresh identity pairs, each used once."""

    def __init__(self, items: list[ChannelIdentity]) -> None:
        self.items = items
        self.next = 0

    def pair(self) -> tuple[ChannelIdentity, ChannelIdentity]:
        i = self.next
        if i + 2 > len(self.items):
            raise RuntimeError("the cold pool ran out (raise MAX_POOL or lower --seconds)")
        self.next = i + 2
        return self.items[i], self.items[i + 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0, help="per measured function")
    args = ap.parse_args()
    s = args.seconds

    warm_a, warm_b = identities(KeyType.ED25519, 2)
    auth_a, auth_b = PeerAuthenticator(), PeerAuthenticator()
    noise_handshake = noise_pair()

    def warm() -> None:
        ours_handshake(warm_a, warm_b, auth_a, auth_b)

    # how many cold handshakes the measuring time may need (a cold one is slower than a warm one;
    # the windows are CPU time, so the rate is too)
    warm()
    t = CLOCK()
    probes = 0
    while CLOCK() - t < 0.05:
        warm()
        probes += 1
    warm_rate = probes / (CLOCK() - t)
    need = min(MAX_POOL, int(2 * (warm_rate * s * 1.5 + 20)))
    pools = {kt: Pool(identities(kt, need)) for kt in (KeyType.ED25519, KeyType.P256)}
    gc.collect()
    gc.freeze()

    def cold(kt: KeyType) -> Callable[[], None]:
        pool = pools[kt]

        def run() -> None:
            a, b = pool.pair()
            ours_handshake(a, b, auth_a, auth_b)

        return run

    # a handshake takes about a millisecond: one per clock reading (and no pool pair spent on
    # calibrating)
    hs = interleaved({
        "noise": noise_handshake,
        "floor": floor,
        "warm": warm,
        "cold_ed25519": cold(KeyType.ED25519),
        "cold_p256": cold(KeyType.P256),
    }, s, batches={"noise": 1, "floor": 1, "warm": 1, "cold_ed25519": 1, "cold_p256": 1})
    sigs = interleaved(signature_peers(), s / 4, rounds=4)

    # -- records ---------------------------------------------------------------------------------
    ni, nr = noise_handshake()
    done = ours_handshake_keys(warm_a, warm_b)
    sa, sb = RecordSession(done[0]), RecordSession(done[1])
    onward, ret = Route(["echoer"]), Route(["app"])
    small, large = os.urandom(SMALL), os.urandom(LARGE)
    aead = AESGCM(os.urandom(32))
    iv = bytes(12)

    def ours_small() -> None:
        sb.decrypt(sa.encrypt_payload(onward, ret, small))

    def ours_large() -> None:
        sb.decrypt(sa.encrypt_payload(onward, ret, large))

    def noise_small() -> None:
        nr.decrypt(ni.encrypt(small))

    def raw_large() -> None:
        aead.decrypt(iv, aead.encrypt(iv, large, None), None)

    tr = interleaved({"ours_1k": ours_small, "noise_1k": noise_small, "ours_64k": ours_large,
                      "aesgcm_64k": raw_large}, s)

    nodes = asyncio.run(_node_rates(warm_a, warm_b, s))
    figures = {
        "handshake_warm_per_s": round(best(hs["warm"])),
        "handshake_cold_ed25519_per_s": round(best(hs["cold_ed25519"])),
        "handshake_cold_p256_per_s": round(best(hs["cold_p256"])),
        "floor_2_keygen_6_dh_per_s": round(best(hs["floor"])),
        "peer_noiseprotocol_handshake_per_s": round(best(hs["noise"])),
        "peer_cryptography_ed25519_verify_per_s": round(best(sigs["ed25519_verify"])),
        "peer_cryptography_p256_verify_per_s": round(best(sigs["p256_verify"])),
        "transport_1k_per_s": round(best(tr["ours_1k"])),
        "transport_1k_mb_per_s": round(best(tr["ours_1k"]) * SMALL / 1e6, 1),
        "peer_noiseprotocol_transport_1k_per_s": round(best(tr["noise_1k"])),
        "transport_64k_per_s": round(best(tr["ours_64k"])),
        "transport_64k_mb_per_s": round(best(tr["ours_64k"]) * LARGE / 1e6, 1),
        "peer_aesgcm_64k_per_s": round(best(tr["aesgcm_64k"])),
        "peer_aesgcm_64k_mb_per_s": round(best(tr["aesgcm_64k"]) * LARGE / 1e6, 1),
        "node_channel_1k_per_s": round(best(nodes["channel_1k"])),
        "node_channel_1k_mb_per_s": round(best(nodes["channel_1k"]) * SMALL / 1e6, 1),
        "node_plain_1k_per_s": round(best(nodes["plain_1k"])),
        "node_plain_1k_mb_per_s": round(best(nodes["plain_1k"]) * SMALL / 1e6, 1),
        "node_channel_64k_per_s": round(best(nodes["channel_64k"])),
        "node_channel_64k_mb_per_s": round(best(nodes["channel_64k"]) * LARGE / 1e6, 1),
        "node_plain_64k_per_s": round(best(nodes["plain_64k"])),
        "node_plain_64k_mb_per_s": round(best(nodes["plain_64k"]) * LARGE / 1e6, 1),
    }
    ratios = {
        "handshake_warm/noiseprotocol": ratio(hs["warm"], hs["noise"]),
        "handshake_cold_ed25519/noiseprotocol": ratio(hs["cold_ed25519"], hs["noise"]),
        "handshake_cold_p256/noiseprotocol": ratio(hs["cold_p256"], hs["noise"]),
        "handshake_warm/floor": ratio(hs["warm"], hs["floor"]),
        "transport_1k/noiseprotocol": ratio(tr["ours_1k"], tr["noise_1k"]),
        "transport_64k/aesgcm": ratio(tr["ours_64k"], tr["aesgcm_64k"]),
        "node_channel_1k/node_plain_1k": ratio(nodes["channel_1k"], nodes["plain_1k"]),
        "node_channel_64k/node_plain_64k": ratio(nodes["channel_64k"], nodes["plain_64k"]),
    }
    report(figures, ratios, as_json=args.json, width=12,
           targets="targets: handshake_warm/noiseprotocol >= 1.3, "
                   "handshake_cold_ed25519/noiseprotocol >= 0.6, transport_1k/noiseprotocol >= 0.7, "
                   "transport_64k/aesgcm >= 0.8")


async def _node_rates(a: ChannelIdentity, b: ChannelIdentity, seconds: float,
                      rounds: int = 4) -> dict[str, list[float]]:
    """Messages per second through a channel and over plain TCP (alternating rounds)."""
    out: dict[str, list[float]] = {}
    async with Node("alice") as alice, Node("bob") as bob:
        got = 0

        async def sink(ctx: Context, msg: LocalMessage) -> None:
            nonlocal got
            got += 1

        await bob.start_worker("sink", sink)
        bob.listener_consumers.add("sink")
        await bob.create_secure_channel_listener(b)
        tcp = await bob.create_tcp_listener("127.0.0.1:0")
        channel = await alice.create_secure_channel(a, [Address.tcp(tcp.address), "api"])
        routes = {"channel": channel.route / "sink", "plain": Route([Address.tcp(tcp.address), "sink"])}
        window = seconds / rounds
        for _ in range(rounds):
            for size in (SMALL, LARGE):
                payload = os.urandom(size)
                for kind, route in routes.items():
                    got = sent = 0
                    start = time.perf_counter()
                    while time.perf_counter() - start < window or sent < 2:
                        for _ in range(16):
                            await alice.send(route, payload)
                        sent += 16
                    while got < sent:
                        await asyncio.sleep(0.0005)
                    rate = sent / (time.perf_counter() - start)
                    out.setdefault(f"{kind}_{'64k' if size == LARGE else '1k'}", []).append(rate)
    return out


def ours_handshake_keys(a: ChannelIdentity, b: ChannelIdentity) -> tuple:  # type: ignore[type-arg]
    ini = Initiator(a)
    res = Responder(b)
    m2 = res.receive(ini.start())[0]
    m3, done_i = ini.receive(m2.data)  # type: ignore[union-attr]
    [done_r] = res.receive(m3.data)  # type: ignore[union-attr]
    return done_i.keys, done_r.keys  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
