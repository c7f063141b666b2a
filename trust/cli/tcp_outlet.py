"""``truststack tcp-outlet``: create, list, show and delete TCP outlets on nodes."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import (
    check_flag,
    emit,
    emit_table,
    node_client,
    output_option,
    parse_duration,
)


@click.group("tcp-outlet")
def cli() -> None:
    """TCP outlets: the far end of a portal, connecting to a TCP service for each inlet
    connection (see `tcp-inlet`, and docs/portals.md).

    \b
    Examples:
      truststack tcp-outlet create --at bank --to 127.0.0.1:5432
      truststack tcp-outlet create --at bank --to 127.0.0.1:5432 --from db \\
          --allow '(= subject.role "analyst")'
      truststack tcp-outlet list --at bank
    """


def _show_plain(o: dict[str, Any]) -> str:
    from trust.cli.common import seconds_text, terminal_safe

    return "\n".join([f"Name: {terminal_safe(o.get('name'))}",
                      f"Route: {terminal_safe(o.get('route'))}",
                      f"Target: {terminal_safe(o.get('target'))}",
                      f"Connections: {o.get('active')} open, {o.get('connections')} in all",
                      f"Bytes: {o.get('bytes_in')} from the target, {o.get('bytes_out')} to it",
                      f"Denied: {o.get('denied')}, failed: {o.get('failed')}",
                      "Silence timeout: "
                      f"{seconds_text(o.get('silence_timeout'), 'never')} "
                      f"({o.get('keepalives')} keepalives heard, {o.get('silent_closed')} "
                      "connections closed for silence)"])


@cli.command("create")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--to", "to", required=True, metavar="HOST:PORT",
              help="The TCP service each connection goes to.")
@click.option("--from", "from_", default="outlet", show_default=True, metavar="NAME",
              help="The outlet's address on the node (and its policy resource name).")
@click.option("--allow", "allow", metavar="EXPR",
              help="Its policy (stored as `policy create --resource NAME --at NODE` would). "
                   "Default: the node's (a credential from its authority).")
@click.option("--silence-timeout", "silence", metavar="DURATION",
              help="Close a connection whose inlet sends keepalives (truststack's do) once it "
                   "has heard nothing from it this long (default 90s; at most 1d).")
@output_option
def create(node: str, to: str, from_: str, allow: str | None, silence: str | None,
           output: str) -> None:
    """Create an outlet at NODE to the TCP service at HOST:PORT; print its route.

    Inlets reach it at /node/NODE/secure/api/service/NAME (through a secure channel).

    \b
    Examples:
      truststack tcp-outlet create --at bank --to 127.0.0.1:5432
    """
    from trust.transports.addresses import split_host_port

    check_flag("--to", split_host_port, to)
    params: dict[str, Any] = {"to": to, "from": from_}
    if allow is not None:
        params["allow"] = allow
    if silence is not None:
        from trust.node.portal_feature import MAX_LIVENESS_SECONDS

        params["silence_timeout"] = parse_duration(silence, allow_zero=False,
                                                   maximum=MAX_LIVENESS_SECONDS)
    result = node_client(node).request("tcp_outlet.create", params)
    emit(output, result, result.get("route", ""))


@cli.command("list")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def list_(node: str, output: str) -> None:
    """List NODE's outlets: name, target, open connections, bytes from and to the target.

    \b
    Example:
      truststack tcp-outlet list --at bank
    """
    rows = node_client(node).request("tcp_outlet.list").get("outlets", [])
    emit_table(output, rows, ["name", "target", "active", "bytes_in", "bytes_out"])


@cli.command("show")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def show(name: str, node: str, output: str) -> None:
    """Show the outlet NAME at NODE, with its byte counts.

    \b
    Example:
      truststack tcp-outlet show outlet --at bank --output json
    """
    result = node_client(node).request("tcp_outlet.show", {"name": name})
    emit(output, result, lambda: _show_plain(result))


@cli.command("delete")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def delete(name: str, node: str, output: str) -> None:
    """Delete the outlet NAME at NODE (its open connections are closed).

    \b
    Example:
      truststack tcp-outlet delete outlet --at bank
    """
    result = node_client(node).request("tcp_outlet.delete", {"name": name})
    emit(output, result, f"Outlet {name} deleted at node {node}")
