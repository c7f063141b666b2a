"""Ockam's real change histories and the synthetic rotation scenario, byte for byte."""

from __future__ import annotations

import asyncio

import pytest

from tests.vectors import by_kind, by_name
from trust.identities.creation import create_identity, rotate_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key, verify_purpose_key_attestation
from trust.models.change_history import ChangeHistory
from trust.models.purpose_key import Purpose, PurposeKeyAttestation, PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault

KINDS = {"EdDSACurve25519": KeyType.ED25519, "ECDSASHA256CurveP256": KeyType.P256}


@pytest.mark.parametrize("vector", by_kind("change_history"), ids=lambda v: v["name"])
def test_real_history_decodes_verifies_and_reencodes(vector: dict) -> None:
    raw = bytes.fromhex(vector["hex"])
    identity = Identity.from_bytes(raw)
    exp = vector["expected"]
    assert identity.identifier == exp["identifier"]
    assert [c.change_hash.hex() for c in identity.changes] == exp["change_hashes"]
    for change, want in zip(identity.changes, exp["changes"], strict=True):
        cd = change.change_data
        assert cd.primary_public_key.key_type is KINDS[want["primary_public_key"]["type"]]
        assert cd.primary_public_key.data.hex() == want["primary_public_key"]["key"]
        assert cd.revoke_all_purpose_keys == want["revoke_all_purpose_keys"]
        assert cd.attestations_valid_from == want["attestations_valid_from"]
        assert cd.attestations_valid_until == want["attestations_valid_until"]
        assert cd.previous_change == (bytes.fromhex(want["previous_change"])
                                      if want["previous_change"] else None)
    assert ChangeHistory.decode(raw).encode() == raw
    assert Identity.from_bytes(raw, expected_identifier=exp["identifier"]) == identity


@pytest.mark.parametrize("vector", [v for v in by_kind("change_history") if "regenerate" in v],
                         ids=lambda v: v["name"])
def test_history_regenerated_byte_for_byte(vector: dict) -> None:
    async def build() -> Identity:
        vault = SoftwareVault()
        keys = vector["regenerate"]["keys"]
        first = keys[0]
        handle = await vault.import_key(KINDS[first["kind"]], bytes.fromhex(first["sk"]))
        identity = await create_identity(vault, handle, valid_from=first["from"],
                                         valid_until=first["until"])
        for k in keys[1:]:
            new = await vault.import_key(KINDS[k["kind"]], bytes.fromhex(k["sk"]))
            identity = await rotate_identity(identity, vault, handle, vault, new,
                                             revoke_all_purpose_keys=k["revoke"],
                                             valid_from=k["from"], valid_until=k["until"])
            handle = new
        return identity

    assert asyncio.run(build()).export().hex() == vector["hex"]


SCENARIO = by_name("synthetic_rotation_ed25519_to_p256_with_credential")


async def _scenario_identities() -> tuple[dict[str, Identity], dict[str, tuple[SoftwareVault, str]]]:
    spec = SCENARIO["spec"]
    out: dict[str, Identity] = {}
    keys: dict[str, tuple[SoftwareVault, str]] = {}
    for name, changes in spec["identities"].items():
        vault = SoftwareVault()
        handle = await vault.import_key(KINDS[changes[0]["kind"]], bytes.fromhex(changes[0]["sk"]))
        identity = await create_identity(vault, handle, valid_from=changes[0]["from"],
                                         valid_until=changes[0]["until"])
        for ch in changes[1:]:
            new = await vault.import_key(KINDS[ch["kind"]], bytes.fromhex(ch["sk"]))
            identity = await rotate_identity(identity, vault, handle, vault, new,
                                             revoke_all_purpose_keys=ch.get("revoke", False),
                                             valid_from=ch["from"], valid_until=ch["until"])
            handle = new
        out[name] = identity
        keys[name] = (vault, handle)
    return out, keys


def test_synthetic_identities_rebuilt_byte_for_byte() -> None:
    identities, _ = asyncio.run(_scenario_identities())
    for name, identity in identities.items():
        assert identity.export().hex() == SCENARIO["artefacts"][f"identity:{name}"]
        assert identity.identifier == SCENARIO["expected"][f"identity:{name}"]["identifier"]
    assert identities["authority"].latest_change_hash.hex() == \
        SCENARIO["expected"]["identity:authority"]["change_hashes"][1]


def test_synthetic_attestations_rebuilt_byte_for_byte_and_verify() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    async def build() -> dict[str, bytes]:
        identities, keys = await _scenario_identities()
        out = {}
        for att in SCENARIO["spec"]["attestations"]:
            sk = bytes.fromhex(att["sk"])
            if att["purpose"] == "CredentialSigning":
                pub = ed25519.Ed25519PrivateKey.from_private_bytes(sk).public_key()
                from vaults.keys import PublicKey

                ppk = PurposePublicKey.credential_signing(PublicKey.from_cryptography(pub))
            else:
                raw = x25519.X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                ppk = PurposePublicKey.secure_channel(raw)
            vault, handle = keys[att["issuer"]]
            a = await attest_purpose_key(identities[att["issuer"]], vault, handle, ppk,
                                         now=att["created_at"], expires_at=att["expires_at"])
            out[att["name"]] = a.encode()
            verify_purpose_key_attestation(identities[att["issuer"]], a,
                                           now=SCENARIO["spec"]["now"])
        return out

    built = asyncio.run(build())
    for name, raw in built.items():
        assert raw.hex() == SCENARIO["artefacts"][f"attestation:{name}"]
        assert PurposeKeyAttestation.decode(raw).encode() == raw
    purposes = {a.attestation_data.public_key.purpose for a in map(PurposeKeyAttestation.decode,
                                                                   built.values())}
    assert purposes == {Purpose.CREDENTIAL_SIGNING, Purpose.SECURE_CHANNEL_STATIC}
