"""Errors raised by vault backends. Stands alone: no import of trust/ or policies/."""

from __future__ import annotations


class VaultError(Exception):
    """A vault could not do what was asked (missing key, wrong passphrase, backend fault)."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}" if backend else message)


class KeyNotFoundError(VaultError):
    """No key with that handle in the vault."""


class UnsupportedKeyTypeError(VaultError):
    """The vault (or the token/service behind it) cannot make or use that key type."""


class WrongPassphraseError(VaultError):
    """The passphrase (or PIN) is wrong or missing."""


class InsecureKeyFileError(VaultError):
    """A key file or vault directory is readable by others or owned by someone else."""


class BackendUnavailableError(VaultError):
    """A remote backend could not be reached or did not answer in time."""


class BackendTimeoutError(BackendUnavailableError):
    """A remote backend did not answer within the configured timeout."""


class AccessDeniedError(VaultError):
    """The backend refused the caller's credentials or permissions."""


class KeyUnusableError(VaultError):
    """The key exists but cannot be used now (disabled, pending deletion, destroyed)."""
