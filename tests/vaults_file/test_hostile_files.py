"""Tampered vault files get typed errors, quickly (issue 9, item 9): wrong types, short nonces,
deep nesting, huge KDF parameters, FIFOs, symbolic links, renamed key files, loose secret files."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vaults.errors import InsecureKeyFileError, KeyNotFoundError, VaultError, WrongPassphraseError
from vaults.file import KDF_LIMITS, FileVault, check_kdf_params
from vaults.keys import KeyType

FAST_KDF = {"iterations": 1, "memory_kib": 8192, "lanes": 1}
M = b"m" * 32


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def encrypted_vault(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    FileVault.create(tmp_path / "v", b"pw", kdf=FAST_KDF)
    meta_path = tmp_path / "v" / "vault.json"
    return meta_path, json.loads(meta_path.read_text())


def write(path: Path, data: bytes | str) -> None:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o600)


META_TAMPERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "format is true": lambda m: {**m, "format": True},
    "format is a string": lambda m: {**m, "format": "1"},
    "kdf is a list": lambda m: {**m, "kdf": [1, 2, 3]},
    "check is a string": lambda m: {**m, "check": "x"},
    "check is null": lambda m: {**m, "check": None},
    "salt is a number": lambda m: {**m, "kdf": {**m["kdf"], "salt": 5}},
    "salt too short": lambda m: {**m, "kdf": {**m["kdf"], "salt": base64.b64encode(b"s").decode()}},
    "short nonce": lambda m: {**m, "check": {**m["check"], "nonce": base64.b64encode(b"1234").decode()}},
    "nonce is a list": lambda m: {**m, "check": {**m["check"], "nonce": ["AAAA"]}},
    "huge memory": lambda m: {**m, "kdf": {**m["kdf"], "memory_kib": 2**40}},
    "huge iterations": lambda m: {**m, "kdf": {**m["kdf"], "iterations": 10**9}},
    "float lanes": lambda m: {**m, "kdf": {**m["kdf"], "lanes": 1.0}},
    "zero lanes": lambda m: {**m, "kdf": {**m["kdf"], "lanes": 0}},
    "bool iterations": lambda m: {**m, "kdf": {**m["kdf"], "iterations": True}},
    "extra field": lambda m: {**m, "extra": 1},
    "a list": lambda m: [m],
    "encryption is a dict": lambda m: {**m, "encryption": {"a": 1}},
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", sorted(META_TAMPERS))
def test_tampered_vault_json_gives_vault_error_quickly(tmp_path: Path, case: str) -> None:
    meta_path, meta = encrypted_vault(tmp_path)
    write(meta_path, json.dumps(META_TAMPERS[case](meta)))
    start = time.monotonic()
    with pytest.raises(VaultError):
        FileVault.open(tmp_path / "v", b"pw")
    assert time.monotonic() - start < 2


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", ["[" * 100_000, "{\"a\":" * 50_000, "1" * 5000, "NaN",
                                  '{"format": 1, "encryption": "none", "format": 1}', "\xff\xfe",
                                  "x" * 100_000])
def test_malformed_vault_json(tmp_path: Path, text: str) -> None:
    FileVault.create(tmp_path / "v")
    write(tmp_path / "v" / "vault.json", text.encode("latin-1") if text == "\xff\xfe" else text)
    with pytest.raises(VaultError):
        FileVault.open(tmp_path / "v")


@pytest.mark.timeout(10)
def test_vault_json_fifo_symlink_or_directory_refused(tmp_path: Path) -> None:
    FileVault.create(tmp_path / "v")
    meta = tmp_path / "v" / "vault.json"
    meta.unlink()
    os.mkfifo(meta, 0o600)  # a FIFO used to block the open forever
    with pytest.raises(VaultError, match="not a regular file"):
        FileVault.open(tmp_path / "v")
    meta.unlink()
    write(tmp_path / "real.json", '{"format": 1, "encryption": "none"}')
    meta.symlink_to(tmp_path / "real.json")
    with pytest.raises(InsecureKeyFileError, match="symbolic link"):
        FileVault.open(tmp_path / "v")
    meta.unlink()
    meta.mkdir(mode=0o700)
    with pytest.raises(VaultError, match="not a regular file"):
        FileVault.open(tmp_path / "v")


def key_file_vault(tmp_path: Path, passphrase: bytes | None) -> tuple[Path, str, dict[str, Any]]:
    v = FileVault.create(tmp_path / "v", passphrase, kdf=FAST_KDF)
    h = run(v.generate_key(KeyType.ED25519))
    path = tmp_path / "v" / f"{h}.key"
    return path, h, json.loads(path.read_text())


KEY_TAMPERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "short nonce": lambda d: {**d, "nonce": base64.b64encode(b"1234").decode()},
    "nonce is a number": lambda d: {**d, "nonce": 7},
    "ciphertext is a list": lambda d: {**d, "ciphertext": ["x"]},
    "kind is a list": lambda d: {**d, "kind": ["ed25519"]},
    "kind is p256": lambda d: {**d, "kind": "p256"},
    "format is true": lambda d: {**d, "format": True},
    "no ciphertext": lambda d: {k: v for k, v in d.items() if k != "ciphertext"},
    "both forms": lambda d: {**d, "pkcs8": "AAAA"},
    "huge ciphertext": lambda d: {**d, "ciphertext": "A" * 3000},
    "a string": lambda d: "key",
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", sorted(KEY_TAMPERS))
def test_tampered_encrypted_key_file(tmp_path: Path, case: str) -> None:
    path, h, doc = key_file_vault(tmp_path, b"pw")
    write(path, json.dumps(KEY_TAMPERS[case](doc)))
    with pytest.raises(VaultError):
        run(FileVault.open(tmp_path / "v", b"pw").sign(h, M))


@pytest.mark.parametrize("value", [7, None, ["AAAA"], "not base64!", "A" * 5000, ""])
def test_tampered_plain_key_file(tmp_path: Path, value: Any) -> None:
    path, h, doc = key_file_vault(tmp_path, None)
    write(path, json.dumps({**doc, "pkcs8": value}))
    with pytest.raises(VaultError):
        run(FileVault.open(tmp_path / "v").sign(h, M))


def test_a_key_file_must_match_its_handle(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v")
    h1 = run(v.generate_key(KeyType.ED25519))
    h2 = run(v.generate_key(KeyType.ED25519))
    (tmp_path / "v" / f"{h1}.key").write_bytes((tmp_path / "v" / f"{h2}.key").read_bytes())
    with pytest.raises(VaultError, match="another key than its name"):
        run(FileVault.open(tmp_path / "v").sign(h1, M))
    x = v.generate_x25519(persist=True)
    (tmp_path / "v" / f"{x}.key").write_bytes(
        (tmp_path / "v" / f"{v.generate_x25519(persist=True)}.key").read_bytes())
    with pytest.raises(VaultError, match="another key than its name"):
        FileVault.open(tmp_path / "v").x25519_public_key(x)


@pytest.mark.timeout(10)
def test_key_file_fifo_symlink_directory_or_oversize_refused(tmp_path: Path) -> None:
    path, h, doc = key_file_vault(tmp_path, None)
    real = tmp_path / "elsewhere.key"
    real.write_bytes(path.read_bytes())
    real.chmod(0o600)
    path.unlink()
    path.symlink_to(real)
    with pytest.raises(InsecureKeyFileError, match="symbolic link"):
        run(FileVault.open(tmp_path / "v").sign(h, M))
    path.unlink()
    os.mkfifo(path, 0o600)
    with pytest.raises(VaultError, match="not a regular file"):
        run(FileVault.open(tmp_path / "v").sign(h, M))
    path.unlink()
    path.mkdir(mode=0o700)
    with pytest.raises(VaultError, match="not a regular file"):
        run(FileVault.open(tmp_path / "v").sign(h, M))
    path.rmdir()
    write(path, json.dumps(doc) + " " * 100_000)
    with pytest.raises(VaultError, match="too large"):
        run(FileVault.open(tmp_path / "v").sign(h, M))
    path.unlink()
    path.symlink_to(tmp_path / "missing")  # a dangling link is refused, not "no such key"
    with pytest.raises(InsecureKeyFileError):
        run(FileVault.open(tmp_path / "v").sign(h, M))


def test_kdf_parameters_are_bounded_at_create(tmp_path: Path) -> None:
    for key, (lo, hi) in KDF_LIMITS.items():
        for bad in (lo - 1, hi + 1):
            with pytest.raises(VaultError, match=key):
                FileVault.create(tmp_path / "v", b"pw", kdf={**FAST_KDF, key: bad})
            assert not (tmp_path / "v").exists()
    assert check_kdf_params(FAST_KDF) == FAST_KDF


def test_empty_passphrase_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(WrongPassphraseError, match="empty"):
        FileVault.create(tmp_path / "v", b"")
    assert not (tmp_path / "v").exists()


# -- passphrase and PIN files --------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_secret_files_are_refused_like_key_files(tmp_path: Path) -> None:
    from trust.vault_config import read_secret

    secret = tmp_path / "pin"
    secret.write_text("1234\n")
    params = {"pin_file": str(secret)}
    secret.chmod(0o640)
    with pytest.raises(InsecureKeyFileError, match="chmod 0600"):
        read_secret(params, "pin_env", "pin_file", "PIN")
    secret.chmod(0o604)
    with pytest.raises(InsecureKeyFileError):
        read_secret(params, "pin_env", "pin_file", "PIN")
    secret.chmod(0o600)
    assert read_secret(params, "pin_env", "pin_file", "PIN") == b"1234"
    link = tmp_path / "link"
    link.symlink_to(secret)  # a link to a private file is fine (e.g. mounted secrets)
    assert read_secret({"pin_file": str(link)}, "pin_env", "pin_file", "PIN") == b"1234"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(VaultError, match="not a regular file"):
        read_secret({"pin_file": str(fifo)}, "pin_env", "pin_file", "PIN")
    big = tmp_path / "big"
    write(big, b"x" * 100_000)
    with pytest.raises(VaultError, match="too large"):
        read_secret({"pin_file": str(big)}, "pin_env", "pin_file", "PIN")
    with pytest.raises(WrongPassphraseError, match="does not exist"):
        read_secret({"pin_file": str(tmp_path / "none")}, "pin_env", "pin_file", "PIN")


def test_open_vault_refuses_a_readable_passphrase_file(tmp_path: Path) -> None:
    from trust.vault_config import VaultConfig, open_vault

    pw = tmp_path / "pw"
    write(pw, "secret\n")
    FileVault.create(tmp_path / "home" / "vaults" / "s", b"secret", kdf=FAST_KDF)
    config = VaultConfig("s", "file", {"passphrase_file": str(pw)})
    assert run(open_vault(config, tmp_path / "home")).encrypted
    pw.chmod(0o644)
    with pytest.raises(InsecureKeyFileError):
        run(open_vault(config, tmp_path / "home"))


def test_missing_key_is_still_key_not_found(tmp_path: Path) -> None:
    v = FileVault.create(tmp_path / "v")
    with pytest.raises(KeyNotFoundError):
        run(v.sign("ab" * 32, M))
