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

Every file is read as hostile input: opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link is
refused and a FIFO cannot block the open), checked with ``fstat`` (a regular file of this user,
0600), read up to a size limit, and its JSON checked field by field (exact keys, types, lengths;
key-derivation parameters within :data:`KDF_LIMITS`). A loaded key must match its handle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vaults.errors import InsecureKeyFileError, KeyNotFoundError, VaultError, WrongPassphraseError
from vaults.safe_files import FileRefused, read_bounded_file, write_private_file
from vaults.software import SigningPrivateKey, SoftwareVault, public_key_of, signing_handle

FORMAT_VERSION = 1
_KDF_DEFAULTS = {"iterations": 3, "memory_kib": 65536, "lanes": 4}
KDF_LIMITS = {"iterations": (1, 8), "memory_kib": (8192, 524288), "lanes": (1, 8)}
"""Inclusive bounds of the Argon2id parameters a vault may use (``vault.json`` or ``kdf=``): the
most a tampered file can cost is one derivation with 512 MiB and 8 passes."""
MAX_META_BYTES = 4096
"""Largest ``vault.json`` read (ours is about 400 bytes)."""
MAX_KEY_FILE_BYTES = 4096
"""Largest key file read (an encrypted P-256 key file is about 300 bytes)."""
_CHECK_PLAINTEXT = b"truststack file vault"
_HANDLE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_KINDS = ("ed25519", "p256", "x25519")
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")

AnyPrivateKey = SigningPrivateKey | x25519.X25519PrivateKey


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: Any, what: str, *, size: int | None = None, max_size: int = 1024) -> bytes:
    """Strict base64 of a JSON string field: exactly ``size`` bytes, or at most ``max_size``."""
    if not isinstance(s, str) or len(s) > 4 * (max_size // 3 + 1) or not _B64_RE.match(s):
        raise VaultError(f"malformed {what}")
    try:
        data = base64.b64decode(s, validate=True)
    except (ValueError, binascii.Error):
        raise VaultError(f"malformed {what}") from None
    if (size is not None and len(data) != size) or len(data) > max_size:
        raise VaultError(f"malformed {what}: {len(data)} bytes")
    return data


def read_private_file(path: Path, *, limit: int, follow_symlinks: bool = False,
                      what: str = "file") -> bytes:
    """The bytes of a private file (a key file, ``vault.json``, a PIN or passphrase file).

    Read by :func:`vaults.safe_files.read_bounded_file` (no FIFO can block it; a link is refused
    unless ``follow_symlinks``): a regular file of this user that nobody else can access, of at
    most ``limit`` bytes. :class:`KeyNotFoundError` when it does not exist,
    :class:`InsecureKeyFileError` for a link, another owner or a loose mode, :class:`VaultError`
    otherwise.
    """
    try:
        return read_bounded_file(path, limit=limit, follow_symlinks=follow_symlinks,
                                 private=True, what=what)
    except FileRefused as e:
        if e.reason == "missing":
            raise KeyNotFoundError(e.message) from None
        if e.reason in ("link", "not_private"):
            raise InsecureKeyFileError(e.message) from None
        raise VaultError(e.message) from None


def _check_stat(path: Path, st: os.stat_result, *, want: str) -> None:
    if st.st_uid != os.geteuid():
        raise InsecureKeyFileError(f"{path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        raise InsecureKeyFileError(
            f"{path} is accessible by others (mode {st.st_mode & 0o777:04o}); "
            f"run: chmod {want} {path}"
        )


def _parse_json_object(data: bytes, path: Path, what: str) -> dict[str, Any]:
    """A JSON object, strictly: UTF-8, no NaN/Infinity, nesting refused, no duplicate keys."""
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate key")
        return out

    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=unique)
    except (ValueError, RecursionError):
        raise VaultError(f"{what} {path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise VaultError(f"{what} {path} is not a JSON object")
    return doc


def _int_field(doc: dict[str, Any], key: str, path: Path, bounds: tuple[int, int]) -> int:
    value = doc.get(key)
    lo, hi = bounds
    if type(value) is not int or not lo <= value <= hi:
        raise VaultError(f"{path}: {key} must be an integer from {lo} to {hi}")
    return value


def check_kdf_params(params: dict[str, Any], where: str = "key-derivation parameters") -> dict[str, int]:
    """The Argon2id parameters if each is an integer within :data:`KDF_LIMITS` (else VaultError)."""
    out: dict[str, int] = {}
    for key, (lo, hi) in KDF_LIMITS.items():
        value = params.get(key)
        if type(value) is not int or not lo <= value <= hi:
            raise VaultError(f"{where}: {key} must be an integer from {lo} to {hi}")
        out[key] = value
    if out["memory_kib"] < 8 * out["lanes"]:
        raise VaultError(f"{where}: memory_kib must be at least 8 per lane")
    return out


def check_private(path: Path, *, directory: bool = False) -> None:
    """Refuse a key file or vault directory that others can read or another user owns."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyNotFoundError(f"{path} does not exist") from None
    except OSError as e:
        raise VaultError(f"cannot read {path}: {e.strerror or e}") from None
    if directory and not stat.S_ISDIR(st.st_mode):
        raise VaultError(f"{path} is not a directory")
    _check_stat(path, st, want="0700" if directory else "0600")


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
        """A new vault in ``directory`` (created 0700). Everything is checked before anything is
        written; if writing fails, a directory this call created is removed again."""
        d = Path(directory)
        if passphrase is not None and not passphrase:
            raise WrongPassphraseError("the passphrase is empty")
        params = check_kdf_params(dict(_KDF_DEFAULTS, **(kdf or {}))) if passphrase is not None \
            else None
        if os.path.lexists(d / "vault.json"):
            raise VaultError(f"a vault already exists in {d}")
        created = not os.path.lexists(d)
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            meta: dict[str, Any] = {"format": FORMAT_VERSION, "encryption": "none"}
            key = None
            if passphrase is not None and params is not None:
                salt = os.urandom(16)
                key = _derive(passphrase, salt, params)
                nonce = os.urandom(12)
                check = AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, b"truststack-vault-check")
                meta.update(encryption="argon2id-aes256gcm", kdf=dict(params, salt=_b64(salt)),
                            check={"nonce": _b64(nonce), "ciphertext": _b64(check)})
            write_private_file(d / "vault.json", json.dumps(meta, indent=1).encode())
        except BaseException as e:
            if created:
                import shutil

                shutil.rmtree(d, ignore_errors=True)
            if isinstance(e, OSError):
                raise VaultError(f"cannot create the vault in {d}: {e.strerror or e}") from None
            raise
        return cls(d, key)

    @classmethod
    def open(cls, directory: str | os.PathLike[str], passphrase: bytes | None = None) -> FileVault:
        d = Path(directory)
        meta_path = d / "vault.json"
        if not os.path.lexists(meta_path):
            raise VaultError(f"no file vault in {d}")
        check_private(d, directory=True)
        meta = _parse_json_object(read_private_file(meta_path, limit=MAX_META_BYTES, what="vault file"),
                                  meta_path, "vault file")
        if type(meta.get("format")) is not int or meta["format"] != FORMAT_VERSION:
            raise VaultError(f"{meta_path}: unsupported vault format")
        encryption = meta.get("encryption")
        if encryption == "none":
            if set(meta) != {"format", "encryption"}:
                raise VaultError(f"{meta_path}: unexpected fields for an unencrypted vault")
            return cls(d, None)
        if encryption != "argon2id-aes256gcm":
            shown = encryption if isinstance(encryption, str) and len(encryption) <= 40 else "?"
            raise VaultError(f"{meta_path}: unsupported encryption {shown!r}")
        if set(meta) != {"format", "encryption", "kdf", "check"}:
            raise VaultError(f"{meta_path}: wrong fields for an encrypted vault")
        kdf, check = meta["kdf"], meta["check"]
        if not isinstance(kdf, dict) or set(kdf) != {"iterations", "memory_kib", "lanes", "salt"}:
            raise VaultError(f"{meta_path}: malformed key-derivation parameters")
        if not isinstance(check, dict) or set(check) != {"nonce", "ciphertext"}:
            raise VaultError(f"{meta_path}: malformed passphrase check")
        params = check_kdf_params(kdf, str(meta_path))
        salt = _unb64(kdf["salt"], f"{meta_path}: salt", max_size=64)
        if len(salt) < 16:
            raise VaultError(f"{meta_path}: the salt is shorter than 16 bytes")
        nonce = _unb64(check["nonce"], f"{meta_path}: check nonce", size=12)
        sealed = _unb64(check["ciphertext"], f"{meta_path}: check value",
                        size=len(_CHECK_PLAINTEXT) + 16)
        if passphrase is None:
            raise WrongPassphraseError("the vault is encrypted and no passphrase was given")
        key = _derive(passphrase, salt, params)
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, b"truststack-vault-check")
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
        try:
            data = read_private_file(path, limit=MAX_KEY_FILE_BYTES, what="key file")
        except KeyNotFoundError:
            return None
        doc = _parse_json_object(data, path, "key file")
        if type(doc.get("format")) is not int or doc["format"] != FORMAT_VERSION:
            raise VaultError(f"key file {path}: unsupported format")
        kind = doc.get("kind")
        if kind not in _KINDS:
            raise VaultError(f"key file {path}: unknown key kind")
        if set(doc) == {"format", "kind", "pkcs8"}:
            if self._key is not None:
                raise VaultError(f"key file {path} is not encrypted in an encrypted vault")
            der = _unb64(doc["pkcs8"], f"key file {path}", max_size=512)
        elif set(doc) == {"format", "kind", "nonce", "ciphertext"}:
            if self._key is None:
                raise WrongPassphraseError(f"key file {path} is encrypted; the vault has no passphrase")
            nonce = _unb64(doc["nonce"], f"key file {path}: nonce", size=12)
            sealed = _unb64(doc["ciphertext"], f"key file {path}: ciphertext", max_size=528)
            try:
                der = self._key.decrypt(nonce, sealed, _aad(handle, kind))
            except InvalidTag:
                raise VaultError(f"key file {path} does not decrypt (tampered, renamed or "
                                 "another vault's)") from None
        else:
            raise VaultError(f"key file {path}: wrong fields")
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise VaultError(f"key file {path} holds no valid private key") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey,
                                x25519.X25519PrivateKey)) or _kind_of_or_none(key) != kind:
            raise VaultError(f"key file {path} holds a key of the wrong kind")
        if handle_of(key) != handle:
            raise VaultError(f"key file {path} holds another key than its name says (renamed "
                             "or tampered)")
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


def handle_of(key: AnyPrivateKey) -> str:
    """The handle the vault gives ``key``: the SHA-256 of its public key (``x25519-`` prefixed for
    secure-channel keys)."""
    if isinstance(key, x25519.X25519PrivateKey):
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "x25519-" + hashlib.sha256(pub).hexdigest()
    return signing_handle(public_key_of(key))


def _kind_of_or_none(key: object) -> str | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, x25519.X25519PrivateKey):
        return "x25519"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "p256"
    return None


def _kind_of(key: AnyPrivateKey) -> str:
    kind = _kind_of_or_none(key)
    if kind is not None:
        return kind
    raise VaultError(f"unsupported key {type(key).__name__}")


def _aad(handle: str, kind: str) -> bytes:
    return f"truststack-key-v{FORMAT_VERSION}\x00{handle}\x00{kind}".encode()


def _derive(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    try:
        return Argon2id(salt=salt, length=32, iterations=params["iterations"],
                        lanes=params["lanes"], memory_cost=params["memory_kib"]).derive(passphrase)
    except (ValueError, MemoryError) as e:
        raise VaultError(f"invalid key-derivation parameters: {e}") from None
