"""``truststack vault``: create, list, show and delete vaults."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import emit, output_option


def _configs() -> Any:
    from trust.storage.database import Database
    from trust.storage.vault_configs import SqliteVaultConfigs

    return SqliteVaultConfigs(Database.open_home())


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
              help="Encrypt key files with the passphrase in this environment variable.")
@click.option("--passphrase-file", metavar="PATH",
              help="Encrypt key files with the passphrase in this file.")
@output_option
def create(name: str, passphrase_env: str | None, passphrase_file: str | None, output: str) -> None:
    """Create a file vault NAME under $TRUSTSTACK_HOME/vaults/NAME.

    The configuration records the name of the variable (or the path of the file) holding the
    passphrase, never the passphrase itself.

    \b
    Example:
      MY_PASS=correct-horse truststack vault create secure --passphrase-env MY_PASS
    """
    from trust.cli.common import run
    from trust.vault_config import create_vault

    params = {"passphrase_env": passphrase_env, "passphrase_file": passphrase_file}
    config = run(create_vault(_configs(), name, "file", params))
    emit(output, config.public_view(), f"Created vault {name} ({config.backend})")


@cli.command("list")
@output_option
def list_(output: str) -> None:
    """List vaults.

    \b
    Example:
      truststack vault list
    """
    items = [c.public_view() for c in _configs().list()]
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
    view = _configs().get(name).public_view()
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
    from trust.identities.manager import IdentityManager

    run(IdentityManager.open().delete_vault(name))
    emit(output, {"deleted": name}, f"Deleted vault {name}")
