"""Ockam's real credential and the synthetic scenario's credential, byte for byte; the
credentials we issue are Ockam-format objects (checked with an independent CBOR decoder)."""

from __future__ import annotations

import asyncio

import cbor2
import pytest

from tests.credentials.helpers import NOW, make_world, run
from tests.identities.test_vectors import _scenario_identities
from tests.vectors import by_name
from trust.credentials.issuance import issue_credential
from trust.credentials.verification import verify_attested_credential, verify_credential
from trust.errors import UntrustedError, VerificationError
from trust.identities.identity import Identity
from trust.models.credential import (
    Attributes,
    CredentialAndPurposeKey,
    CredentialData,
    decode_artifact,
)
from trust.models.primitives import identifier_text
from trust.models.purpose_key import Purpose, PurposeKeyAttestation
from vaults.keys import KeyType
from vaults.software import SoftwareVault

REAL = by_name("elixir_refresh_credentials_credential_and_purpose_key")
SCENARIO = by_name("synthetic_rotation_ed25519_to_p256_with_credential")
SYNTHETIC_HEX = SCENARIO["artefacts"]["credential_and_purpose_key:member_credential"]


def test_real_ockam_credential_decodes_and_reencodes_byte_identically() -> None:
    raw = bytes.fromhex(REAL["hex"])
    cpk = CredentialAndPurposeKey.decode(raw)
    assert cpk.encode() == raw
    assert decode_artifact(raw) == cpk
    exp = REAL["expected"]["credential"]
    c = cpk.credential
    assert not c.is_selective and c.data_type == 3
    assert c.subject_text == exp["subject"]
    assert c.subject_latest_change_hash is not None
    assert c.subject_latest_change_hash.hex() == exp["subject_latest_change_hash"]
    assert c.schema == exp["schema"]
    assert isinstance(c.payload, CredentialData)
    attrs = {k.decode(): v.decode() for k, v in c.payload.attributes.entries}
    assert attrs == exp["attributes"]
    assert list(attrs) == sorted(attrs)  # bytewise order on the wire
    assert (c.created_at, c.expires_at) == (exp["created_at"], exp["expires_at"])
    # the payload re-encodes to the signed bytes too
    assert c.payload.to_versioned() == c.data
    att = cpk.purpose_key_attestation.attestation_data
    want = REAL["expected"]["purpose_key_attestation"]
    assert identifier_text(att.subject) == want["subject"]
    assert att.public_key.purpose is Purpose.CREDENTIAL_SIGNING
    assert att.public_key.signing is not None
    assert att.public_key.signing.hex == want["public_key"]["key"]
    assert (att.created_at, att.expires_at) == (want["created_at"], want["expires_at"])


def test_real_ockam_credential_signature_verifies_with_its_attested_key() -> None:
    cpk = CredentialAndPurposeKey.decode(bytes.fromhex(REAL["hex"]))
    att = cpk.purpose_key_attestation.attestation_data
    at = REAL["verify_at"]
    verify_attested_credential(cpk.credential, att, now=at, expected_subject=REAL["expected"][
        "credential"]["subject"])
    # and its bounds are exact: valid until expires_at, not one second later
    verify_attested_credential(cpk.credential, att, now=cpk.credential.expires_at)
    with pytest.raises(VerificationError, match="expired"):
        verify_attested_credential(cpk.credential, att, now=cpk.credential.expires_at + 1)
    # a different key does not verify it
    other = run(make_world())
    with pytest.raises(VerificationError, match="signature"):
        verify_attested_credential(cpk.credential, other.attestation.attestation_data, now=at)


def test_real_ockam_credential_needs_its_issuer_as_an_authority() -> None:
    cpk = CredentialAndPurposeKey.decode(bytes.fromhex(REAL["hex"]))
    other = run(make_world())
    with pytest.raises(UntrustedError, match="not one of the given authorities"):
        verify_credential(cpk, [other.issuer], now=REAL["verify_at"])


def _rebuild() -> tuple[CredentialAndPurposeKey, dict[str, Identity]]:
    async def go() -> tuple[CredentialAndPurposeKey, dict[str, Identity]]:
        identities, _ = await _scenario_identities()
        spec = SCENARIO["spec"]
        [c] = spec["credentials"]
        [a] = [x for x in spec["attestations"] if x["name"] == c["attestation"]]
        vault = SoftwareVault()
        handle = await vault.import_key(KeyType.ED25519, bytes.fromhex(a["sk"]))
        att = PurposeKeyAttestation.decode(bytes.fromhex(SCENARIO["artefacts"][
            f"attestation:{a['name']}"]))
        cpk = await issue_credential(identities[c["subject"]],
                                     Attributes.of(c["attributes"], c["schema"]), vault, handle,
                                     att, created_at=c["created_at"], expires_at=c["expires_at"])
        return cpk, identities

    return asyncio.run(go())


def test_synthetic_credential_rebuilt_byte_for_byte() -> None:
    cpk, _ = _rebuild()
    assert cpk.hex() == SYNTHETIC_HEX
    assert CredentialAndPurposeKey.decode(bytes.fromhex(SYNTHETIC_HEX)).encode().hex() == \
        SYNTHETIC_HEX


def test_synthetic_credential_verifies_fully_at_spec_now() -> None:
    cpk, ids = _rebuild()
    now = SCENARIO["spec"]["now"]
    v = verify_credential(CredentialAndPurposeKey.decode(bytes.fromhex(SYNTHETIC_HEX)),
                          [ids["member"], ids["authority"]], now=now,
                          expected_subject=ids["member"], subject_identity=ids["member"],
                          cache=False)
    assert v.issuer == SCENARIO["expected"]["identity:authority"]["identifier"]
    assert v.subject == ids["member"].identifier
    assert {k.decode(): x.decode() for k, x in v.attributes.items()} == \
        SCENARIO["spec"]["credentials"][0]["attributes"]
    assert (v.created_at, v.expires_at) == (1700000300, 1702592300)
    # the attestation was made against the authority's latest change (after the rotation to
    # P-256 that revoked earlier purpose keys), so Ockam's strict rule accepts it too
    att = cpk.purpose_key_attestation.attestation_data
    assert att.subject_latest_change_hash == ids["authority"].latest_change_hash
    # not the authority: the member itself
    with pytest.raises(UntrustedError):
        verify_credential(cpk, [ids["member"]], now=now)
    # the subject must be the one expected
    with pytest.raises(UntrustedError, match="is about"):
        verify_credential(cpk, [ids["authority"]], now=now, expected_subject=ids["authority"])


def test_issued_credentials_are_ockam_format_objects() -> None:
    """An independent decoder (cbor2) sees exactly the structure of spec §7."""
    w = run(make_world(KeyType.P256))
    cpk = run(w.issue({"b": "2", "ab": "1", "ockam-role": "member"}, ttl=3600))
    raw = cpk.encode()
    outer = cbor2.loads(raw)
    assert isinstance(outer, list) and len(outer) == 2
    credential, attestation = outer
    data, signature = credential
    assert signature[0] == 1 and len(signature[1]) == 1 and len(signature[1][0]) == 64  # P-256
    version, data_type, payload = cbor2.loads(data)
    assert (version, data_type) == (1, 3)
    subject, latest, (schema, attrs), created, expires = cbor2.loads(payload)
    assert subject == w.holder.identifier_bytes and latest == w.holder.latest_change_hash
    assert schema == 0 and attrs == {b"ab": b"1", b"b": b"2", b"ockam-role": b"member"}
    assert list(attrs) == [b"ab", b"b", b"ockam-role"]  # bytewise, not length-first
    assert (created, expires) == (NOW, NOW + 3600)
    att_data, _ = attestation
    assert cbor2.loads(att_data)[:2] == [1, 2]
    # our encoder agrees with a plain CBOR encoding of the same values
    assert cbor2.dumps([1, 3, cbor2.dumps([subject, latest, [0, attrs], created, expires])]) == data
    assert CredentialData.decode(payload).encode() == payload
