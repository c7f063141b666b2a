"""``truststack identity``: create, show, list, rotate, export, import, verify, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from trust.cli.common import (
    emit,
    emit_table,
    iso_time,
    output_option,
    read_bytes_file,
    read_value,
    run,
    terminal_safe,
    write_bytes_file,
)

if TYPE_CHECKING:
    from trust.identities.identity import Identity
    from trust.identities.manager import IdentityManager, NamedIdentity

KEY_TYPES = click.Choice(["ed25519", "p256"])


def _manager() -> IdentityManager:
    from trust.services import open_identities

    return open_identities()


def _when(ts: int) -> str:
    return iso_time(ts)


def _plain(identity: Identity, name: str | None = None, full: bool = False) -> str:
    lines = [f"Identifier: {identity.identifier}"]
    if name:
        lines.insert(0, f"Name: {terminal_safe(name)}")
    changes = identity.changes if full else identity.changes[-1:]
    if not full:
        lines.append(f"Changes: {len(identity.changes)}")
    for i, c in enumerate(changes):
        cd = c.change_data
        idx = i if full else len(identity.changes) - 1
        lines.append(f"Change {idx}: {c.change_hash.hex()}")
        lines.append(f"  key: {cd.primary_public_key.key_type.value} {cd.primary_public_key.hex}")
        lines.append(f"  valid: {_when(cd.attestations_valid_from)} .. "
                     f"{_when(cd.attestations_valid_until)}")
        if cd.revoke_all_purpose_keys:
            lines.append("  revokes all earlier purpose keys")
    return "\n".join(lines)


def _named_json(n: NamedIdentity) -> dict[str, Any]:
    from trust.identities.manager import identity_json

    return {"name": n.name, **identity_json(n.identity), "vault": n.vault,
            "is_default": n.is_default, "created_at": n.created_at}


@click.group("identity")
def cli() -> None:
    """Identities: a change history of keys, named by its first change's hash (I...).

    \b
    Examples:
      truststack identity create alice
      truststack identity export alice > alice.hex
      truststack identity verify @alice.hex
    """


@cli.command("create")
@click.argument("name", required=False)
@click.option("--vault", help="Vault for the key (default: the file vault 'default').")
@click.option("--key-type", type=KEY_TYPES, help="Key type (default: the vault's default).")
@click.option("--key-id", help="Use this existing key in the vault instead of a new one.")
@output_option
def create(name: str | None, vault: str | None, key_type: str | None, key_id: str | None,
           output: str) -> None:
    """Create an identity NAME with a new key (plain output: its identifier).

    Without NAME a name is chosen (identity-XXXXXX) and printed on stderr (plain output).

    \b
    Example:
      truststack identity create alice --key-type p256
    """

    async def go() -> NamedIdentity:
        m = _manager()
        try:
            return await m.create_identity(name, vault=vault, key_type=key_type, key_id=key_id)
        finally:
            await m.close()

    n = run(go())
    if name is None and output != "json":  # JSON names it anyway
        click.echo(f"created identity {terminal_safe(n.name)} (no NAME was given)", err=True)
    emit(output, _named_json(n), n.identifier)


@cli.command("show")
@click.argument("ref", metavar="[NAME|IDENTIFIER]", required=False)
@click.option("--full", is_flag=True, help="Show every change, not only the latest.")
@output_option
def show(ref: str | None, full: bool, output: str) -> None:
    """Show a local identity (default: the default identity) or a known identifier.

    \b
    Example:
      truststack identity show alice --full --output json
    """
    from trust.identities.manager import identity_json

    async def go() -> tuple[Identity, NamedIdentity | None]:
        m = _manager()
        if ref is not None and ref.startswith("I") and len(ref) == 65:
            identity = await m.resolve(ref)
            local = await m.local.by_identifier(identity.identifier)
            return identity, (await m.get(local.name) if local else None)
        n = await m.get(ref)
        return n.identity, n

    identity, named = run(go())
    data = _named_json(named) if named else identity_json(identity)
    emit(output, data, lambda: _plain(identity, named.name if named else None, full))


@cli.command("list")
@output_option
def list_(output: str) -> None:
    """List local identities.

    Plain output: one line per identity, tab-separated: name, identifier, default (yes/no),
    vault, number of changes, created at.

    \b
    Example:
      truststack identity list --output json
    """

    async def go() -> list[NamedIdentity]:
        return await _manager().list()

    items = run(go())
    emit_table(output, [{"name": n.name, "identifier": n.identifier, "vault": n.vault,
                         "is_default": n.is_default, "changes": len(n.identity.changes),
                         "created_at": n.created_at} for n in items],
               ("name", "identifier", "is_default", "vault", "changes", "created_at"),
               formats={"created_at": iso_time})


@cli.command("rotate")
@click.argument("name")
@click.option("--vault", help="Move the identity to a new key in this vault.")
@click.option("--key-type", type=KEY_TYPES, help="Type of the new key.")
@click.option("--key-id", help="Use this existing key (in --vault) as the new key.")
@click.option("--revoke-purpose-keys", is_flag=True,
              help="Revoke every purpose key attested before this change.")
@output_option
def rotate(name: str, vault: str | None, key_type: str | None, key_id: str | None,
           revoke_purpose_keys: bool, output: str) -> None:
    """Rotate NAME's primary key: the new key signs the change, the previous key co-signs it.

    \b
    Example:
      truststack identity rotate alice --key-type p256 --revoke-purpose-keys
    """

    async def go() -> NamedIdentity:
        m = _manager()
        try:
            return await m.rotate(name, vault=vault, key_type=key_type, key_id=key_id,
                                  revoke_purpose_keys=revoke_purpose_keys)
        finally:
            await m.close()

    n = run(go())
    emit(output, _named_json(n), lambda: _plain(n.identity, n.name))


@cli.command("export")
@click.argument("name", required=False)
@click.option("--binary", type=click.Path(dir_okay=False), help="Also write the raw bytes here.")
@output_option
def export(name: str | None, binary: str | None, output: str) -> None:
    """Print NAME's change history as hex (plain output: only the hex).

    \b
    Example:
      truststack identity export alice > alice.hex
    """
    n = run(_manager().get(name))
    if binary is not None:
        write_bytes_file(binary, n.identity.export(), "change history")
    emit(output, {"name": n.name, "identifier": n.identifier,
                  "change_history": n.identity.export_hex()}, n.identity.export_hex())


def _history_arg(value: str | None, file: str | None) -> bytes:
    from trust.errors import UsageError

    if file is not None and value is None:
        data = read_bytes_file(file, "change history")
        try:
            return bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return data
    text = read_value(value, file, what="change history")
    if not text:
        raise UsageError("the change history is empty")
    try:
        return bytes.fromhex(text)
    except ValueError:
        from trust.errors import DecodeError

        raise DecodeError("not a hex string", field="change_history") from None


@cli.command("import")
@click.argument("history", metavar="HEX|@PATH", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False),
              help="Read the history (hex or binary) from this file.")
@output_option
def import_(history: str | None, file: str | None, output: str) -> None:
    """Verify a change history and store it as a known identity.

    A newer history of a known identity replaces the stored one; an older or conflicting one
    is refused.

    \b
    Example:
      truststack identity import @bob.hex
    """
    from trust.identities.manager import identity_json

    data = _history_arg(history, file)

    async def go() -> tuple[Identity, Any]:
        return await _manager().import_identity(data)

    identity, cmp = run(go())
    status = "imported" if cmp is None else ("updated" if cmp.value == "newer" else "unchanged")
    emit(output, {**identity_json(identity), "status": status},
         f"{identity.identifier} ({status})")


@cli.command("verify")
@click.argument("history", metavar="HEX|@PATH", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False),
              help="Read the history (hex or binary) from this file.")
@output_option
def verify(history: str | None, file: str | None, output: str) -> None:
    """Verify a change history without storing it (exit 0 if valid).

    \b
    Example:
      truststack identity verify 81825837...
    """
    from trust.identities.identity import verify_change_history
    from trust.identities.manager import identity_json

    identity = verify_change_history(_history_arg(history, file))
    emit(output, {**identity_json(identity), "valid": True},
         lambda: "valid\n" + _plain(identity, full=True))


@cli.command("delete")
@click.argument("name")
@output_option
def delete(name: str, output: str) -> None:
    """Delete local identity NAME and its private keys in file vaults.

    \b
    Example:
      truststack identity delete scratch
    """

    async def go() -> str:
        m = _manager()
        identifier = (await m.get(name)).identifier
        await m.delete(name)
        return identifier

    identifier = run(go())
    emit(output, {"deleted": name, "identifier": identifier},
         f"Deleted identity {terminal_safe(name)}")
