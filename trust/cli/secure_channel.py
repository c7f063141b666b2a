"""``truststack secure-channel``: create, list, show and delete secure channels on nodes."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import emit, emit_table, iso_time, node_client, output_option, parse_duration


@click.group("secure-channel")
def cli() -> None:
    """Secure channels between nodes: end-to-end encrypted, mutually authenticated.

    A channel is opened by a running node (--from) to a secure-channel listener at the end of
    a route (every node runs one at `api`). Its route, printed by `create`, addresses the far
    side: append a service to reach it through the channel.

    \b
    Examples:
      truststack secure-channel create --from n1 --to /node/n2/service/api
      truststack message send hello --from n1 --to "$(truststack secure-channel create \\
          --from n1 --to /node/n2/service/api)/service/echo"
      truststack secure-channel list --at n1
      truststack secure-channel delete 3f8a... --at n1
    """


def _show_plain(ch: dict[str, Any]) -> str:
    from trust.cli.common import terminal_safe

    return "\n".join([f"Address: {terminal_safe(ch.get('address'))}",
                      f"Route: {terminal_safe(ch.get('route'))}",
                      f"Peer: {terminal_safe(ch.get('peer'))}",
                      f"Initiator: {'yes' if ch.get('initiator') else 'no'}",
                      f"Remote route: {terminal_safe(ch.get('remote_route'))}",
                      f"Created: {iso_time(ch.get('created_at'))}"])


@cli.command("create")
@click.option("--from", "from_", required=True, metavar="NODE",
              help="The running node that opens the channel (as its identity).")
@click.option("--to", "to", required=True, metavar="ROUTE",
              help="Route to a secure-channel listener, e.g. /node/n2/service/api.")
@click.option("--identity", metavar="NAME",
              help="Open the channel as this local identity (default: the node's; the node's "
                   "credential is presented only as the node's identity).")
@click.option("--authorized", "authorized", metavar="IDENTIFIER", multiple=True,
              help="Accept only a peer with this identifier (repeatable; default: any "
                   "authenticated peer).")
@click.option("--timeout", default="30s", show_default=True,
              help="How long the handshake may take.")
@output_option
def create(from_: str, to: str, identity: str | None, authorized: tuple[str, ...], timeout: str,
           output: str) -> None:
    """Open a secure channel from node NODE to the listener at ROUTE; print its route.

    The route printed (e.g. /service/3f8a...) addresses the far side: a message sent
    from NODE to that route followed by /service/echo reaches the peer's echo through the
    channel.

    \b
    Examples:
      truststack secure-channel create --from n1 --to /node/n2/service/api
      truststack secure-channel create --from n1 --to /ip4/127.0.0.1/tcp/4000/service/api \\
          --authorized I0123...
    """
    from trust.errors import UsageError
    from trust.routing import parse_multiaddr

    seconds = parse_duration(timeout)
    if not 0 < seconds <= 600:
        raise UsageError("--timeout must be positive and at most 10m")
    parse_multiaddr(to)  # report route syntax errors before contacting the node
    params: dict[str, Any] = {"to": to, "authorized": list(authorized), "timeout": seconds}
    if identity is not None:
        params["identity"] = identity
    ch = node_client(from_).request("secure_channel.create", params, timeout=seconds + 10)
    emit(output, ch, ch.get("route", ""))


@cli.command("list")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def list_(node: str, output: str) -> None:
    """List the open channels of NODE: address, route, peer, initiator (yes/no), remote route.

    \b
    Example:
      truststack secure-channel list --at n1
    """
    rows = node_client(node).request("secure_channel.list").get("channels", [])
    emit_table(output, rows, ["address", "route", "peer", "initiator", "remote_route"])


@cli.command("show")
@click.argument("address")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def show(address: str, node: str, output: str) -> None:
    """Show the channel ADDRESS (its address or its route) at NODE.

    \b
    Example:
      truststack secure-channel show /service/3f8a... --at n1
    """
    ch = node_client(node).request("secure_channel.show", {"address": address})
    emit(output, ch, lambda: _show_plain(ch))


@cli.command("delete")
@click.argument("address")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def delete(address: str, node: str, output: str) -> None:
    """Close the channel ADDRESS (its address or its route) at NODE; the peer is told.

    \b
    Example:
      truststack secure-channel delete /service/3f8a... --at n1
    """
    result = node_client(node).request("secure_channel.delete", {"address": address})
    emit(output, result, f"Secure channel {result.get('address')} deleted at node {node}")
