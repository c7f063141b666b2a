"""``truststack tcp-inlet``: create, list, show and delete TCP inlets on nodes."""

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


@click.group("tcp-inlet")
def cli() -> None:
    """TCP inlets: listen on a local port and carry each connection, end-to-end encrypted, to
    an outlet (see `tcp-outlet`, and docs/portals.md).

    \b
    Examples:
      truststack tcp-inlet create --at analysis --from 127.0.0.1:15432 \\
          --to /node/bank/secure/api/service/outlet
      truststack tcp-inlet create --at analysis --from 127.0.0.1:15432 --via bank
      truststack tcp-inlet list --at analysis
    """


def _show_plain(i: dict[str, Any]) -> str:
    from trust.cli.common import seconds_text, terminal_safe

    lines = [f"Name: {terminal_safe(i.get('name'))}",
             f"Listening: {terminal_safe(i.get('address'))}",
             f"Route: {terminal_safe(i.get('route'))}",
             f"Authorized: {', '.join(i.get('authorized') or []) or '-'}",
             f"Connected: {'yes' if i.get('connected') else 'no'}",
             f"Connections: {i.get('active')} open, {i.get('connections')} in all",
             f"Bytes: {i.get('bytes_in')} from clients, {i.get('bytes_out')} to them",
             f"Denied: {i.get('denied')}, failed: {i.get('failed')}",
             f"Keepalive after: {seconds_text(i.get('keepalive'), 'none')} idle "
             f"({i.get('keepalives')} sent)"]
    if i.get("last_error"):
        lines.append(f"Last error: {terminal_safe(i.get('last_error'))}")
    return "\n".join(lines)


@cli.command("create")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--from", "from_", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="Where to listen (port 0: a free one, printed).")
@click.option("--to", "to", metavar="ROUTE",
              help="The outlet's route, e.g. /node/bank/secure/api/service/outlet.")
@click.option("--via", "via", metavar="RELAY",
              help="Reach the outlet through relay RELAY at the node's authority: the route "
                   "is the authority route, then /service/forward_to_RELAY/secure/api/service/"
                   "outlet.")
@click.option("--authorized", "authorized", metavar="IDENTIFIER", multiple=True,
              help="Trust only this outlet node identity for the end-to-end channel "
                   "(repeatable; default: any member of the node's authority).")
@click.option("--allow", "allow", metavar="EXPR",
              help="Its policy (stored as `policy create --resource NAME --at NODE` would).")
@click.option("--name", "name", metavar="NAME",
              help="The inlet's name (and policy resource name); default inlet, inlet-2, ...")
@click.option("--keepalive", "keepalive", metavar="DURATION",
              help="Send a keepalive (an empty message, which outlets write as nothing) on a "
                   "connection idle this long, so its outlet can tell when this node is gone "
                   "(default 10s; at most 1d).")
@output_option
def create(node: str, from_: str, to: str | None, via: str | None,
           authorized: tuple[str, ...], allow: str | None, name: str | None,
           keepalive: str | None, output: str) -> None:
    """Create an inlet at NODE listening on HOST:PORT; print the address it listens on.

    \b
    Examples:
      truststack tcp-inlet create --at analysis --from 127.0.0.1:15432 \\
          --to /node/bank/secure/api/service/outlet --authorized I0123...
    """
    from trust.errors import UsageError
    from trust.relays.messages import check_relay_name
    from trust.routing import parse_multiaddr
    from trust.transports.addresses import split_host_port

    if (to is None) == (via is None):
        raise UsageError("give exactly one of --to ROUTE and --via RELAY")
    check_flag("--from", split_host_port, from_)
    if to is not None:
        check_flag("--to", parse_multiaddr, to)
    if via is not None:
        check_flag("--via", check_relay_name, via)  # (the rule of relay create's NAME)
    params: dict[str, Any] = {"from": from_, "authorized": list(authorized)}
    for key, value in (("to", to), ("via", via), ("allow", allow), ("name", name)):
        if value is not None:
            params[key] = value
    if keepalive is not None:
        from trust.node.portal_feature import MAX_LIVENESS_SECONDS

        params["keepalive"] = parse_duration(keepalive, allow_zero=False,
                                             maximum=MAX_LIVENESS_SECONDS)
    result = node_client(node).request("tcp_inlet.create", params)
    emit(output, result, result.get("address", ""))


@cli.command("list")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def list_(node: str, output: str) -> None:
    """List NODE's inlets: name, address, route, open connections, bytes from and to clients.

    \b
    Example:
      truststack tcp-inlet list --at analysis
    """
    rows = node_client(node).request("tcp_inlet.list").get("inlets", [])
    emit_table(output, rows, ["name", "address", "route", "active", "bytes_in", "bytes_out"])


@cli.command("show")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def show(name: str, node: str, output: str) -> None:
    """Show the inlet NAME at NODE, with its byte counts.

    \b
    Example:
      truststack tcp-inlet show inlet --at analysis --output json
    """
    result = node_client(node).request("tcp_inlet.show", {"name": name})
    emit(output, result, lambda: _show_plain(result))


@cli.command("delete")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def delete(name: str, node: str, output: str) -> None:
    """Delete the inlet NAME at NODE (it stops listening; open connections are closed).

    \b
    Example:
      truststack tcp-inlet delete inlet --at analysis
    """
    result = node_client(node).request("tcp_inlet.delete", {"name": name})
    emit(output, result, f"Inlet {name} deleted at node {node}")
