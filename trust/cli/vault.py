"""``truststack vault``: create, list, show and delete vaults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trust.cli.common import emit, output_option

if TYPE_CHECKING:
    from trust.storage.vault_configs import SqlVaultConfigs

T = TypeVar("T")


def _with_configs(use: Callable[[SqlVaultConfigs], Awaitable[T]]) -> T:
    """``use`` the home's vault configurations (the storage is closed afterwards)."""
    from trust.cli.common import run
    from trust.storage import open_storage

    async def go() -> T:
        async with open_storage() as storage:
            return await use(storage.vault_configs)

    return run(go())


@click.group("vault")
def cli() -> None:
    """Vaults hold the private keys of identities and credential issuers.

    \b
    Examples:
      truststack vault create secure --passphrase-env MY_VAULT_PASSPHRASE
      truststack vault list --output json
    """


@cli.command("create")
@click.argument("name")
@click.option("--passphrase-env", metavar="VAR",
              help="File vault: encrypt key files with the passphrase in this environment variable.")
@click.option("--passphrase-file", metavar="PATH",
              help="File vault: encrypt key files with the passphrase in this file.")
@click.option("--pkcs11", "pkcs11_uri", metavar="URI",
              help="Keys on a PKCS#11 token named by an RFC 7512 URI with its module, e.g. "
                   "pkcs11:token=T?module-path=/usr/lib/softhsm/libsofthsm2.so")
@click.option("--pin-env", metavar="VAR", help="PKCS#11: read the user PIN from this variable.")
@click.option("--pin-file", metavar="PATH", help="PKCS#11: read the user PIN from this file.")
@click.option("--aws-kms", is_flag=True, help="Keys in AWS KMS.")
@click.option("--region", metavar="R", help="AWS KMS: the region (default: profile/environment).")
@click.option("--endpoint-url", metavar="U", help="AWS KMS: another endpoint (e.g. a VPC endpoint).")
@click.option("--profile", metavar="P", help="AWS KMS: the AWS profile for credentials.")
@click.option("--gcp-kms", "gcp_key_ring", metavar="KEY_RING",
              help="Keys in Google Cloud KMS, in projects/P/locations/L/keyRings/R.")
@click.option("--endpoint", metavar="HOST:PORT", help="GCP KMS: another gRPC endpoint.")
@click.option("--plaintext", is_flag=True,
              help="GCP KMS: plaintext gRPC to --endpoint (emulators and tests only).")
@click.option("--timeout", metavar="DURATION",
              help="AWS/GCP KMS: limit for each remote call (default 10s).")
@output_option
def create(name: str, passphrase_env: str | None, passphrase_file: str | None,
           pkcs11_uri: str | None, pin_env: str | None, pin_file: str | None, aws_kms: bool,
           region: str | None, endpoint_url: str | None, profile: str | None,
           gcp_key_ring: str | None, endpoint: str | None, plaintext: bool, timeout: str | None,
           output: str) -> None:
    """Create a vault NAME: a file vault under $TRUSTSTACK_HOME/vaults/NAME (the default), or
    a PKCS#11 token (--pkcs11), AWS KMS (--aws-kms) or Google Cloud KMS (--gcp-kms) whose keys
    never leave it.

    The configuration records the name of the variable (or the path of the file) holding a
    passphrase or PIN, never the secret itself. An HSM/KMS vault is checked when it is created
    (the token logs in, the service answers) and nothing is stored if the check fails.

    \b
    Examples:
      MY_PASS=correct-horse truststack vault create secure --passphrase-env MY_PASS
      HSM_PIN=1234 truststack vault create hsm --pin-env HSM_PIN \\
          --pkcs11 'pkcs11:token=truststack?module-path=/usr/lib/softhsm/libsofthsm2.so'
      truststack vault create aws --aws-kms --region eu-west-1
      truststack vault create gcp --gcp-kms projects/p/locations/global/keyRings/ring
    """
    from trust.cli.common import parse_duration
    from trust.errors import UsageError
    from trust.vault_config import create_vault

    chosen = [flag for flag, on in (("--pkcs11", pkcs11_uri is not None), ("--aws-kms", aws_kms),
                                    ("--gcp-kms", gcp_key_ring is not None)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one backend, not {' and '.join(chosen)}")
    backend = {"--pkcs11": "pkcs11", "--aws-kms": "aws-kms", "--gcp-kms": "gcp-kms"}.get(
        chosen[0] if chosen else "", "file")
    allowed = {
        "file": {"--passphrase-env", "--passphrase-file"},
        "pkcs11": {"--pin-env", "--pin-file"},
        "aws-kms": {"--region", "--endpoint-url", "--profile", "--timeout"},
        "gcp-kms": {"--endpoint", "--plaintext", "--timeout"},
    }[backend]
    given = {"--passphrase-env": passphrase_env, "--passphrase-file": passphrase_file,
             "--pin-env": pin_env, "--pin-file": pin_file, "--region": region,
             "--endpoint-url": endpoint_url, "--profile": profile, "--endpoint": endpoint,
             "--plaintext": plaintext or None, "--timeout": timeout}
    stray = sorted(flag for flag, value in given.items() if value is not None and flag not in allowed)
    if stray:
        raise UsageError(f"{', '.join(stray)} cannot be used with a {backend} vault")
    params: dict[str, Any]
    if backend == "file":
        params = {"passphrase_env": passphrase_env, "passphrase_file": passphrase_file}
    elif backend == "pkcs11":
        params = {"uri": pkcs11_uri, "pin_env": pin_env, "pin_file": pin_file}
    elif backend == "aws-kms":
        params = {"region": region, "endpoint_url": endpoint_url, "profile": profile}
    else:
        params = {"key_ring": gcp_key_ring, "endpoint": endpoint, "plaintext": plaintext}
    if timeout is not None:
        params["timeout"] = parse_duration(timeout)
    config = _with_configs(lambda c: create_vault(c, name, backend, params))
    emit(output, config.public_view(), f"Created vault {name} ({config.backend})")


@cli.command("list")
@output_option
def list_(output: str) -> None:
    """List vaults.

    \b
    Example:
      truststack vault list
    """
    items = [c.public_view() for c in _with_configs(lambda c: c.list())]
    emit(output, items,
         lambda: "\n".join(f"{c['name']}\t{c['backend']}" for c in items) or "no vaults")


@cli.command("show")
@click.argument("name")
@output_option
def show(name: str, output: str) -> None:
    """Show a vault's backend and parameters (never a secret).

    \b
    Example:
      truststack vault show default --output json
    """
    view = _with_configs(lambda c: c.get(name)).public_view()
    emit(output, view, lambda: "\n".join(f"{k}: {v}" for k, v in view.items()))


@cli.command("delete")
@click.argument("name")
@output_option
def delete(name: str, output: str) -> None:
    """Delete a vault and its key files (refused while an identity uses it).

    \b
    Example:
      truststack vault delete scratch
    """
    from trust.cli.common import run
    from trust.services import open_identities

    async def go() -> None:
        async with open_identities() as manager:
            await manager.delete_vault(name)

    run(go())
    emit(output, {"deleted": name}, f"Deleted vault {name}")
