"""Verification of Ockam-format credentials: exact time boundaries, the purpose-key window,
and every reason to reject one."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from tests.credentials.helpers import ATT_CREATED, ATT_EXPIRES, NOW, World, make_world, run
from trust.credentials.issuance import sign_credential_data
from trust.credentials.verification import (
    MAX_ALLOWED_TIME_DRIFT,
    VerifiedCredential,
    clear_cache,
    verify_credential,
)
from trust.errors import UntrustedError, UsageError, VerificationError
from trust.identities.creation import rotate_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import Attributes, CredentialAndPurposeKey, CredentialData
from trust.models.primitives import Signature
from trust.models.purpose_key import (
    PurposeKeyAttestation,
    PurposeKeyAttestationData,
    PurposePublicKey,
)
from vaults.keys import KeyType


@pytest.fixture(scope="module")
def world() -> World:
    return run(make_world())


def check(w: World, cpk: CredentialAndPurposeKey, now: int, **kw: Any) -> VerifiedCredential:
    """Verify cold and warm: both must agree."""
    clear_cache()
    cold = _outcome(lambda: verify_credential(cpk, [w.issuer], now=now, cache=False, **kw))
    warm_fill = _outcome(lambda: verify_credential(cpk, [w.issuer], now=NOW, **kw))
    warm = _outcome(lambda: verify_credential(cpk, [w.issuer], now=now, **kw))
    assert type(cold) is type(warm), (cold, warm, warm_fill)
    if isinstance(cold, Exception):
        assert str(cold) == str(warm)
        raise cold
    assert isinstance(cold, VerifiedCredential)
    return cold


def _outcome(fn: Callable[[], VerifiedCredential]) -> VerifiedCredential | Exception:
    try:
        return fn()
    except (VerificationError, UntrustedError) as e:
        return e


async def _signed(w: World, data: CredentialData,
                  attestation: PurposeKeyAttestation | None = None) -> CredentialAndPurposeKey:
    att = attestation or w.attestation
    return CredentialAndPurposeKey(await sign_credential_data(data, w.vault, w.signing_key, att),
                                   att)


def _data(w: World, created: int, expires: int, **kw: object) -> CredentialData:
    fields = {"subject": w.holder.identifier_bytes,
              "subject_latest_change_hash": w.holder.latest_change_hash,
              "attributes": Attributes.of({"role": "admin"}), "created_at": created,
              "expires_at": expires}
    fields.update(kw)
    return CredentialData(**fields)  # type: ignore[arg-type]


def test_valid_until_exactly_expires_at(world: World) -> None:
    cpk = run(world.issue(ttl=100))
    v = check(world, cpk, NOW + 100)
    assert v.expires_at == NOW + 100 and v.attributes[b"role"] == b"admin"
    with pytest.raises(VerificationError, match=r"expired at 1800000100 \(2027-01-15 08:01:40 UTC\), "
                       r"checked at 1800000101 "):
        check(world, cpk, NOW + 101)


def test_created_at_may_be_up_to_60_s_in_the_future(world: World) -> None:
    assert MAX_ALLOWED_TIME_DRIFT == 60
    cpk = run(world.issue(ttl=1000))  # created at NOW
    check(world, cpk, NOW - 60)
    with pytest.raises(VerificationError, match="not valid yet"):
        check(world, cpk, NOW - 61)


def test_credential_window_must_lie_inside_the_purpose_key_window(world: World) -> None:
    # exactly at both edges of the attestation: valid
    edge = run(_signed(world, _data(world, ATT_CREATED, ATT_EXPIRES)))
    check(world, edge, ATT_CREATED + 10)
    check(world, edge, ATT_EXPIRES)
    before = run(_signed(world, _data(world, ATT_CREATED - 1, NOW)))
    with pytest.raises(VerificationError, match="before its signing key was attested"):
        check(world, before, NOW)
    after = run(_signed(world, _data(world, NOW, ATT_EXPIRES + 1)))
    with pytest.raises(VerificationError, match="expires after its signing key"):
        check(world, after, NOW)


def test_the_issuer_refuses_to_sign_outside_the_purpose_key_window(world: World) -> None:
    with pytest.raises(UsageError, match="after its signing key"):
        run(world.issue(created_at=NOW, expires_at=ATT_EXPIRES + 1))
    with pytest.raises(UsageError, match="attested at"):
        run(world.issue(created_at=ATT_CREATED - 1, expires_at=NOW))


def test_attestation_clock_edges_cold_and_warm() -> None:
    w = run(make_world(att_created=NOW + 60, att_expires=NOW + 1000))
    cpk = run(_signed(w, _data(w, NOW + 60, NOW + 1000)))
    check(w, cpk, NOW)  # attestation created exactly 60 s ahead
    with pytest.raises(VerificationError, match="attestation was created in the future"):
        check(w, cpk, NOW - 1)
    check(w, cpk, NOW + 1000)  # attestation and credential expire exactly now
    with pytest.raises(VerificationError, match="attestation expired at"):
        check(w, cpk, NOW + 1001)


def test_attestation_window_edges_against_the_issuer_change() -> None:
    """The attestation must lie within its attesting change's attestations window."""
    w = run(make_world())
    change = w.issuer.latest_change.change_data

    async def attest(created: int, expires: int) -> PurposeKeyAttestation:
        data = PurposeKeyAttestationData(
            w.issuer.identifier_bytes, w.issuer.latest_change_hash,
            PurposePublicKey.credential_signing(await w.vault.public_key(w.signing_key)),
            created, expires).to_versioned()
        sig = await w.vault.sign(w.issuer_key, hashlib.sha256(data).digest())
        return PurposeKeyAttestation(data, Signature(KeyType.ED25519, sig))

    start, end = change.attestations_valid_from, change.attestations_valid_until
    ok = run(attest(start, end))
    cpk = run(_signed(w, _data(w, NOW, NOW + 10), ok))
    check(w, cpk, NOW)
    early = run(attest(start - 1, end))
    with pytest.raises(VerificationError, match="created before the attesting key's validity"):
        check(w, run(_signed(w, _data(w, NOW, NOW + 10), early)), NOW)
    late = run(attest(start, end + 1))
    with pytest.raises(VerificationError, match="expires after the attesting key's validity"):
        check(w, run(_signed(w, _data(w, NOW, NOW + 10), late)), NOW)


def test_wrong_issuer_wrong_subject_forged(world: World) -> None:
    cpk = run(world.issue())
    with pytest.raises(UntrustedError, match="not one of the given authorities"):
        verify_credential(cpk, [world.other, world.holder], now=NOW)
    with pytest.raises(UntrustedError, match="is about"):
        check(world, cpk, NOW, expected_subject=world.other)
    check(world, cpk, NOW, expected_subject=world.holder.identifier)
    forged_sig = Signature(KeyType.ED25519, run(world.vault.sign(world.other_key,
                                                                 cpk.credential.data_hash)))
    forged = CredentialAndPurposeKey(type(cpk.credential)(cpk.credential.data, forged_sig),
                                     cpk.purpose_key_attestation)
    with pytest.raises(VerificationError, match="invalid credential signature"):
        check(world, forged, NOW)
    # a signature labelled with the other key type
    relabelled = CredentialAndPurposeKey(
        type(cpk.credential)(cpk.credential.data, Signature(KeyType.P256,
                                                            cpk.credential.signature.data)),
        cpk.purpose_key_attestation)
    with pytest.raises(VerificationError, match="invalid credential signature"):
        check(world, relabelled, NOW)


def test_attestation_signed_by_someone_else_is_rejected(world: World) -> None:
    att = run(attest_purpose_key(world.other, world.vault, world.other_key,
                                 PurposePublicKey.credential_signing(
                                     run(world.vault.public_key(world.signing_key))),
                                 now=ATT_CREATED, expires_at=ATT_EXPIRES))
    # claims to be the issuer's attestation: same data but the other identity's signature
    data = PurposeKeyAttestationData(
        world.issuer.identifier_bytes, world.issuer.latest_change_hash,
        att.attestation_data.public_key, ATT_CREATED, ATT_EXPIRES).to_versioned()
    fake = PurposeKeyAttestation(data, Signature(
        KeyType.ED25519, run(world.vault.sign(world.other_key, hashlib.sha256(data).digest()))))
    cpk = run(_signed(world, _data(world, NOW, NOW + 10), fake))
    with pytest.raises(VerificationError, match="invalid attestation signature"):
        check(world, cpk, NOW)


def test_subject_latest_change_hash_must_be_in_the_known_history(world: World) -> None:
    bogus = run(_signed(world, _data(world, NOW, NOW + 10,
                                     subject_latest_change_hash=secrets.token_bytes(32))))
    check(world, bogus, NOW)  # the subject's history is not known: Ockam's behaviour
    with pytest.raises(VerificationError, match="subject_latest_change_hash"):
        check(world, bogus, NOW, subject_identity=world.holder)
    with pytest.raises(VerificationError, match="history given for the subject"):
        check(world, run(world.issue()), NOW, subject_identity=world.other)


def test_a_credential_made_before_the_subject_rotated_stays_valid(world: World) -> None:
    cpk = run(world.issue())

    async def rotate() -> Identity:
        new = await world.vault.generate_key(KeyType.P256)
        return await rotate_identity(world.holder, world.vault, world.holder_key, world.vault,
                                     new, now=NOW)

    rotated = run(rotate())
    check(world, cpk, NOW, subject_identity=rotated)


def test_subjectless_credentials_are_unsupported(world: World) -> None:
    cpk = run(_signed(world, _data(world, NOW, NOW + 10, subject=None,
                                   subject_latest_change_hash=None)))
    assert cpk.credential.data[5:8] == b"\x85\xf6\xf6"  # 83 01 03 58 xx | 85 f6 f6 ...
    with pytest.raises(VerificationError, match="no subject"):
        check(world, cpk, NOW)


def test_secure_channel_key_cannot_sign_credentials(world: World) -> None:
    att = run(attest_purpose_key(world.issuer, world.vault, world.issuer_key,
                                 PurposePublicKey.secure_channel(b"\x09" * 32),
                                 now=ATT_CREATED, expires_at=ATT_EXPIRES))
    with pytest.raises(UsageError, match="not a credential-signing key"):
        run(sign_credential_data(_data(world, NOW, NOW + 1), world.vault, world.signing_key, att))
    good = run(world.issue())
    cpk = CredentialAndPurposeKey(good.credential, att)
    with pytest.raises(VerificationError, match="not a credential_signing key"):
        check(world, cpk, NOW)


def test_issuer_rotation_keeps_or_revokes_earlier_attestations() -> None:
    w = run(make_world())
    cpk = run(w.issue())

    async def rotate(revoke: bool) -> Identity:
        new = await w.vault.generate_key(KeyType.P256)
        return await rotate_identity(w.issuer, w.vault, w.issuer_key, w.vault, new,
                                     revoke_all_purpose_keys=revoke, now=NOW)

    kept = run(rotate(False))
    assert verify_credential(cpk, [kept], now=NOW).issuer == w.issuer.identifier
    revoked = run(rotate(True))
    for cache in (False, True):
        with pytest.raises(VerificationError, match="revoked"):
            verify_credential(cpk, [revoked], now=NOW, cache=cache)


def test_p256_keys_end_to_end() -> None:
    w = run(make_world(KeyType.P256))
    cpk = run(w.issue())
    assert cpk.credential.signature.key_type is KeyType.P256
    v = check(w, cpk, NOW, subject_identity=w.holder)
    assert v.issuer == w.issuer.identifier and v.subject == w.holder.identifier
