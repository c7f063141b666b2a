"""Vault configurations and how to open them (the composition point for vault backends).

A :class:`VaultConfig` names a backend and its parameters. Secrets are referenced, never stored:
``passphrase_env`` / ``passphrase_file`` (file vault), ``pin_env`` / ``pin_file`` (PKCS#11).
:func:`open_vault` imports a backend's module only when a vault of that backend is opened, so the
CLI starts fast. Backends register themselves in :data:`BACKENDS`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trust import vault_backends
from trust.errors import ConflictError, StorageError, UsageError
from trust.home import home_dir
from trust.progress import enabled as progress_enabled
from trust.progress import progress
from vaults.errors import VaultError, WrongPassphraseError
from vaults.signing import SigningVault

DEFAULT_VAULT = "default"


@dataclass(frozen=True)
class VaultConfig:
    name: str
    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0

    def public_view(self) -> dict[str, Any]:
        """What ``vault show`` prints: the backend and its parameters (no secret is stored)."""
        return {"name": self.name, "backend": self.backend, **self.params,
                "created_at": self.created_at}


def read_secret(params: dict[str, Any], env_key: str, file_key: str, what: str) -> bytes | None:
    """Read a secret named by the configuration: an environment variable or a file."""
    var = params.get(env_key)
    path = params.get(file_key)
    if var:
        value = os.environ.get(str(var))
        if value is None:
            raise WrongPassphraseError(f"the {what} is read from ${var}, which is not set")
        return value.encode()
    if path:
        return read_secret_file(Path(str(path)), what)
    return None


MAX_SECRET_FILE_BYTES = 65536


def read_secret_file(path: Path, what: str = "passphrase") -> bytes:
    """The secret in ``path`` without its final line break. Refused, as key files are, unless it
    is a regular file of this user that group and others cannot access (a symbolic link to such a
    file is fine); at most :data:`MAX_SECRET_FILE_BYTES`; a FIFO cannot block the read."""
    from vaults.errors import KeyNotFoundError
    from vaults.file import read_private_file

    try:
        data = read_private_file(path, limit=MAX_SECRET_FILE_BYTES, follow_symlinks=True,
                                 what=f"the {what} file")
    except KeyNotFoundError:
        raise WrongPassphraseError(f"cannot read the {what} from {path}: it does not exist") from None
    return data.rstrip(b"\r\n")


def vault_dir(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "vaults" / name


def check_vault_name(name: str) -> str:
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "-_." for ch in name) \
            or name.startswith("."):
        raise UsageError(f"invalid vault name {name!r} (letters, digits, '-', '_', '.')")
    return name


async def _open_file(config: VaultConfig, home: str | os.PathLike[str] | None) -> SigningVault:
    from vaults.file import FileVault

    passphrase = read_secret(config.params, "passphrase_env", "passphrase_file", "passphrase")
    return FileVault.open(vault_dir(config.name, home), passphrase)


Opener = Callable[[VaultConfig, "str | os.PathLike[str] | None"], Awaitable[SigningVault]]

BACKENDS: dict[str, Opener] = {"file": _open_file, **vault_backends.OPENERS}


async def open_vault(config: VaultConfig, home: str | os.PathLike[str] | None = None) -> SigningVault:
    opener = BACKENDS.get(config.backend)
    if opener is None:
        raise VaultError(f"vault {config.name!r} uses the unknown backend {config.backend!r}")
    if not progress_enabled() or config.backend == "file":
        return await opener(config, home)
    label = f"vault {config.name} ({config.backend})"
    with progress(f"{label}: opening"):
        vault = await opener(config, home)
    wrapped: SigningVault = vault_backends.ProgressVault(vault, label)
    return wrapped


async def _create_file(name: str, params: dict[str, Any],
                       home: str | os.PathLike[str] | None) -> dict[str, Any]:
    from vaults.file import FileVault

    passphrase_env = params.get("passphrase_env")
    passphrase_file = params.get("passphrase_file")
    if passphrase_env and passphrase_file:
        raise UsageError("give either --passphrase-env or --passphrase-file, not both")
    out: dict[str, Any] = {"path": str(vault_dir(name, home))}
    if passphrase_env:
        out["passphrase_env"] = str(passphrase_env)
    if passphrase_file:
        out["passphrase_file"] = str(Path(str(passphrase_file)).resolve())
    passphrase = read_secret(out, "passphrase_env", "passphrase_file", "passphrase")
    if passphrase is not None and not passphrase:
        raise WrongPassphraseError("the passphrase is empty")
    from trust.home import ensure_dir

    ensure_dir(vault_dir(name, home).parent)
    FileVault.create(vault_dir(name, home), passphrase)  # removes what it made if it fails
    return out


async def _delete_file(config: VaultConfig, home: str | os.PathLike[str] | None) -> None:
    _remove_tree(vault_dir(config.name, home))


def _remove_tree(d: Path) -> None:
    import shutil

    try:
        if d.is_symlink() or (os.path.lexists(d) and not d.is_dir()):
            d.unlink()
        elif d.exists():
            shutil.rmtree(d)
    except OSError as e:
        raise StorageError(f"cannot remove {d}: {e.strerror or e}") from None


def _stage_file_removal(config: VaultConfig, home: str | os.PathLike[str] | None) -> Path | None:
    """Move a file vault's directory aside (one rename, undone if forgetting the vault fails)."""
    d = vault_dir(config.name, home)
    if not os.path.lexists(d):
        return None
    staged = d.with_name(f".deleted-{config.name}-{os.urandom(6).hex()}")
    try:
        os.rename(d, staged)
    except OSError as e:
        raise StorageError(f"cannot remove {d}: {e.strerror or e}") from None
    return staged


Creator = Callable[[str, dict[str, Any], "str | os.PathLike[str] | None"],
                   Awaitable[dict[str, Any]]]
Remover = Callable[[VaultConfig, "str | os.PathLike[str] | None"], Awaitable[None]]

CREATORS: dict[str, Creator] = {"file": _create_file, **vault_backends.CREATORS}
"""backend -> coroutine that prepares the backend (directory, token check, service check) and
returns the parameters to store. It must leave nothing behind when it fails."""

REMOVERS: dict[str, Remover] = {"file": _delete_file, **vault_backends.REMOVERS}
"""backend -> coroutine that removes local state when the vault is deleted (remote keys are
left alone: deleting a vault configuration never destroys HSM/KMS keys)."""


class VaultConfigStore(Protocol):
    """Where vault configurations are kept (SQL: :mod:`trust.storage.vault_configs`)."""

    async def add(self, config: VaultConfig) -> None: ...
    async def get(self, name: str) -> VaultConfig: ...
    async def find(self, name: str) -> VaultConfig | None: ...
    async def list(self) -> list[VaultConfig]: ...
    async def delete(self, name: str) -> None: ...


async def create_vault(store: VaultConfigStore, name: str, backend: str,
                       params: dict[str, Any],
                       home: str | os.PathLike[str] | None = None) -> VaultConfig:
    """Prepare a vault of ``backend`` and record its configuration. On failure nothing is kept."""
    import time

    check_vault_name(name)
    if await store.find(name) is not None:
        raise ConflictError(f"a vault named {name!r} already exists")
    creator = CREATORS.get(backend)
    if creator is None:
        raise UsageError(f"unknown vault backend {backend!r}")
    clean = {k: v for k, v in params.items() if v is not None and v is not False}
    with progress(f"vault {name} ({backend}): checking the backend") if backend != "file" \
            else contextlib.nullcontext():
        stored = await creator(name, clean, home)
    config = VaultConfig(name, backend, stored, int(time.time()))
    try:
        await store.add(config)
    except BaseException:
        remover = REMOVERS.get(backend)
        if remover is not None:
            await remover(config, home)
        raise
    return config


async def delete_vault(store: VaultConfigStore, name: str,
                       home: str | os.PathLike[str] | None = None) -> None:
    """Forget vault ``name`` and remove its local state (a file vault's key files). If the
    configuration cannot be removed, the key files are left as they were."""
    config = await store.get(name)
    staged = _stage_file_removal(config, home) if config.backend == "file" else None
    try:
        await store.delete(name)
    except BaseException:
        if staged is not None:
            os.rename(staged, vault_dir(config.name, home))
        raise
    if staged is not None:
        _remove_tree(staged)
        return
    remover = REMOVERS.get(config.backend)
    if remover is not None:
        await remover(config, home)
