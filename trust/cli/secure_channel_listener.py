"""``truststack secure-channel-listener``: create, list and delete secure-channel listeners."""

from __future__ import annotations

import click

from trust.cli.common import emit, emit_table, node_client, output_option


@click.group("secure-channel-listener")
def cli() -> None:
    """Secure-channel listeners on running nodes (every node runs one at `api`).

    \b
    Examples:
      truststack secure-channel-listener create alice-only --at n2 --authorized I0123...
      truststack secure-channel create --from n1 --to /node/n2/service/alice-only
      truststack secure-channel-listener list --at n2
      truststack secure-channel-listener delete alice-only --at n2
    """


@cli.command("create")
@click.argument("address")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--authorized", "authorized", metavar="IDENTIFIER", multiple=True,
              help="Accept only peers with this identifier (repeatable; default: any "
                   "authenticated peer).")
@output_option
def create(address: str, node: str, authorized: tuple[str, ...], output: str) -> None:
    """Start a listener at ADDRESS on NODE, as the node's identity (with its credential and
    authorities); what comes out of its channels reaches the node's services.

    \b
    Example:
      truststack secure-channel-listener create alice-only --at n2 --authorized I0123...
    """
    result = node_client(node).request("secure_channel_listener.create",
                                   {"address": address, "authorized": list(authorized)})
    emit(output, result, f"Secure-channel listener {result.get('address')} created at node "
                         f"{node}")


@cli.command("list")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def list_(node: str, output: str) -> None:
    """List NODE's listeners: address, handshakes, in progress, failed, timed out, dropped.

    \b
    Example:
      truststack secure-channel-listener list --at n2
    """
    rows = node_client(node).request("secure_channel_listener.list").get("listeners", [])
    emit_table(output, rows, ["address", "handshakes", "in_progress", "failed", "timed_out",
                              "dropped"])


@cli.command("delete")
@click.argument("address")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def delete(address: str, node: str, output: str) -> None:
    """Stop the listener at ADDRESS on NODE (its open channels stay open).

    \b
    Example:
      truststack secure-channel-listener delete alice-only --at n2
    """
    result = node_client(node).request("secure_channel_listener.delete", {"address": address})
    emit(output, result, f"Secure-channel listener {result.get('address')} deleted at node "
                         f"{node}")
