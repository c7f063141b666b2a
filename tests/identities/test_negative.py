"""Malformed, forged and inconsistent histories are rejected with typed errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.vectors import by_name
from trust.errors import DecodeError, TrustError, VerificationError
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Comparison, Identity, verify_change_history
from trust.identities.purpose_keys import attest_purpose_key, verify_purpose_key_attestation
from trust.models.change_history import Change, ChangeHistory
from trust.models.purpose_key import PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault

ONE_CHANGE = bytes.fromhex(by_name("test_display_project_identity")["hex"])
P256 = bytes.fromhex(by_name("orchestrator_controller_p256")["hex"])
ROTATED = bytes.fromhex(by_name("synthetic_rotation_ed25519_to_p256_with_credential")["hex"])


@pytest.mark.parametrize("raw", [ONE_CHANGE, P256], ids=["ed25519", "p256"])
def test_every_single_byte_change_is_rejected(raw: bytes) -> None:
    verify_change_history(raw)
    accepted = []
    for i in range(len(raw)):
        for v in range(256):
            if v == raw[i]:
                continue
            mutated = raw[:i] + bytes((v,)) + raw[i + 1 :]
            try:
                verify_change_history(mutated)
            except (DecodeError, VerificationError):
                continue
            accepted.append((i, v))
    assert accepted == []


def test_every_truncation_and_trailing_bytes_rejected() -> None:
    for n in range(len(ROTATED)):
        with pytest.raises(DecodeError):
            verify_change_history(ROTATED[:n])
    for tail in (b"\x00", b"\xf6", ONE_CHANGE):
        with pytest.raises(DecodeError, match="trailing"):
            verify_change_history(ROTATED + tail)


def test_wrong_types_and_oversize_rejected() -> None:
    with pytest.raises(DecodeError):
        ChangeHistory.decode("81" * 3)  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="limit"):
        ChangeHistory.decode(b"\x81" + b"\x00" * (1 << 20))
    with pytest.raises(DecodeError, match="at least"):
        ChangeHistory.decode(b"\x80")
    with pytest.raises(DecodeError, match="indefinite"):
        ChangeHistory.decode(b"\x9f" + ONE_CHANGE[1:] + b"\xff")
    # a non-shortest head for the data length
    non_shortest = b"\x81\x82\x59\x00\x37" + ONE_CHANGE[4:]
    with pytest.raises(DecodeError, match="shortest"):
        ChangeHistory.decode(non_shortest)


async def _two_identities() -> tuple[SoftwareVault, str, str, Identity]:
    vault = SoftwareVault()
    k1 = await vault.generate_key(KeyType.ED25519)
    k2 = await vault.generate_key(KeyType.P256)
    ident = await create_identity(vault, k1, now=1_700_000_000)
    return vault, k1, k2, ident


def test_later_change_without_previous_signature_is_rejected() -> None:
    async def go() -> None:
        vault, k1, k2, ident = await _two_identities()
        rotated = await rotate_identity(ident, vault, k1, vault, k2, now=1_700_000_100)
        second = rotated.changes[1]
        unsigned = Change(second.data, second.signature, None)
        raw = ChangeHistory((rotated.changes[0], unsigned)).encode()
        with pytest.raises(DecodeError, match="previous_signature"):
            verify_change_history(raw)
        # signed by the previous key over the wrong change: the forged co-signature fails
        forged = Change(second.data, second.signature, rotated.changes[0].signature)
        with pytest.raises(VerificationError, match="previous key"):
            verify_change_history(ChangeHistory((rotated.changes[0], forged)).encode())
        # a change appended by someone who doesn't hold the previous key
        other_vault = SoftwareVault()
        o1 = await other_vault.generate_key(KeyType.ED25519)
        o2 = await other_vault.generate_key(KeyType.ED25519)
        with pytest.raises(VerificationError):
            await rotate_identity(ident, other_vault, o1, other_vault, o2)

    asyncio.run(go())


def test_timestamps_going_backwards_rejected() -> None:
    async def go() -> None:
        vault, k1, k2, ident = await _two_identities()
        from trust.identities import creation

        rotated = await creation.rotate_identity(ident, vault, k1, vault, k2, valid_from=1)
        # rotate_identity clamps to the previous start; build the bad change by hand
        assert rotated.changes[1].change_data.attestations_valid_from == 1_700_000_000
        import hashlib

        from trust.models.change_history import ChangeData
        from trust.models.primitives import Signature

        data = ChangeData(ident.latest_change_hash, await vault.public_key(k2), False, 5,
                          10).to_versioned()
        m = hashlib.sha256(data).digest()
        bad = Change(data, Signature(KeyType.P256, await vault.sign(k2, m)),
                     Signature(KeyType.ED25519, await vault.sign(k1, m)))
        with pytest.raises(VerificationError, match="backwards"):
            verify_change_history(ChangeHistory((ident.changes[0], bad)).encode())

    asyncio.run(go())


def test_compare_detects_equal_newer_older_conflict() -> None:
    async def go() -> None:
        vault, k1, k2, ident = await _two_identities()
        newer = await rotate_identity(ident, vault, k1, vault, k2, now=1_700_000_100)
        k3 = await vault.generate_key(KeyType.ED25519)
        fork = await rotate_identity(ident, vault, k1, vault, k3, now=1_700_000_200)
        assert ident.compare(ident) is Comparison.EQUAL
        assert newer.compare(ident) is Comparison.NEWER
        assert ident.compare(newer) is Comparison.OLDER
        assert fork.compare(newer) is Comparison.CONFLICT
        other = await create_identity(vault, k3, now=1)
        assert other.compare(ident) is Comparison.CONFLICT

    asyncio.run(go())


def test_expected_identifier_mismatch() -> None:
    with pytest.raises(VerificationError):
        verify_change_history(ONE_CHANGE, expected_identifier="I" + "00" * 32)
    with pytest.raises(DecodeError):
        verify_change_history(ONE_CHANGE, expected_identifier="J" + "00" * 32)


def test_attestation_rules_across_rotations() -> None:
    async def go() -> None:
        vault, k1, k2, ident = await _two_identities()
        x = PurposePublicKey.secure_channel(b"\x09" * 32)
        t = 1_700_000_050
        before = await attest_purpose_key(ident, vault, k1, x, now=t)
        plain = await rotate_identity(ident, vault, k1, vault, k2, now=t + 10)
        # made before a plain rotation: still valid (Ockam would refuse; see strict mode)
        verify_purpose_key_attestation(plain, before, now=t + 20)
        with pytest.raises(VerificationError, match="before"):
            verify_purpose_key_attestation(plain, before, now=t + 20, ockam_strict=True)
        k3 = await vault.generate_key(KeyType.ED25519)
        revoking = await rotate_identity(plain, vault, k2, vault, k3, now=t + 30,
                                         revoke_all_purpose_keys=True)
        with pytest.raises(VerificationError, match="revoked"):
            verify_purpose_key_attestation(revoking, before, now=t + 40)
        after = await attest_purpose_key(revoking, vault, k3, x, now=t + 40)
        verify_purpose_key_attestation(revoking, after, now=t + 50, ockam_strict=True)
        # the same identifier, but a history without the change the attestation names
        with pytest.raises(VerificationError, match="not in the subject's history"):
            verify_purpose_key_attestation(ident, after, now=t + 50)
        # time checks
        with pytest.raises(VerificationError, match="future"):
            verify_purpose_key_attestation(revoking, after, now=t + 40 - 61)
        verify_purpose_key_attestation(revoking, after, now=t + 40 - 60)
        exp = after.attestation_data.expires_at
        verify_purpose_key_attestation(revoking, after, now=exp)
        with pytest.raises(VerificationError, match="expired"):
            verify_purpose_key_attestation(revoking, after, now=exp + 1)
        # wrong subject
        with pytest.raises(VerificationError, match="not"):
            verify_purpose_key_attestation(ident, await attest_purpose_key(
                await create_identity(vault, k3, now=t), vault, k3, x, now=t), now=t)

    asyncio.run(go())


def test_errors_are_trust_errors() -> None:
    assert issubclass(DecodeError, TrustError) and issubclass(VerificationError, TrustError)


def test_a_decoded_history_is_verified_without_decoding_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify_change_history(decoded=...) (what the channel handshake passes) checks every
    signature of the given history and does not decode the bytes again."""
    good = ChangeHistory.decode(ROTATED)
    history = good.changes[1]
    forged_sig = history.signature.data[:-1] + bytes((history.signature.data[-1] ^ 1,))
    forged_change = Change(history.data, type(history.signature)(history.signature.key_type, forged_sig),
                           history.previous_signature)
    forged = ChangeHistory((good.changes[0], forged_change))

    def no_decode(data: bytes) -> ChangeHistory:
        raise AssertionError("decoded again")

    monkeypatch.setattr(ChangeHistory, "decode", no_decode)
    identity = verify_change_history(ROTATED, decoded=good)
    assert identity.change_history is good and identity.raw == ROTATED
    with pytest.raises(VerificationError, match="invalid signature by its own key"):
        verify_change_history(forged.encode(), decoded=forged)
    with pytest.raises(TypeError):
        verify_change_history(ROTATED, decoded=ROTATED)  # type: ignore[arg-type]
