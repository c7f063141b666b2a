"""Selective disclosure: issuance, presentations, and every reason to reject one."""

from __future__ import annotations

import hashlib

import pytest

from tests.credentials.helpers import NOW, World, make_world, run
from trust.credentials.issuance import sign_credential_data
from trust.credentials.presentation import (
    MAX_AGE,
    MAX_FUTURE,
    VerifiedPresentation,
    verify_presentation,
)
from trust.credentials.verification import verify_credential
from trust.errors import DecodeError, NotFoundError, UntrustedError, UsageError, VerificationError
from trust.identities.creation import rotate_identity
from trust.identities.identity import Identity
from trust.models.credential import (
    CredentialAndPurposeKey,
    DisclosableCredential,
    Disclosure,
    Presentation,
    PresentationData,
    SelectiveCredentialData,
    decode_artifact,
)
from trust.models.primitives import Signature
from vaults.keys import KeyType

SECRET = {"role": "admin", "clearance": "cosmic-top-secret", "salary": "987654321",
          "nickname": "zanzibar-quokka", "region": "eu-west"}


@pytest.fixture(scope="module")
def world() -> World:
    return run(make_world())


def _verify(w: World, p: Presentation, *, audience: str = "api", nonce: str = "n-1",
            now: int = NOW, known_holder: Identity | None = None) -> VerifiedPresentation:
    # through the bytes, as a verifier receives it
    return verify_presentation(Presentation.decode(p.encode()), [w.issuer], audience=audience,
                               nonce=nonce, now=now, known_holder=known_holder)


async def _sign_presentation(holder: Identity, w: World, handle: str,
                             data: PresentationData) -> Presentation:
    raw = data.to_versioned()
    sig = await w.vault.sign(handle, hashlib.sha256(raw).digest())
    return Presentation(raw, Signature(holder.latest_public_key.key_type, sig))


def test_selective_issuance_shape(world: World) -> None:
    held = run(world.issue_selective(SECRET, decoys=3))
    c = held.credential.credential
    assert c.is_selective and c.data_type == 128
    assert c.data[:4] == b"\x83\x01\x18\x80"  # VersionedData [1, 128, ...]
    payload = c.payload
    assert isinstance(payload, SelectiveCredentialData)
    assert len(payload.digests) == len(SECRET) + 3
    assert list(payload.digests) == sorted(payload.digests)
    assert {d.digest for d in held.disclosures} < set(payload.digests)
    for d in held.disclosures:
        assert len(d.salt) == 16 and d.raw[:2] == b"\x83\x50"
        assert hashlib.sha256(d.raw).digest() == d.digest
    raw = held.encode()
    assert DisclosableCredential.decode(raw) == held and decode_artifact(raw) == held
    # salts are fresh: the same attributes give different digests
    again = run(world.issue_selective(SECRET))
    again_payload = again.credential.credential.payload
    assert isinstance(again_payload, SelectiveCredentialData)
    assert set(again_payload.digests).isdisjoint(payload.digests)
    # the holder's copy verifies in full; nothing is revealed without disclosures
    v = verify_credential(held.credential, [world.issuer], now=NOW, disclosures=held.disclosures)
    assert {k.decode(): x.decode() for k, x in v.attributes.items()} == SECRET
    assert v.selective and v.hidden == 3
    bare = verify_credential(held.credential, [world.issuer], now=NOW)
    assert bare.attributes == {} and bare.hidden == len(SECRET) + 3


def test_presentation_reveals_only_what_is_chosen(world: World) -> None:
    held = run(world.issue_selective(SECRET, decoys=2))
    p = run(world.present(held, ["role", "region"]))
    raw = p.encode()
    for name in ("clearance", "salary", "nickname"):
        assert name.encode() not in raw
        assert SECRET[name].encode() not in raw
    assert b"role" in raw and b"eu-west" in raw
    v = _verify(world, p)
    assert v.attributes == {b"region": b"eu-west", b"role": b"admin"}
    assert v.credential.hidden == 5 and v.holder.identifier == world.holder.identifier
    assert (v.audience, v.nonce, v.presented_at) == ("api", "n-1", NOW)
    # revealing nothing proves possession only
    assert _verify(world, run(world.present(held, []))).attributes == {}


def test_wrong_audience_and_nonce(world: World) -> None:
    p = run(world.present(run(world.issue_selective()), ["role"]))
    with pytest.raises(UntrustedError, match="audience 'api', not 'other'"):
        _verify(world, p, audience="other")
    with pytest.raises(VerificationError, match="different nonce"):
        _verify(world, p, nonce="n-2")


def test_freshness_window_edges(world: World) -> None:
    assert (MAX_AGE, MAX_FUTURE) == (300, 60)
    p = run(world.present(run(world.issue_selective()), ["role"]))
    _verify(world, p, now=NOW + 300)
    with pytest.raises(VerificationError, match="stale"):
        _verify(world, p, now=NOW + 301)
    _verify(world, p, now=NOW - 60)
    with pytest.raises(VerificationError, match="future"):
        _verify(world, p, now=NOW - 61)


def test_disclosure_from_another_credential_is_rejected(world: World) -> None:
    a = run(world.issue_selective({"role": "member", "team": "blue"}))
    b = run(world.issue_selective({"role": "admin", "team": "blue"}))
    foreign = next(d for d in b.disclosures if d.name == b"role")
    own_team = next(d for d in a.disclosures if d.name == b"team")
    data = PresentationData(a.credential, (foreign, own_team), world.holder.change_history, "api",
                            "n-1", NOW)
    p = run(_sign_presentation(world.holder, world, world.holder_key, data))
    with pytest.raises(VerificationError, match="'role' does not belong to this credential"):
        _verify(world, p)
    # the same salt and value but the other name is another disclosure, not in the credential
    renamed = Disclosure.create(own_team.salt, b"role", own_team.value)
    data = PresentationData(a.credential, (renamed,), world.holder.change_history, "api", "n-1",
                            NOW)
    with pytest.raises(VerificationError, match="does not belong"):
        _verify(world, run(_sign_presentation(world.holder, world, world.holder_key, data)))


def test_duplicate_disclosures_are_rejected(world: World) -> None:
    held = run(world.issue_selective({"role": "member"}))
    [d] = held.disclosures
    data = PresentationData(held.credential, (d, d), world.holder.change_history, "api", "n-1",
                            NOW)
    with pytest.raises(VerificationError, match="disclosed twice"):
        _verify(world, run(_sign_presentation(world.holder, world, world.holder_key, data)))
    # an issuer that signed two values for one name cannot have both revealed
    d1 = Disclosure.create(b"\x01" * 16, "role", "member")
    d2 = Disclosure.create(b"\x02" * 16, "role", "admin")
    payload = SelectiveCredentialData(world.holder.identifier_bytes,
                                      world.holder.latest_change_hash, 0,
                                      tuple(sorted((d1.digest, d2.digest))), NOW, NOW + 100)
    cred = run(sign_credential_data(payload, world.vault, world.signing_key, world.attestation))
    cpk = CredentialAndPurposeKey(cred, world.attestation)
    data = PresentationData(cpk, (d1, d2), world.holder.change_history, "api", "n-1", NOW)
    with pytest.raises(VerificationError, match="disclosed twice"):
        _verify(world, run(_sign_presentation(world.holder, world, world.holder_key, data)))


def test_only_the_subject_can_present(world: World) -> None:
    held = run(world.issue_selective())
    from trust.credentials.presentation import present

    with pytest.raises(UsageError, match="not the subject"):
        run(present(held, world.other, world.vault, world.other_key, reveal=["role"],
                    audience="api", nonce="n-1", now=NOW))
    data = PresentationData(held.credential, held.disclosures[:1], world.other.change_history,
                            "api", "n-1", NOW)
    with pytest.raises(VerificationError, match=r"signed by .* but the credential is about"):
        _verify(world, run(_sign_presentation(world.other, world, world.other_key, data)))
    # the subject's history, but signed with another key
    data = PresentationData(held.credential, held.disclosures[:1], world.holder.change_history,
                            "api", "n-1", NOW)
    forged = run(_sign_presentation(world.holder, world, world.other_key, data))
    with pytest.raises(VerificationError, match="invalid holder signature"):
        _verify(world, forged)


def test_holder_binding_uses_the_current_key() -> None:
    w = run(make_world())
    held = run(w.issue_selective())
    old = run(w.present(held, ["role"]))

    async def rotate() -> tuple[Identity, str]:
        new = await w.vault.generate_key(KeyType.P256)
        return await rotate_identity(w.holder, w.vault, w.holder_key, w.vault, new, now=NOW), new

    rotated, new_key = run(rotate())
    # a verifier that knows the rotation refuses presentations made with the older history
    with pytest.raises(VerificationError, match="older than the known history"):
        _verify(w, old, known_holder=rotated)
    _verify(w, old, known_holder=w.holder)
    # after the rotation the new key signs, with the new history; the credential (made before
    # the rotation) still names a change of that history
    data = PresentationData(held.credential, held.disclosures[:1], rotated.change_history, "api",
                            "n-1", NOW)
    p = run(_sign_presentation(rotated, w, new_key, data))
    assert p.signature.key_type is KeyType.P256
    assert _verify(w, p, known_holder=rotated).holder == rotated
    # the old key cannot sign with the new history
    stale_key = run(_sign_presentation(rotated, w, w.holder_key, data))
    with pytest.raises(VerificationError, match="invalid holder signature"):
        _verify(w, stale_key)


def test_present_unknown_attribute_and_bad_parameters(world: World) -> None:
    held = run(world.issue_selective({"role": "x"}))
    with pytest.raises(NotFoundError, match="no attribute 'age'"):
        run(world.present(held, ["age"]))
    with pytest.raises(UsageError, match="audience"):
        run(world.present(held, ["role"], audience=""))
    with pytest.raises(UsageError, match="nonce"):
        run(world.present(held, ["role"], nonce="x" * 1025))


def test_presentations_carry_only_selective_credentials(world: World) -> None:
    cpk = run(world.issue())
    with pytest.raises(DecodeError, match="selective"):
        PresentationData(cpk, (), world.holder.change_history, "api", "n", NOW)
    with pytest.raises(DecodeError, match="selective"):
        DisclosableCredential(cpk, ())
    with pytest.raises(VerificationError, match="no disclosures"):
        held = run(world.issue_selective({"a": "b"}))
        verify_credential(cpk, [world.issuer], now=NOW, disclosures=held.disclosures)


def test_p256_issuer_and_holder() -> None:
    w = run(make_world(KeyType.P256))
    p = run(w.present(run(w.issue_selective(decoys=4)), ["level", "project"]))
    assert p.signature.key_type is KeyType.P256
    assert _verify(w, p).attributes == {b"level": b"3", b"project": b"p-42"}
