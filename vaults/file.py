"""The file vault: one key file per key under a 0700 directory, 0600 files written atomically.

Layout of ``<dir>``:

- ``vault.json`` — format version and, for an encrypted vault, the Argon2id parameters and salt
  plus a check value that detects a wrong passphrase.
- ``<handle>.key`` — JSON: ``{"format": 1, "kind": "ed25519|p256|x25519", ...}`` with either
  ``"pkcs8"`` (base64 DER, unencrypted vault) or ``"nonce"`` + ``"ciphertext"`` (AES-256-GCM over
  the PKCS#8 DER with the vault key; the associated data binds the format version, the handle and
  the kind, so a file renamed to another handle or kind does not decrypt).

The vault key is derived once per open vault (Argon2id, t=3, m=64 MiB, p=4), so opening an
encrypted vault costs one derivation and every key after that is cheap. Key files and the
directory are refused when others can read them or another user owns them (as ssh does).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vaults.errors import InsecureKeyFileError, KeyNotFoundError, VaultError, WrongPassphraseError
from vaults.software import SigningPrivateKey, SoftwareVault

FORMAT_VERSION = 1
_KDF_DEFAULTS = {"iterations": 3, "memory_kib": 65536, "lanes": 4}
_CHECK_PLAINTEXT = b"truststack file vault"
_HANDLE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

AnyPrivateKey = SigningPrivateKey | x25519.X25519PrivateKey


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(s), validate=True)
    except (ValueError, TypeError):
        raise VaultError(f"malformed {what}") from None


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600: temp file in the same directory,
    fsync, rename over the target, fsync the directory. The temp file is removed on error."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def check_private(path: Path, *, directory: bool = False) -> None:
    """Refuse a key file or vault directory that others can read or another user owns."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyNotFoundError(f"{path} does not exist") from None
    if st.st_uid != os.geteuid():
        raise InsecureKeyFileError(f"{path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        want = "0700" if directory else "0600"
        raise InsecureKeyFileError(
            f"{path} is accessible by others (mode {st.st_mode & 0o777:04o}); "
            f"run: chmod {want} {path}"
        )


class FileVault(SoftwareVault):
    """A software vault whose keys live in files. Create with :meth:`create`, open with
    :meth:`open` (both validate permissions and, if encrypted, the passphrase)."""

    def __init__(self, directory: Path, key: bytes | None) -> None:
        super().__init__()
        self.directory = directory
        self._key = AESGCM(key) if key is not None else None

    @property
    def backend(self) -> str:
        return "file"

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    # -- creation and opening -------------------------------------------------------------------
    @classmethod
    def create(cls, directory: str | os.PathLike[str], passphrase: bytes | None = None,
               *, kdf: dict[str, int] | None = None) -> FileVault:
        d = Path(directory)
        if (d / "vault.json").exists():
            raise VaultError(f"a vault already exists in {d}")
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        meta: dict[str, Any] = {"format": FORMAT_VERSION, "encryption": "none"}
        key = None
        if passphrase is not None:
            if not passphrase:
                raise WrongPassphraseError("the passphrase is empty")
            params = dict(_KDF_DEFAULTS, **(kdf or {}))
            salt = os.urandom(16)
            key = _derive(passphrase, salt, params)
            nonce = os.urandom(12)
            check = AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, b"truststack-vault-check")
            meta.update(encryption="argon2id-aes256gcm", kdf=dict(params, salt=_b64(salt)),
                        check={"nonce": _b64(nonce), "ciphertext": _b64(check)})
        write_private_file(d / "vault.json", json.dumps(meta, indent=1).encode())
        return cls(d, key)

    @classmethod
    def open(cls, directory: str | os.PathLike[str], passphrase: bytes | None = None) -> FileVault:
        d = Path(directory)
        meta_path = d / "vault.json"
        if not meta_path.exists():
            raise VaultError(f"no file vault in {d}")
        check_private(d, directory=True)
        check_private(meta_path)
        try:
            meta = json.loads(meta_path.read_bytes())
        except ValueError:
            raise VaultError(f"{meta_path} is not valid JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise VaultError(f"{meta_path}: unsupported vault format")
        if meta.get("encryption") == "none":
            return cls(d, None)
        if meta.get("encryption") != "argon2id-aes256gcm":
            raise VaultError(f"{meta_path}: unsupported encryption {meta.get('encryption')!r}")
        if passphrase is None:
            raise WrongPassphraseError("the vault is encrypted and no passphrase was given")
        kdf = meta.get("kdf") or {}
        try:
            params = {k: int(kdf[k]) for k in ("iterations", "memory_kib", "lanes")}
        except (KeyError, TypeError, ValueError):
            raise VaultError(f"{meta_path}: malformed key-derivation parameters") from None
        key = _derive(passphrase, _unb64(kdf.get("salt"), "vault salt"), params)
        check = meta.get("check") or {}
        try:
            plain = AESGCM(key).decrypt(_unb64(check.get("nonce"), "vault check"),
                                        _unb64(check.get("ciphertext"), "vault check"),
                                        b"truststack-vault-check")
        except InvalidTag:
            raise WrongPassphraseError("wrong passphrase for the vault") from None
        if plain != _CHECK_PLAINTEXT:
            raise WrongPassphraseError("wrong passphrase for the vault")
        return cls(d, key)

    # -- persistence hooks ---------------------------------------------------------------------
    def _path(self, handle: str) -> Path:
        if not _HANDLE_RE.match(handle):
            raise KeyNotFoundError(f"invalid key handle {handle!r}")
        return self.directory / f"{handle}.key"

    def _persist(self, handle: str, private: AnyPrivateKey) -> None:
        kind = _kind_of(private)
        der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        doc: dict[str, Any] = {"format": FORMAT_VERSION, "kind": kind}
        if self._key is None:
            doc["pkcs8"] = _b64(der)
        else:
            nonce = os.urandom(12)
            doc["nonce"] = _b64(nonce)
            doc["ciphertext"] = _b64(self._key.encrypt(nonce, der, _aad(handle, kind)))
        write_private_file(self._path(handle), json.dumps(doc).encode())

    def _load(self, handle: str) -> AnyPrivateKey | None:
        path = self._path(handle)
        if not path.exists():
            return None
        check_private(path)
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            raise VaultError(f"key file {path} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise VaultError(f"key file {path}: unsupported format")
        kind = str(doc.get("kind"))
        if "pkcs8" in doc:
            if self._key is not None:
                raise VaultError(f"key file {path} is not encrypted in an encrypted vault")
            der = _unb64(doc["pkcs8"], f"key file {path}")
        else:
            if self._key is None:
                raise WrongPassphraseError(f"key file {path} is encrypted; the vault has no passphrase")
            try:
                der = self._key.decrypt(_unb64(doc.get("nonce"), f"key file {path}"),
                                        _unb64(doc.get("ciphertext"), f"key file {path}"),
                                        _aad(handle, kind))
            except InvalidTag:
                raise VaultError(f"key file {path} does not decrypt (tampered, renamed or "
                                 "another vault's)") from None
        try:
            key = serialization.load_der_private_key(der, password=None)
        except ValueError:
            raise VaultError(f"key file {path} holds no valid private key") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey,
                                x25519.X25519PrivateKey)) or _kind_of(key) != kind:
            raise VaultError(f"key file {path} holds a key of the wrong kind")
        return key

    def _forget(self, handle: str) -> bool:
        path = self._path(handle)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    async def list_keys(self) -> list[str]:
        handles = {p.name[: -len(".key")] for p in self.directory.glob("*.key")}
        return sorted(h for h in handles if not h.startswith("x25519-"))

    def list_x25519(self) -> list[str]:
        return sorted(p.name[: -len(".key")] for p in self.directory.glob("x25519-*.key"))


def _kind_of(key: AnyPrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, x25519.X25519PrivateKey):
        return "x25519"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "p256"
    raise VaultError(f"unsupported key {type(key).__name__}")


def _aad(handle: str, kind: str) -> bytes:
    return f"truststack-key-v{FORMAT_VERSION}\x00{handle}\x00{kind}".encode()


def _derive(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    try:
        return Argon2id(salt=salt, length=32, iterations=params["iterations"],
                        lanes=params["lanes"], memory_cost=params["memory_kib"]).derive(passphrase)
    except ValueError as e:
        raise VaultError(f"invalid key-derivation parameters: {e}") from None
