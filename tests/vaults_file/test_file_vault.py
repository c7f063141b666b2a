"""The file vault: modes, atomic writes, encryption, refusal of unsafe files; software vault."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from vaults.errors import (
    InsecureKeyFileError,
    KeyNotFoundError,
    VaultError,
    WrongPassphraseError,
)
from vaults.file import FileVault
from vaults.keys import KeyType, PublicKey, der_to_raw_signature, raw_to_der_signature
from vaults.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256
from vaults.software import SoftwareVault
from vaults.verify import verify_signature

FAST_KDF = {"iterations": 1, "memory_kib": 8192, "lanes": 1}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.mark.parametrize("key_type", list(KeyType))
@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_round_trip_each_key_type(tmp_path: Path, key_type: KeyType, passphrase: bytes | None) -> None:
    old = os.umask(0o022)
    try:
        v = FileVault.create(tmp_path / "v", passphrase, kdf=FAST_KDF)
        h = run(v.generate_key(key_type))
        m = hashlib.sha256(b"data").digest()
        sig = run(v.sign(h, m))
        pk = run(v.public_key(h))
        assert verify_signature(pk, m, sig)
        # a fresh open reads the key back from disk
        v2 = FileVault.open(tmp_path / "v", passphrase)
        assert run(v2.public_key(h)) == pk
        assert verify_signature(pk, m, run(v2.sign(h, m)))
        assert run(v2.list_keys()) == [h]
        assert (tmp_path / "v").stat().st_mode & 0o777 == 0o700
        for f in (tmp_path / "v").iterdir():
            assert f.stat().st_mode & 0o777 == 0o600, f
            assert not f.name.startswith(".tmp-")
        assert run(v2.delete_key(h)) is True
        assert run(v2.delete_key(h)) is False
        with pytest.raises(KeyNotFoundError):
            run(FileVault.open(tmp_path / "v", passphrase).public_key(h))
    finally:
        os.umask(old)


def test_encrypted_key_file_holds_no_plaintext_key(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v", b"pw", kdf=FAST_KDF)
    h = run(v.generate_key(KeyType.ED25519))
    doc = json.loads((tmp_path / "v" / f"{h}.key").read_text())
    assert "pkcs8" not in doc and "ciphertext" in doc


def test_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    FileVault.create(tmp_path / "v", b"right", kdf=FAST_KDF)
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        FileVault.open(tmp_path / "v", b"wrong")
    with pytest.raises(WrongPassphraseError, match="no passphrase"):
        FileVault.open(tmp_path / "v", None)


def test_group_readable_file_or_directory_refused(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v")
    h = run(v.generate_key(KeyType.ED25519))
    key_file = tmp_path / "v" / f"{h}.key"
    os.chmod(key_file, 0o640)
    with pytest.raises(InsecureKeyFileError, match="chmod 0600"):
        run(FileVault.open(tmp_path / "v").sign(h, b"m" * 32))
    os.chmod(key_file, 0o600)
    os.chmod(tmp_path / "v", 0o755)
    with pytest.raises(InsecureKeyFileError, match="chmod 0700"):
        FileVault.open(tmp_path / "v")


def test_tampered_or_renamed_encrypted_file_fails(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v", b"pw", kdf=FAST_KDF)
    h1 = run(v.generate_key(KeyType.ED25519))
    h2 = run(v.generate_key(KeyType.ED25519))
    p1, p2 = tmp_path / "v" / f"{h1}.key", tmp_path / "v" / f"{h2}.key"
    doc = json.loads(p1.read_text())
    ct = bytearray(__import__("base64").b64decode(doc["ciphertext"]))
    ct[5] ^= 1
    doc["ciphertext"] = __import__("base64").b64encode(bytes(ct)).decode()
    p1.write_text(json.dumps(doc))
    with pytest.raises(VaultError, match="does not decrypt"):
        run(FileVault.open(tmp_path / "v", b"pw").sign(h1, b"m" * 32))
    # a valid file moved to another handle's name does not decrypt either (handle is AAD)
    p1.write_bytes(p2.read_bytes())
    with pytest.raises(VaultError, match="does not decrypt"):
        run(FileVault.open(tmp_path / "v", b"pw").sign(h1, b"m" * 32))


def test_create_refuses_existing_and_bad_handles(tmp_path: Path) -> None:
    FileVault.create(tmp_path / "v")
    with pytest.raises(VaultError, match="already exists"):
        FileVault.create(tmp_path / "v")
    v = FileVault.open(tmp_path / "v")
    with pytest.raises(KeyNotFoundError):
        run(v.sign("../../etc/passwd", b"m" * 32))


def test_x25519_static_keys_persist(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v")
    h = v.generate_x25519(persist=True)
    eph = v.generate_x25519()
    pub = v.x25519_public_key(h)
    v2 = FileVault.open(tmp_path / "v")
    assert v2.x25519_public_key(h) == pub
    assert v2.x25519_dh(h, v.x25519_public_key(eph)) == v.x25519_dh(eph, pub)
    assert v2.list_x25519() == [h]
    with pytest.raises(KeyNotFoundError):
        v2.x25519_public_key(eph)
    with pytest.raises(VaultError):
        v.x25519_dh(h, b"\x00" * 32)  # all-zero shared secret (small-order point)


def test_software_vault_import_and_deterministic_p256() -> None:
    v = SoftwareVault()
    h = run(v.import_key(KeyType.P256, b"\xc5" * 32))
    m = hashlib.sha256(b"x").digest()
    assert run(v.sign(h, m)) == run(v.sign(h, m))  # RFC 6979
    assert h == hashlib.sha256(run(v.public_key(h)).data).hexdigest()
    with pytest.raises(VaultError):
        run(v.import_key(KeyType.ED25519, b"short"))


def test_primitives() -> None:
    k1, k2 = hkdf_sha256(b"salt", b"ikm", 2)
    assert len(k1) == len(k2) == 32 and k1 != k2
    assert hkdf_sha256(b"salt", b"ikm", 3)[:2] == (k1, k2)
    ct = aes_gcm_encrypt(k1, b"\x00" * 12, b"hello", b"ad")
    assert aes_gcm_decrypt(k1, b"\x00" * 12, ct, b"ad") == b"hello"
    with pytest.raises(VaultError):
        aes_gcm_decrypt(k1, b"\x00" * 12, ct, b"other")


def test_signature_and_key_conversions() -> None:
    raw = bytes(range(1, 65))
    assert der_to_raw_signature(raw_to_der_signature(raw)) == raw
    with pytest.raises(VaultError):
        PublicKey(KeyType.P256, b"\x02" + b"\x00" * 64)
    with pytest.raises(VaultError):
        KeyType.parse("rsa")
    assert KeyType.parse("P-256") is KeyType.P256
    assert not verify_signature(PublicKey(KeyType.P256, b"\x04" + b"\x00" * 64), b"m", raw)
    assert not verify_signature(PublicKey(KeyType.ED25519, b"\x00" * 32), b"m", b"short")


def test_vaults_satisfy_the_interfaces(tmp_path: Path) -> None:
    from vaults.secure_channel import SecureChannelVault
    from vaults.signing import SigningVault

    for v in (SoftwareVault(), FileVault.create(tmp_path / "v")):
        assert isinstance(v, SigningVault) and isinstance(v, SecureChannelVault)
