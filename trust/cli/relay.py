"""``truststack relay``: create, list, show and delete relays (as Ockam Command)."""

from __future__ import annotations

import functools
from typing import Any

import click

from trust.cli.common import emit, emit_table, iso_time, node_client, output_option, parse_duration

_NODE_HELP = ("The running node whose relays these are: those it created (relay create --to) "
              "and those it hosts. --to is accepted too (Ockam's relay list uses it).")


@click.group("relay")
def cli() -> None:
    """Relays: reach a node that accepts no connections, through a node that does.

    `relay create NAME --to NODE --at ROUTE` makes node NODE register relay NAME at the node
    reachable at ROUTE (through a secure channel to its api listener) and keep it registered.
    Others then reach NODE at ROUTE/service/forward_to_NAME (e.g. an end-to-end channel:
    ROUTE/service/forward_to_NAME/secure/api/service/echo). list, show and delete act on the
    node given with --at: the relays it created and those it hosts.

    \b
    Examples:
      truststack relay create bank --to bank-node --at /node/relay-node
      truststack message send hi --from analysis \\
          --to /node/relay-node/service/forward_to_bank/secure/api/service/echo
      truststack relay list --at relay-node
      truststack relay delete bank --at bank-node
    """


def _node_name(text: str) -> str:
    """``/node/NAME`` or ``NAME``: the node's name (as Ockam accepts both)."""
    return text[len("/node/"):] if text.startswith("/node/") else text


def _show_plain(r: dict[str, Any]) -> str:
    from trust.cli.common import terminal_safe

    if r.get("role") == "hosted":
        return "\n".join([f"Relay: {terminal_safe(r.get('name'))} (hosted here)",
                          f"Address: {terminal_safe(r.get('address'))}",
                          f"Owner: {terminal_safe(r.get('owner') or '-')}",
                          f"Live: {'yes' if r.get('live') else 'no'}",
                          f"Route to the client: {terminal_safe(r.get('forward_route'))}",
                          f"Registrations: {r.get('registrations')}",
                          f"Messages: {r.get('messages')} ({r.get('bytes')} bytes)",
                          f"Created: {iso_time(r.get('created_at'))}",
                          f"Updated: {iso_time(r.get('updated_at'))}"])
    return "\n".join([f"Relay: {terminal_safe(r.get('name'))} (created by this node)",
                      f"At: {terminal_safe(r.get('at'))}",
                      f"Route: {terminal_safe(r.get('route') or '-')}",
                      f"Status: {terminal_safe(r.get('status'))}",
                      f"Relay node: {terminal_safe(r.get('peer') or '-')}",
                      f"Registrations: {r.get('registrations')}",
                      f"Registered: {iso_time(r.get('registered_at'))}",
                      f"Last error: {terminal_safe(r.get('last_error') or '-')}"])


@cli.command("create")
@click.argument("name", default="default")
@click.option("--to", "to", required=True, metavar="NODE",
              help="The running node the relay leads to (it registers the relay and keeps it "
                   "registered).")
@click.option("--at", "at", required=True, metavar="ROUTE",
              help="Route of the node that hosts the relay, e.g. /node/relay or "
                   "/ip4/10.0.0.1/tcp/4000.")
@click.option("--authorized", "authorized", metavar="IDENTIFIER", multiple=True,
              help="Accept only a relay node with this identifier (repeatable; default: any "
                   "authenticated node).")
@click.option("--timeout", default="30s", show_default=True,
              help="How long the first registration may take.")
@click.option("--no-connection-wait", "no_wait", is_flag=True,
              help="Return at once; the node keeps trying to register (in the background).")
@output_option
def create(name: str, to: str, at: str, authorized: tuple[str, ...], timeout: str,
           no_wait: bool, output: str) -> None:
    """Create relay NAME (default: default) for node --to at the node at --at; print the
    relay's route (ROUTE/service/forward_to_NAME) once registered (with --no-connection-wait:
    at once, while the node keeps trying).

    The relay node must hold a credential-free listener at api (every node does); when it
    has an authority, NODE's credential must carry ockam-relay = NAME or *.

    \b
    Examples:
      truststack relay create bank --to bank-node --at /node/relay-node
      truststack relay create --to edge --at /ip4/127.0.0.1/tcp/4000 --output json
      truststack relay create bank --to bank-node --at /ip4/10.0.0.1/tcp/4000 \\
          --no-connection-wait
    """
    from trust.errors import UsageError
    from trust.relays.messages import check_relay_name
    from trust.routing import parse_multiaddr

    check_relay_name(name)
    seconds = parse_duration(timeout)
    if not 0 < seconds <= 600:
        raise UsageError("--timeout must be positive and at most 10m")
    parse_multiaddr(at)  # report route syntax errors before contacting the node
    relay = node_client(_node_name(to)).request(
        "relay.create", {"name": name, "at": at, "authorized": list(authorized),
                         "timeout": seconds, "wait": not no_wait}, timeout=seconds + 10)
    from trust.cli.common import terminal_safe

    emit(output, relay, terminal_safe(relay.get("route") or ""))


@cli.command("list")
@click.option("--at", "--to", "node", required=True, metavar="NODE", help=_NODE_HELP)
@output_option
def list_(node: str, output: str) -> None:
    """List the relays of NODE: name, role (created/hosted), address, status, peer.

    For a relay NODE created, the status is registered, connecting or reconnecting and the
    peer is the relay node; for one it hosts, live or gone, and the peer is its owner.

    \b
    Examples:
      truststack relay list --at bank-node
      truststack relay list --at relay-node --output json
    """
    result = node_client(_node_name(node)).request("relay.list")
    rows = list(result.get("relays", [])) + list(result.get("hosted", []))
    if output == "json":
        emit_table(output, rows, [])
        return
    plain = [{"name": r.get("name"), "role": r.get("role"), "address": r.get("address"),
              "status": r.get("status") if r.get("role") == "created"
              else ("live" if r.get("live") else "gone"),
              "peer": r.get("peer") if r.get("role") == "created" else r.get("owner")}
             for r in rows]
    emit_table(output, plain, ["name", "role", "address", "status", "peer"])


def _hosted_option(f: Any) -> Any:
    """``--hosted`` or ``--created`` (not both: a usage error), passed as ``hosted``: ``True``,
    ``False`` or ``None`` (neither)."""

    @functools.wraps(f)
    def command(*args: Any, hosted_only: bool, created_only: bool, **kwargs: Any) -> Any:
        if hosted_only and created_only:
            raise click.UsageError("give --hosted or --created, not both",
                                   click.get_current_context())
        hosted = True if hosted_only else False if created_only else None
        return f(*args, hosted=hosted, **kwargs)

    command = click.option("--created", "created_only", is_flag=True,
                           help="Only the relay NODE created.")(command)
    return click.option("--hosted", "hosted_only", is_flag=True,
                        help="Only the relay NODE hosts (default, without either: the one it "
                             "created by that name, else the one it hosts).")(command)


@cli.command("show")
@click.argument("name")
@click.option("--at", "--to", "node", required=True, metavar="NODE", help=_NODE_HELP)
@_hosted_option
@output_option
def show(name: str, node: str, hosted: bool | None, output: str) -> None:
    """Show relay NAME of NODE.

    \b
    Examples:
      truststack relay show bank --at bank-node
      truststack relay show bank --at relay-node --output json
    """
    relay = node_client(_node_name(node)).request("relay.show", {"name": name, "hosted": hosted})
    emit(output, relay, lambda: _show_plain(relay))


@cli.command("delete")
@click.argument("name")
@click.option("--at", "--to", "node", required=True, metavar="NODE", help=_NODE_HELP)
@_hosted_option
@output_option
def delete(name: str, node: str, hosted: bool | None, output: str) -> None:
    """Delete relay NAME of NODE: a relay it created stops being registered; one it hosts is
    removed (its client registers it again unless it was deleted too).

    \b
    Examples:
      truststack relay delete bank --at bank-node
      truststack relay delete bank --at relay-node --hosted
    """
    result = node_client(_node_name(node)).request("relay.delete", {"name": name, "hosted": hosted})
    emit(output, result, f"Relay {name} ({result.get('role')}) deleted at node "
                         f"{_node_name(node)}")
