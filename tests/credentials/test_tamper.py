"""Single-byte tampering of an issued credential and of a presentation is always rejected.

Exhaustive: every byte position gets all 255 other values. The sweep is split over two worker
processes (each verification of a changed payload byte costs signature checks). The head walker
below also checks that the CBOR nested in byte strings is reached by the sweep.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.credentials.helpers import NOW, World, make_world, run
from trust.credentials.presentation import verify_presentation
from trust.credentials.verification import clear_cache, verify_credential
from trust.errors import DecodeError, TrustError
from trust.identities.identity import Identity, verify_change_history
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


def _verify(kind: str, data: bytes, issuer: Identity, holder: Identity, cache: bool) -> object:
    if kind == "credential":
        return verify_credential(CredentialAndPurposeKey.decode(data), [issuer], now=NOW,
                                 subject_identity=holder, cache=cache)
    return verify_presentation(Presentation.decode(data), [issuer], audience="api",
                               nonce="n-1", now=NOW)


def _sweep(kind: str, raw: bytes, issuer_history: bytes, holder_history: bytes, cache: bool,
           positions: range) -> tuple[int, list[tuple[int, int]]]:
    """Try all 255 other values at each position; return (count, accepted changes)."""
    issuer = verify_change_history(issuer_history)
    holder = verify_change_history(holder_history)
    accepted = []
    count = 0
    for i in positions:
        for v in range(256):
            if v == raw[i]:
                continue
            count += 1
            try:
                _verify(kind, raw[:i] + bytes((v,)) + raw[i + 1 :], issuer, holder, cache)
            except TrustError:
                continue
            accepted.append((i, v))
    return count, accepted


def assert_all_rejected(kind: str, raw: bytes, world: World, cache: bool = True) -> int:
    _verify(kind, raw, world.issuer, world.holder, cache)  # the original is valid
    chunks = [range(i, min(i + 24, len(raw))) for i in range(0, len(raw), 24)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = list(pool.map(_sweep, *zip(*[
            (kind, raw, world.issuer.export(), world.holder.export(), cache, c) for c in chunks
        ], strict=True)))
    count = sum(n for n, _ in results)
    accepted = [a for _, acc in results for a in acc]
    assert accepted == [], f"accepted single-byte changes (position, value): {accepted[:10]}"
    assert count == 255 * len(raw)
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
    assert assert_all_rejected("credential", raw, world, cache) > 50_000


def test_every_byte_change_of_a_presentation_is_rejected(world: World) -> None:
    held = run(world.issue_selective({"role": "admin", "level": "3"}, decoys=1))
    raw = run(world.present(held, ["role"])).encode()
    assert assert_all_rejected("presentation", raw, world) > 100_000
