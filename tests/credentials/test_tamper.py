"""Single-byte tampering of an issued credential and of a presentation is always rejected.

Exhaustive where it proves something new, sampled where the same code already saw every value:

* an issued credential, verified with the cache on (the configuration services run): every byte
  position gets all 255 other values;
* the same credential with the cache off: the cache is keyed by the exact bytes of the issuer's
  history and the attestation, so a changed input misses it and runs the very checks of the cold
  path; the cold sweep therefore gives all 255 values to every CBOR head (structure, lengths,
  types) and three values (low bit, high bit, all bits flipped) to every other byte;
* a presentation: all 255 values at every byte of its own (holder history, disclosures,
  audience, nonce, time, holder signature), and the sampled set inside the embedded credential,
  whose bytes the holder's signature covers and whose every change the first sweep already tried.

The sweeps are split over two worker processes (a changed payload byte costs signature checks).
The head walker below also checks that the CBOR nested in byte strings is reached.
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


SAMPLED_FLIPS = (0x01, 0x80, 0xFF)
"""XOR masks tried at a byte whose every value another sweep already tried."""


def values_at(raw: bytes, i: int, exhaustive: bool) -> list[int]:
    """The changed values tried at position ``i``."""
    if exhaustive:
        return [v for v in range(256) if v != raw[i]]
    return [raw[i] ^ m for m in SAMPLED_FLIPS]


def _sweep(kind: str, raw: bytes, issuer_history: bytes, holder_history: bytes, cache: bool,
           positions: list[tuple[int, bool]]) -> tuple[int, list[tuple[int, int]]]:
    """Try the changed values at each (position, exhaustive); return (count, accepted)."""
    issuer = verify_change_history(issuer_history)
    holder = verify_change_history(holder_history)
    accepted = []
    count = 0
    for i, exhaustive in positions:
        for v in values_at(raw, i, exhaustive):
            count += 1
            try:
                _verify(kind, raw[:i] + bytes((v,)) + raw[i + 1 :], issuer, holder, cache)
            except TrustError:
                continue
            accepted.append((i, v))
    return count, accepted


def assert_all_rejected(kind: str, raw: bytes, world: World, cache: bool = True,
                        sampled: range = range(0)) -> int:
    """Sweep ``raw``: all 255 values everywhere, except in ``sampled`` outside CBOR heads."""
    _verify(kind, raw, world.issuer, world.holder, cache)  # the original is valid
    heads = head_positions(raw)
    plan = [(i, i in heads or i not in sampled) for i in range(len(raw))]
    chunks = [plan[i : i + 24] for i in range(0, len(plan), 24)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = list(pool.map(_sweep, *zip(*[
            (kind, raw, world.issuer.export(), world.holder.export(), cache, c) for c in chunks
        ], strict=True)))
    count = sum(n for n, _ in results)
    accepted = [a for _, acc in results for a in acc]
    assert accepted == [], f"accepted single-byte changes (position, value): {accepted[:10]}"
    assert count == sum(len(values_at(raw, i, ex)) for i, ex in plan)
    return count


@pytest.fixture(scope="module")
def world() -> World:
    return run(make_world())


def test_head_walker_finds_nested_structure(world: World) -> None:
    raw = run(world.issue()).encode()
    heads = head_positions(raw)
    # outer array, credential array, data bstr, VersionedData array inside it, ...
    assert {0, 1, 2} <= heads and 4 in heads and len(heads) > 40


def test_every_byte_change_of_an_issued_credential_is_rejected(world: World) -> None:
    raw = run(world.issue({"role": "admin", "level": "3"})).encode()
    clear_cache()
    clear_decode_caches()
    assert assert_all_rejected("credential", raw, world, cache=True) == 255 * len(raw)


def test_structural_and_bit_changes_are_rejected_without_the_cache(world: World) -> None:
    raw = run(world.issue({"role": "admin", "level": "3"})).encode()
    clear_cache()
    clear_decode_caches()
    count = assert_all_rejected("credential", raw, world, cache=False, sampled=range(len(raw)))
    heads = len(head_positions(raw))
    assert count == 255 * heads + 3 * (len(raw) - heads)


def test_every_byte_change_of_a_presentation_is_rejected(world: World) -> None:
    held = run(world.issue_selective({"role": "admin", "level": "3"}, decoys=1))
    raw = run(world.present(held, ["role"])).encode()
    inner = held.credential.encode()
    start = raw.find(inner)
    assert start > 0 and raw.find(inner, start + 1) == -1
    count = assert_all_rejected("presentation", raw, world,
                                sampled=range(start, start + len(inner)))
    assert count > 255 * (len(raw) - len(inner))
