"""Revocation lists: signed by the authority's credential-signing key, verified against the
authority; a lower version, a bad signature, another authority's list, or one from the future
is refused with a typed error."""

from __future__ import annotations

import time

import pytest

from tests.enrollment.helpers import make_world, world
from trust.enrollment.messages import Revoked, SignedRevocationList
from trust.enrollment.revocation import (
    StaleRevocationListError,
    build_revocation_list,
    sign_revocation_list,
    verify_revocation_list,
)
from trust.errors import DecodeError, UntrustedError, VerificationError

A = "I" + "aa" * 32
B = "I" + "bb" * 32


async def signed(version: int, entries: list[Revoked], now: int | None = None
                 ) -> SignedRevocationList:
    w = world()
    return await sign_revocation_list(
        build_revocation_list(w.signer.identity, version, entries, now=now), w.signer)


async def test_verify_accepts_the_authoritys_list() -> None:
    w = world()
    srl = await signed(4, [Revoked(B, 20), Revoked(A, 10)])
    data = verify_revocation_list(srl.encode(), w.signer.identity, previous=4)
    assert data.version == 4 and [e.identifier for e in data.revoked] == [A, B]
    assert data.is_revoked(A) and data.is_revoked(A, 10) and not data.is_revoked(A, 11)
    assert not data.is_revoked("I" + "cc" * 32)
    assert verify_revocation_list(srl, w.signer.identity, previous=data) == data


async def test_lower_version_is_refused() -> None:
    w = world()
    old = await signed(2, [])
    newer = verify_revocation_list(await signed(3, [Revoked(A, 1)]), w.signer.identity)
    with pytest.raises(StaleRevocationListError, match="lower"):
        verify_revocation_list(old, w.signer.identity, previous=newer)
    assert isinstance(StaleRevocationListError("x"), VerificationError)


async def test_bad_signature_is_refused() -> None:
    w = world()
    raw = bytearray((await signed(1, [Revoked(A, 1)])).encode())
    srl = SignedRevocationList.decode(bytes(raw))
    forged_data = bytearray(srl.data)
    forged_data[-1] ^= 1        # the last entry's revoked_at
    forged = SignedRevocationList(bytes(forged_data), srl.signature, srl.attestation)
    with pytest.raises(VerificationError, match="signature"):
        verify_revocation_list(forged.encode(), w.signer.identity)


async def test_another_authoritys_list_is_refused() -> None:
    w, other = world(), await make_world(0)
    theirs = await sign_revocation_list(build_revocation_list(other.signer.identity, 9, []),
                                        other.signer)
    with pytest.raises(UntrustedError):
        verify_revocation_list(theirs, w.signer.identity)
    # a list naming our authority but signed by another key: the attestation is not ours
    mixed = SignedRevocationList(
        build_revocation_list(w.signer.identity, 9, []).to_versioned(),
        theirs.signature, theirs.attestation)
    with pytest.raises(VerificationError):
        verify_revocation_list(mixed, w.signer.identity)


async def test_future_list_and_garbage_are_refused() -> None:
    w = world()
    future = await signed(1, [], now=int(time.time()) + 3600)
    with pytest.raises(VerificationError, match="future"):
        verify_revocation_list(future, w.signer.identity)
    with pytest.raises(DecodeError):
        verify_revocation_list(b"\x83\x40", w.signer.identity)


def test_duplicate_entries_are_refused() -> None:
    with pytest.raises(ValueError):
        build_revocation_list(A, 1, [Revoked(B, 1), Revoked(B, 2)], now=1)
