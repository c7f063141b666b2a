"""The PKCS#11 vault on a real PKCS#11 module (SoftHSM2) with a private token."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from tests.fixtures.softhsm import SoftHsm, pkcs11_tool
from vaults.errors import (
    BackendUnavailableError,
    KeyNotFoundError,
    VaultError,
    WrongPassphraseError,
)
from vaults.keys import KeyType, PublicKey, raw_to_der_signature
from vaults.pkcs11 import Pkcs11Vault
from vaults.signing import SigningVault
from vaults.verify import verify_signature

run = asyncio.run
M = hashlib.sha256(b"change data").digest()


@pytest.fixture
def vault(softhsm: SoftHsm) -> Iterator[Pkcs11Vault]:
    v = Pkcs11Vault.open(softhsm.uri(), softhsm.pin.encode())
    try:
        yield v
    finally:
        v.close_sync()


def _crypto_key(pk: PublicKey) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    if pk.key_type is KeyType.ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(pk.data)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk.data)


def test_is_a_signing_vault_with_p256_default(vault: Pkcs11Vault) -> None:
    assert isinstance(vault, SigningVault)
    assert vault.backend == "pkcs11"
    assert vault.default_key_type is KeyType.P256
    assert vault.key_types == {KeyType.P256, KeyType.ED25519}  # SoftHSM offers both


def test_p256_is_ecdsa_sha256_over_m(vault: Pkcs11Vault) -> None:
    handle = run(vault.generate_key(KeyType.P256))
    assert handle.startswith("id=")
    pk = run(vault.public_key(handle))
    sig = run(vault.sign(handle, M))
    assert len(sig) == 64
    assert verify_signature(pk, M, sig)
    key = _crypto_key(pk)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(raw_to_der_signature(sig), M, ec.ECDSA(hashes.SHA256()))  # SHA-256 over m
    with pytest.raises(InvalidSignature):  # not a signature of m taken as the digest
        key.verify(raw_to_der_signature(sig), M, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert not verify_signature(pk, hashlib.sha256(b"other").digest(), sig)


def test_ed25519_signs_m_itself(vault: Pkcs11Vault) -> None:
    handle = run(vault.generate_key(KeyType.ED25519))
    pk = run(vault.public_key(handle))
    assert pk.key_type is KeyType.ED25519 and len(pk.data) == 32
    sig = run(vault.sign(handle, M))
    key = _crypto_key(pk)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(sig, M)
    assert verify_signature(pk, M, sig)


def test_generated_keys_are_sensitive_non_extractable_token_objects(vault: Pkcs11Vault,
                                                                      softhsm: SoftHsm) -> None:
    from pkcs11 import Attribute, ObjectClass

    handle = run(vault.generate_key(KeyType.P256))
    key_id = bytes.fromhex(handle[3:])
    objs = list(vault._session.get_objects({Attribute.ID: key_id,
                                            Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    assert len(objs) == 1
    priv = objs[0]
    assert priv[Attribute.TOKEN] is True
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
    assert priv[Attribute.NEVER_EXTRACTABLE] is True
    assert priv[Attribute.PRIVATE] is True
    listing = pkcs11_tool(softhsm, "--list-objects", "--type", "privkey")
    assert handle[3:] in listing and "sensitive" in listing.lower()


def test_keys_persist_and_are_listed_by_a_new_session(vault: Pkcs11Vault, softhsm: SoftHsm) -> None:
    p256 = run(vault.generate_key(KeyType.P256))
    ed = run(vault.generate_key(KeyType.ED25519))
    pks = (run(vault.public_key(p256)), run(vault.public_key(ed)))
    vault.close_sync()
    again = Pkcs11Vault.open(softhsm.uri(), softhsm.pin)
    try:
        listed = run(again.list_keys())
        assert {p256, ed} <= set(listed)
        assert (run(again.public_key(p256)), run(again.public_key(ed))) == pks
        assert verify_signature(pks[0], M, run(again.sign(p256, M)))
    finally:
        again.close_sync()


def test_resolve_key_by_label_id_and_uri(vault: Pkcs11Vault) -> None:
    handle = vault.generate_key_sync(KeyType.P256, label="resolve-me")
    hex_id = handle[3:]
    uri_id = "".join(f"%{b:02x}" for b in bytes.fromhex(hex_id))
    for name in ("resolve-me", "label=resolve-me", hex_id, handle, "pkcs11:object=resolve-me",
                 f"pkcs11:id={uri_id}"):
        assert run(vault.resolve_key(name)) == handle, name
    for missing in ("no-such-label", "id=00ff", "label=nope", "pkcs11:object=nope", "id=zz"):
        with pytest.raises(KeyNotFoundError):
            run(vault.resolve_key(missing))
    with pytest.raises(KeyNotFoundError):
        run(vault.public_key("bogus-handle"))
    with pytest.raises(KeyNotFoundError):
        run(vault.sign("id=00ee", M))


def test_delete_key_removes_both_objects(vault: Pkcs11Vault) -> None:
    from pkcs11 import Attribute

    handle = run(vault.generate_key(KeyType.ED25519))
    assert run(vault.delete_key(handle)) is True
    assert list(vault._session.get_objects({Attribute.ID: bytes.fromhex(handle[3:])})) == []
    assert run(vault.delete_key(handle)) is False
    assert handle not in run(vault.list_keys())
    with pytest.raises(KeyNotFoundError):
        run(vault.sign(handle, M))


def test_key_made_by_pkcs11_tool(vault: Pkcs11Vault, softhsm: SoftHsm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Keys generated by OpenSC's pkcs11-tool, not by truststack, are found and used; the public
    key truststack reports is the one pkcs11-tool exports."""
    pkcs11_tool(softhsm, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "ext-p256",
                "--id", "e1e2")
    pkcs11_tool(softhsm, "--keypairgen", "--key-type", "EC:edwards25519", "--label", "ext-ed",
                "--id", "e3")
    for label, hex_id, kt in (("ext-p256", "e1e2", KeyType.P256), ("ext-ed", "e3", KeyType.ED25519)):
        handle = run(vault.resolve_key(label))
        assert handle == f"id={hex_id}"
        pk = run(vault.public_key(handle))
        assert pk.key_type is kt
        out = tmp_path / f"{label}.der"
        pkcs11_tool(softhsm, "--read-object", "--type", "pubkey", "--id", hex_id,
                    "--output-file", str(out))
        # pkcs11-tool writes DER SPKI for EC keys and PEM SPKI for EdDSA keys
        assert PublicKey.from_spki(out.read_bytes()) == pk
        assert verify_signature(pk, M, run(vault.sign(handle, M)))


def test_ed25519_key_with_printable_string_params(vault: Pkcs11Vault) -> None:
    """PKCS#11 3.0 names the curve with the PrintableString "edwards25519" as well as the OID."""
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import KeyType as P11KeyType

    params = vault._session.create_domain_parameters(
        P11KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: b"\x13\x0cedwards25519"}, local=True)
    params.generate_keypair(mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True,
                            label="printable-ed", id=b"\x7e\x7e")
    handle = run(vault.resolve_key("printable-ed"))
    pk = run(vault.public_key(handle))
    assert pk.key_type is KeyType.ED25519
    assert verify_signature(pk, M, run(vault.sign(handle, M)))


def test_two_vaults_on_one_token_share_the_login(softhsm: SoftHsm) -> None:
    """PKCS#11 logins are per process: closing one vault must not log the other out, and a
    second open with a wrong PIN must fail even though the token is already logged in."""
    a = Pkcs11Vault.open(softhsm.uri(), softhsm.pin)
    b = Pkcs11Vault.open(softhsm.uri(), softhsm.pin)
    try:
        handle = run(a.generate_key(KeyType.P256))
        with pytest.raises(WrongPassphraseError, match="wrong PIN"):
            Pkcs11Vault.open(softhsm.uri(), "9999")
        a.close_sync()
        assert verify_signature(run(b.public_key(handle)), M, run(b.sign(handle, M)))
        with pytest.raises(VaultError, match="closed"):
            run(a.sign(handle, M))
    finally:
        a.close_sync()
        b.close_sync()


def test_second_token_is_told_apart(softhsm: SoftHsm) -> None:
    a = Pkcs11Vault.open(softhsm.uri(), softhsm.pin)
    b = Pkcs11Vault.open(softhsm.uri(token="second"), softhsm.pin)
    try:
        handle = run(a.generate_key(KeyType.P256))
        with pytest.raises(KeyNotFoundError):
            run(b.resolve_key(handle))
        assert b.token_label == "second"
    finally:
        a.close_sync()
        b.close_sync()


# -- faults --------------------------------------------------------------------------------------
def test_wrong_pin(softhsm: SoftHsm) -> None:
    with pytest.raises(WrongPassphraseError) as e:
        Pkcs11Vault.open(softhsm.uri(token="second"), "0000")
    assert str(e.value) == "pkcs11: wrong PIN for the token 'second'"


def test_missing_token(softhsm: SoftHsm) -> None:
    with pytest.raises(BackendUnavailableError) as e:
        Pkcs11Vault.open(softhsm.uri(token="no-such-token"), softhsm.pin)
    assert str(e.value).startswith("pkcs11: no token matching token=no-such-token")


def test_missing_module(softhsm: SoftHsm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        Pkcs11Vault.open(softhsm.uri(module="/nonexistent/libnothing.so"), softhsm.pin)
    not_a_module = tmp_path / "libfake.so"
    not_a_module.write_bytes(b"\x7fELF not really")
    with pytest.raises(BackendUnavailableError, match="cannot load the PKCS#11 module"):
        Pkcs11Vault.open(softhsm.uri(module=str(not_a_module)), softhsm.pin)


def test_uri_without_module_uses_the_environment(softhsm: SoftHsm,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSTACK_PKCS11_MODULE", raising=False)
    with pytest.raises(VaultError, match="names no module"):
        Pkcs11Vault.open(f"pkcs11:token={softhsm.token}", softhsm.pin)
    monkeypatch.setenv("TRUSTSTACK_PKCS11_MODULE", softhsm.module)
    v = Pkcs11Vault.open(f"pkcs11:token={softhsm.token}", softhsm.pin)
    v.close_sync()
    v = Pkcs11Vault.open(f"pkcs11:token={softhsm.token}?module-name=softhsm2", softhsm.pin)
    assert v.module.endswith("libsofthsm2.so")
    v.close_sync()


def test_vault_uri_must_not_name_an_object(softhsm: SoftHsm) -> None:
    with pytest.raises(VaultError, match="names a token, not an object"):
        Pkcs11Vault.open(f"pkcs11:token={softhsm.token};object=k?module-path={softhsm.module}",
                         softhsm.pin)


def test_pin_inside_the_uri_is_refused(softhsm: SoftHsm) -> None:
    for query in ("pin-value=1234", "pin-source=file:/tmp/pin"):
        with pytest.raises(VaultError, match="a PIN inside the URI is refused"):
            Pkcs11Vault.open(f"pkcs11:token={softhsm.token}?module-path={softhsm.module}&{query}", None)


def test_key_pairs_imported_by_softhsm2_util(vault: Pkcs11Vault, softhsm: SoftHsm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """softhsm2-util --import stores the public half too (its Ed25519 CKA_EC_POINT is the bare
    32 bytes, not DER-wrapped); truststack finds both and reports the imported public keys."""
    import subprocess

    from cryptography.hazmat.primitives import serialization

    keys: dict[str, tuple[str, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey]] = {
        "imp-p256": ("a1", ec.generate_private_key(ec.SECP256R1())),
        "imp-ed": ("a2", ed25519.Ed25519PrivateKey.generate())}
    for label, (hex_id, private) in keys.items():
        pem = tmp_path / f"{label}.pem"
        pem.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        subprocess.run(["softhsm2-util", "--import", str(pem), "--token", softhsm.token, "--label", label,
                        "--id", hex_id, "--pin", softhsm.pin], check=True, capture_output=True,
                       env={"SOFTHSM2_CONF": str(softhsm.conf), "PATH": "/usr/bin:/bin"}, timeout=30)
        handle = run(vault.resolve_key(label))
        assert handle == f"id={hex_id}"
        pk = run(vault.public_key(handle))
        assert pk == PublicKey.from_cryptography(private.public_key())
        assert verify_signature(pk, M, run(vault.sign(handle, M)))
