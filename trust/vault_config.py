"""Vault configurations and how to open them (the composition point for vault backends).

A :class:`VaultConfig` names a backend and its parameters. Secrets are referenced, never stored:
``passphrase_env`` / ``passphrase_file`` (file vault), ``pin_env`` / ``pin_file`` (PKCS#11).
:func:`open_vault` imports a backend's module only when a vault of that backend is opened, so the
CLI starts fast. Backends register themselves in :data:`BACKENDS`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trust.errors import UsageError
from trust.home import home_dir
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
        try:
            data = Path(str(path)).read_bytes()
        except OSError as e:
            raise WrongPassphraseError(f"cannot read the {what} from {path}: {e.strerror}") from None
        return data.rstrip(b"\r\n")
    return None


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

BACKENDS: dict[str, Opener] = {"file": _open_file}


async def open_vault(config: VaultConfig, home: str | os.PathLike[str] | None = None) -> SigningVault:
    opener = BACKENDS.get(config.backend)
    if opener is None:
        raise VaultError(f"vault {config.name!r} uses the unknown backend {config.backend!r}")
    return await opener(config, home)


def create_file_vault(name: str, home: str | os.PathLike[str] | None = None, *,
                      passphrase_env: str | None = None,
                      passphrase_file: str | None = None) -> VaultConfig:
    """Create the directory of a file vault and return its configuration (not yet stored)."""
    from vaults.file import FileVault

    check_vault_name(name)
    if passphrase_env and passphrase_file:
        raise UsageError("give either --passphrase-env or --passphrase-file, not both")
    params: dict[str, Any] = {"path": str(vault_dir(name, home))}
    if passphrase_env:
        params["passphrase_env"] = passphrase_env
    if passphrase_file:
        params["passphrase_file"] = str(Path(passphrase_file).resolve())
    passphrase = read_secret(params, "passphrase_env", "passphrase_file", "passphrase")
    FileVault.create(vault_dir(name, home), passphrase)
    import time

    return VaultConfig(name, "file", params, int(time.time()))
