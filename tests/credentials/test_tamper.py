"""Single-byte tampering of an issued credential and of a presentation is always rejected.

Every byte position gets every single-bit flip plus 0x00, 0xFF and +/-1; every byte that is a
CBOR head (types, lengths, small integers, including the heads of the CBOR nested in byte
strings: VersionedData, CredentialData, attestations, disclosures, the holder's history) gets all
255 other values. (All 255 values at all ~1,100 positions would take minutes of signature checks;
the payload bytes in between are hashes, keys, signatures and timestamps, covered bit by bit.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.credentials.helpers import NOW, World, make_world, run
from trust.credentials.presentation import verify_presentation
from trust.credentials.verification import clear_cache, verify_credential
from trust.errors import DecodeError, TrustError
from trust.models.cbor import Reader
from trust.models.credential import CredentialAndPurposeKey, Presentation, clear_decode_caches


def head_positions(data: bytes, base: int = 0, depth: int = 0) -> set[int]:
    """Offsets of every CBOR head in ``data``, descending into byte strings that hold exactly
    one CBOR item."""
    out: set[int] = set()
    r = Reader(data)

    def item(d: int) -> None:
        out.add(base + r.pos)
        start = r.pos
        major, n = r._head("walk")
        if major == 2:
            inner = data[r.pos : r.pos + n]
            if depth < 8 and len(inner) > 1 and _is_one_item(inner):
                out.update(head_positions(inner, base + r.pos, depth + 1))
            r.pos += n
        elif major == 3:
            r.pos += n
        elif major == 4:
            for _ in range(n):
                item(d + 1)
        elif major == 5:
            for _ in range(2 * n):
                item(d + 1)
        assert r.pos > start

    item(0)
    assert r.at_end()
    return out


def _is_one_item(data: bytes) -> bool:
    r = Reader(data)
    try:
        r.skip("probe")
    except DecodeError:
        return False
    return r.at_end()


def mutations(raw: bytes) -> Iterator[bytes]:
    heads = head_positions(raw)
    for i, b in enumerate(raw):
        if i in heads:
            values = set(range(256))
        else:
            values = {b ^ (1 << k) for k in range(8)} | {0, 255, (b + 1) % 256, (b - 1) % 256}
        values.discard(b)
        for v in sorted(values):
            m = bytearray(raw)
            m[i] = v
            yield bytes(m)


def assert_all_rejected(raw: bytes, verify: Callable[[bytes], object]) -> int:
    verify(raw)  # the original is valid
    count = 0
    for m in mutations(raw):
        count += 1
        try:
            verify(m)
        except TrustError:
            continue
        i = next(j for j in range(len(raw)) if raw[j] != m[j])
        pytest.fail(f"byte {i} changed {raw[i]:#04x} -> {m[i]:#04x} was accepted")
    return count


@pytest.fixture(scope="module")
def world() -> World:
    return run(make_world())


def test_head_walker_finds_nested_structure(world: World) -> None:
    raw = run(world.issue()).encode()
    heads = head_positions(raw)
    # outer array, credential array, data bstr, VersionedData array inside it, ...
    assert {0, 1, 2} <= heads and 4 in heads and len(heads) > 40


@pytest.mark.parametrize("cache", [True, False], ids=["warm", "cold"])
def test_every_byte_change_of_an_issued_credential_is_rejected(world: World, cache: bool) -> None:
    raw = run(world.issue({"role": "admin", "level": "3"})).encode()
    clear_cache()
    clear_decode_caches()

    def verify(data: bytes) -> object:
        return verify_credential(CredentialAndPurposeKey.decode(data), [world.issuer], now=NOW,
                                 subject_identity=world.holder, cache=cache)

    assert assert_all_rejected(raw, verify) > 5000


def test_every_byte_change_of_a_presentation_is_rejected(world: World) -> None:
    held = run(world.issue_selective({"role": "admin", "level": "3"}, decoys=1))
    raw = run(world.present(held, ["role"])).encode()

    def verify(data: bytes) -> object:
        return verify_presentation(Presentation.decode(data), [world.issuer], audience="api",
                                   nonce="n-1", now=NOW)

    assert assert_all_rejected(raw, verify) > 10000
