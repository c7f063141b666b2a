"""Opening, creating and removing the HSM/KMS vault backends: ``pkcs11``, ``aws-kms``, ``gcp-kms``.

:mod:`trust.vault_config` registers these in its ``BACKENDS`` / ``CREATORS`` / ``REMOVERS``.
Each backend's library is imported only when a vault of that backend is created or opened.

Stored parameters (``vault show`` prints them; none is a secret):

- ``pkcs11``: ``uri`` (RFC 7512, naming the token and the module) and ``pin_env`` or
  ``pin_file`` (the PIN is read from there each time the token is opened).
- ``aws-kms``: ``region``, optional ``endpoint_url`` and ``profile``, ``timeout`` (seconds).
- ``gcp-kms``: ``key_ring``, optional ``endpoint`` and ``plaintext``, ``timeout`` (seconds).

Creating a vault checks the backend for real (the token opens and logs in and offers P-256; the
KMS endpoint answers with these credentials; the key ring exists) and stores nothing if a check
fails. Removing a vault configuration never deletes keys in the HSM or KMS.

Each backend's library comes with an extra (:data:`EXTRAS`); when it is missing, creating or
opening such a vault raises :class:`~trust.errors.MissingExtraError` naming the extra to install.
:class:`ProgressVault` shows progress (:mod:`trust.progress`; the CLI's spinner on a terminal)
around each call to a slow backend.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trust.errors import MissingExtraError, UsageError
from trust.progress import progress
from vaults.errors import UnsupportedKeyTypeError
from vaults.keys import KeyType, PublicKey

if TYPE_CHECKING:
    from trust.vault_config import VaultConfig
    from vaults.signing import SigningVault

DEFAULT_TIMEOUT = 10.0

EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pkcs11": ("pkcs11", ("pkcs11",)),
    "aws-kms": ("aws", ("boto3", "botocore")),
    "gcp-kms": ("gcp", ("google.cloud.kms_v1", "google_crc32c", "grpc")),
}
"""backend -> (the extra that installs its libraries, the modules it imports)."""


def require_extra(backend: str) -> None:
    """Import ``backend``'s libraries, or raise :class:`MissingExtraError` naming its extra."""
    extra, modules = EXTRAS[backend]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(f"the {backend} vault backend", extra) from None


def _timeout(params: dict[str, Any]) -> float:
    raw = params.get("timeout", DEFAULT_TIMEOUT)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UsageError(f"invalid timeout {raw!r}") from None
    if not 0 < value <= 3600:
        raise UsageError(f"the timeout must be between 0 and 3600 seconds, not {raw!r}")
    return value


def _read_pin(params: dict[str, Any]) -> bytes | None:
    from trust.vault_config import read_secret

    return read_secret(params, "pin_env", "pin_file", "PIN")


# -- PKCS#11 -------------------------------------------------------------------------------------
async def open_pkcs11(config: VaultConfig, home: str | os.PathLike[str] | None) -> SigningVault:
    require_extra("pkcs11")
    from vaults.pkcs11 import Pkcs11Vault

    return Pkcs11Vault.open(str(config.params["uri"]), _read_pin(config.params))


async def create_pkcs11(name: str, params: dict[str, Any],
                        home: str | os.PathLike[str] | None) -> dict[str, Any]:
    require_extra("pkcs11")
    from vaults.pkcs11 import Pkcs11Vault
    from vaults.pkcs11_uri import Pkcs11Uri

    uri = str(params.get("uri") or "")
    parsed = Pkcs11Uri.parse(uri)  # refuses a PIN inside the URI
    if parsed.names_object:
        raise UsageError("the vault URI names a token, not an object: drop object=, id= and type=")
    pin_env, pin_file = params.get("pin_env"), params.get("pin_file")
    if pin_env and pin_file:
        raise UsageError("give either --pin-env or --pin-file, not both")
    if not pin_env and not pin_file:
        raise UsageError("the token's user PIN is needed: give --pin-env VAR or --pin-file PATH")
    out: dict[str, Any] = {"uri": uri}
    if pin_env:
        out["pin_env"] = str(pin_env)
    else:
        out["pin_file"] = str(Path(str(pin_file)).resolve())
    vault = Pkcs11Vault.open(parsed, _read_pin(out))
    try:
        if KeyType.P256 not in vault.key_types:
            raise UnsupportedKeyTypeError(
                f"the token {vault.token_label!r} offers no P-256 signing (needs CKM_EC_KEY_PAIR_GEN "
                "and CKM_ECDSA)", backend="pkcs11")
    finally:
        vault.close_sync()
    return out


# -- AWS KMS -------------------------------------------------------------------------------------
def aws_vault(params: dict[str, Any]) -> Any:
    require_extra("aws-kms")
    from vaults.aws_kms import AwsKmsVault

    return AwsKmsVault(region=params.get("region"), endpoint_url=params.get("endpoint_url"),
                       profile=params.get("profile"), timeout=_timeout(params))


async def open_aws_kms(config: VaultConfig, home: str | os.PathLike[str] | None) -> SigningVault:
    vault: SigningVault = aws_vault(config.params)
    return vault


async def create_aws_kms(name: str, params: dict[str, Any],
                         home: str | os.PathLike[str] | None) -> dict[str, Any]:
    require_extra("aws-kms")
    out: dict[str, Any] = {}
    for key in ("region", "endpoint_url", "profile"):
        if params.get(key):
            out[key] = str(params[key])
    out["timeout"] = _timeout(params)
    endpoint = out.get("endpoint_url")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint-url must be an http:// or https:// URL, not {endpoint!r}")
    vault = aws_vault(out)
    try:
        client = vault.client()  # resolves the region (flag, profile or environment)
        out["region"] = str(client.meta.region_name)
        await vault.check()
    finally:
        await vault.close()
    return out


# -- GCP KMS -------------------------------------------------------------------------------------
def gcp_vault(params: dict[str, Any]) -> Any:
    require_extra("gcp-kms")
    from vaults.gcp_kms import GcpKmsVault

    return GcpKmsVault(str(params.get("key_ring") or ""), endpoint=params.get("endpoint"),
                       plaintext=bool(params.get("plaintext")), timeout=_timeout(params))


async def open_gcp_kms(config: VaultConfig, home: str | os.PathLike[str] | None) -> SigningVault:
    vault: SigningVault = gcp_vault(config.params)
    return vault


async def create_gcp_kms(name: str, params: dict[str, Any],
                         home: str | os.PathLike[str] | None) -> dict[str, Any]:
    require_extra("gcp-kms")
    from vaults.gcp_kms import check_key_ring

    out: dict[str, Any] = {"key_ring": check_key_ring(str(params.get("key_ring") or ""))}
    if params.get("endpoint"):
        out["endpoint"] = str(params["endpoint"])
    if params.get("plaintext"):
        if not out.get("endpoint"):
            raise UsageError("--plaintext needs --endpoint HOST:PORT")
        out["plaintext"] = True
    out["timeout"] = _timeout(params)
    vault = gcp_vault(out)
    try:
        await vault.check()
    finally:
        await vault.close()
    return out


async def remove_remote(config: VaultConfig, home: str | os.PathLike[str] | None) -> None:
    """Nothing local to remove; keys in the HSM/KMS are left alone on purpose."""
    return None


OPENERS = {"pkcs11": open_pkcs11, "aws-kms": open_aws_kms, "gcp-kms": open_gcp_kms}
CREATORS = {"pkcs11": create_pkcs11, "aws-kms": create_aws_kms, "gcp-kms": create_gcp_kms}
REMOVERS = {"pkcs11": remove_remote, "aws-kms": remove_remote, "gcp-kms": remove_remote}


# -- progress around slow backends -----------------------------------------------------------------
class ProgressVault:
    """A signing vault whose every call runs inside :func:`trust.progress.progress` (e.g. a
    spinner while an HSM or a KMS answers). Everything else is the wrapped vault's."""

    def __init__(self, vault: SigningVault, label: str) -> None:
        self.inner = vault
        self._label = label

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def key_types(self) -> frozenset[KeyType]:
        return self.inner.key_types

    @property
    def default_key_type(self) -> KeyType:
        return self.inner.default_key_type

    async def generate_key(self, key_type: KeyType) -> str:
        with progress(f"{self._label}: generating a key"):
            return await self.inner.generate_key(key_type)

    async def resolve_key(self, key_id: str) -> str:
        with progress(f"{self._label}: looking up the key"):
            return await self.inner.resolve_key(key_id)

    async def public_key(self, handle: str) -> PublicKey:
        with progress(f"{self._label}: reading the public key"):
            return await self.inner.public_key(handle)

    async def sign(self, handle: str, message: bytes) -> bytes:
        with progress(f"{self._label}: signing"):
            return await self.inner.sign(handle, message)

    async def delete_key(self, handle: str) -> bool:
        with progress(f"{self._label}: deleting a key"):
            return await self.inner.delete_key(handle)

    async def list_keys(self) -> list[str]:
        with progress(f"{self._label}: listing keys"):
            return await self.inner.list_keys()

    async def close(self) -> None:
        await self.inner.close()
