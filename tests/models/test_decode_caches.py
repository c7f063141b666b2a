"""Every decode and verification cache is bounded by the bytes it holds (issue 9, item 8).

Before: the holder-history cache kept 1024 decoded histories of any size before any signature
check (1024 distinct 1 MB presentations pinned 5.3 GB); the other caches were bounded only by
their number of entries.
"""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from tests.credentials.helpers import NOW, make_world, run
from trust.credentials.issuance import issue_credential
from trust.credentials.verification import cache_info, clear_cache, verify_credential
from trust.identities.creation import create_identity
from trust.identities.identity import Identity, verify_change_history
from trust.identities.identity import cache_info as identity_cache_info
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.change_history import Change, ChangeData, ChangeHistory
from trust.models.credential import (
    CredentialAndPurposeKey,
    Presentation,
    PresentationData,
    clear_decode_caches,
    decode_cache_info,
)
from trust.models.memo import ENTRY_OVERHEAD, BoundedCache, caches, decoded_size
from trust.models.primitives import PublicKey, Signature
from trust.models.purpose_key import PurposeKeyAttestation, PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_decode_caches()
    clear_cache()
    yield
    clear_decode_caches()
    clear_cache()


def _garbage_changes(n: int, first: Change | None = None) -> list[Change]:
    """``n`` changes that decode (unsigned: decoding checks no signature), after ``first``."""
    changes = [] if first is None else [first]
    prev = None if first is None else first.change_hash
    while len(changes) < n:
        data = ChangeData(prev, PublicKey(KeyType.ED25519, os.urandom(32)), False, NOW - 10_000,
                          NOW + 10**8).to_versioned()
        sig = Signature(KeyType.ED25519, os.urandom(64))
        change = Change(data, sig, None if not changes else Signature(KeyType.ED25519, sig.data))
        changes.append(change)
        prev = change.change_hash
    return changes


def _history(n: int) -> bytes:
    return ChangeHistory(tuple(_garbage_changes(n))).encode()


def test_bounded_cache_accounts_bytes_and_refuses_large_entries() -> None:
    c: BoundedCache[bytes, int] = BoundedCache("test.unit", 10_000, max_entry=3_000)
    assert not c.put(b"big", 1, 3_001) and b"big" not in c
    for i in range(100):
        assert c.put(bytes([i]), i, 1_000 + i)
        assert c.size <= 10_000
    assert len(c) < 10 and c.get(bytes([99])) == 99 and c.get(bytes([0])) is None
    c.put(bytes([99]), 7, 2_000)  # replacing an entry re-accounts it
    assert c.get(bytes([99])) == 7 and c.size == sum(
        (1_000 + i) for i in range(100) if bytes([i]) in c and i != 99) + 2_000
    c.resize(2_500)
    assert c.size <= 2_500 and c.info().max_entry == 2_500
    c.clear()
    assert c.size == 0 and len(c) == 0
    assert caches()["test.unit"] is c


def test_every_cache_is_bounded_by_bytes() -> None:
    import trust.credentials.verification
    import trust.identities.identity  # noqa: F401

    names = set(caches())
    assert {"models.attestations", "models.holder_histories",
            "credentials.attestation_verifications", "identities.verified_histories"} <= names
    for c in caches().values():
        info = c.info()
        assert 0 < info.max_entry <= info.max_bytes <= 64 * MiB, info


def _presentation(held_raw: bytes, holder: ChangeHistory, holder_raw: bytes) -> bytes:
    """A presentation (signature not checked by decoding) carrying ``holder_raw``."""
    cpk = CredentialAndPurposeKey.decode(held_raw)
    data = PresentationData(cpk, (), holder, "api", "n", NOW, held_raw, holder_raw).to_versioned()
    return Presentation(data, Signature(KeyType.ED25519, b"\0" * 64)).encode()


def test_holder_histories_of_distinct_large_presentations_are_not_pinned() -> None:
    world = run(make_world())
    held = run(world.issue_selective()).credential.encode()
    clear_decode_caches()
    # a large history (about 270 KB) made distinct by its first change, several times: before,
    # every decoded history stayed in memory (about five times its size)
    tail = _garbage_changes(1_200)
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        total = 0
        for _ in range(9):
            first = _garbage_changes(1)[0]
            history = ChangeHistory((first, *_garbage_changes(2, first)[1:], *tail[2:]))
            raw = history.encode()
            p = Presentation.decode(_presentation(held, history, raw))
            assert p.presentation_data.holder_raw == raw
            total += len(raw)
            info = decode_cache_info()["holder_histories"]
            assert info.bytes <= info.max_bytes
            del p, raw, history
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 2 * MiB
    assert retained - base < 4 * MiB, f"{(retained - base) / MiB:.1f} MiB retained"
    # small histories (the usual case) are still cached: the second decode reuses the first
    small = world.holder.change_history
    a = Presentation.decode(_presentation(held, small, small.encode())).presentation_data.holder
    b = Presentation.decode(_presentation(held, small, small.encode())).presentation_data.holder
    assert a is b


def test_attestation_decode_cache_is_bounded() -> None:
    world = run(make_world())
    cpk = run(world.issue())
    att = cpk.purpose_key_attestation
    for _ in range(6_000):
        forged = PurposeKeyAttestation(att.data, Signature(KeyType.ED25519, os.urandom(64)))
        decoded = CredentialAndPurposeKey.decode(
            CredentialAndPurposeKey(cpk.credential, forged).encode())
        assert decoded.purpose_key_attestation.signature == forged.signature
    info = decode_cache_info()["attestations"]
    assert 0 < info.bytes <= info.max_bytes and info.entries < 6_000


def test_attestation_verification_cache_is_bounded_by_the_issuers_bytes() -> None:
    """Distinct large issuer histories (each with the same first change, which attested the
    signing key) fill the verification cache: its accounted bytes stay within its bound."""
    async def setup() -> tuple[SoftwareVault, str, Change, CredentialAndPurposeKey]:
        v = SoftwareVault()
        ik = await v.generate_key(KeyType.ED25519)
        data = ChangeData(None, await v.public_key(ik), False, NOW - 10_000,
                          NOW + 10**8).to_versioned()
        sig = await v.sign(ik, hashlib.sha256(data).digest())
        first = Change(data, Signature(KeyType.ED25519, sig))
        issuer = Identity(ChangeHistory((first,)), ChangeHistory((first,)).encode())
        sk = await v.generate_key(KeyType.ED25519)
        att = await attest_purpose_key(issuer, v, ik,
                                       PurposePublicKey.credential_signing(await v.public_key(sk)),
                                       now=NOW - 5_000, expires_at=NOW + 10**6)
        hk = await v.generate_key(KeyType.ED25519)
        holder = await create_identity(v, hk, now=NOW - 9_000)
        cpk = await issue_credential(holder, {"role": "admin"}, v, sk, att, now=NOW, ttl=1_000)
        return v, ik, first, cpk

    _, _, first, cpk = run(setup())
    tail = _garbage_changes(1_000, first)
    cache = caches()["credentials.attestation_verifications"]
    old = cache.info()
    cache.resize(2 * MiB)
    try:
        fed = 0
        for n in range(500, 1_000, 25):  # 20 distinct histories of 115 KB to 230 KB
            history = ChangeHistory(tuple(tail[:n]))
            raw = history.encode()
            v = verify_credential(cpk, [Identity(history, raw)], now=NOW)
            assert v.attributes == {b"role": b"admin"}
            fed += len(raw)
            info = cache_info()
            assert info.bytes <= info.max_bytes == 2 * MiB
        assert fed > 2 * MiB and 0 < cache_info().entries < 20
    finally:
        cache.clear()
        cache.resize(old.max_bytes, old.max_entry)


def test_verified_history_cache_is_bounded() -> None:
    """Distinct valid histories (the prefixes of one real chain) against a smaller bound."""
    async def chain(n: int) -> list[bytes]:
        v = SoftwareVault()
        k = await v.generate_key(KeyType.ED25519)
        key = await v.public_key(k)
        changes: list[Change] = []
        out = []
        for i in range(n):
            data = ChangeData(changes[-1].change_hash if changes else None, key, False,
                              NOW - 10_000, NOW + 10**8).to_versioned()
            m = hashlib.sha256(data).digest()
            sig = Signature(KeyType.ED25519, await v.sign(k, m))
            changes.append(Change(data, sig, sig if i else None))
            out.append(ChangeHistory(tuple(changes)).encode())
        return out

    histories = run(chain(60))[20:]
    cache = caches()["identities.verified_histories"]
    old = cache.info()
    cache.clear()
    cache.resize(256 * 1024)
    try:
        for raw in histories:
            assert verify_change_history(raw, cache=True).raw == raw
            assert identity_cache_info().bytes <= 256 * 1024
        assert sum(decoded_size(h) for h in histories) > 256 * 1024
        assert identity_cache_info().entries < len(histories)
        assert verify_change_history(histories[-1], cache=True) is verify_change_history(
            histories[-1], cache=True)  # still a cache
    finally:
        cache.clear()
        cache.resize(old.max_bytes, old.max_entry)


def test_entry_overhead_is_charged_for_tiny_entries() -> None:
    assert decoded_size(b"") == ENTRY_OVERHEAD
