"""``truststack stream``: streams on a running node (create, push, pull, list, show, delete)."""

from __future__ import annotations

import sys
from typing import Any

import click

from trust.cli.common import AsciiInt, emit, emit_table, node_client, output_option


@click.group("stream")
def cli() -> None:
    """Streams: ordered, durable logs of messages on a node (its database, or Kafka).

    Devices that go offline push to and pull from a stream on a node they can reach; a
    consumer group's position is saved, so it resumes where it stopped. Secure channels run
    over a pair of streams (see docs/streams.md), so the stream's storage holds only
    ciphertext.

    \b
    Examples:
      truststack stream create orders --at n1
      truststack stream push orders "first order" --at n1
      truststack stream pull orders --at n1 --group billing
      truststack stream create metrics --at n1 --backend kafka://127.0.0.1:9092 --partitions 4
    """


def _text(data: bytes) -> str:
    from trust.cli.common import terminal_safe

    try:
        return terminal_safe(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "0x" + data.hex()


@cli.command("create")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--backend", default="sqlite", show_default=True, metavar="sqlite|kafka://HOST:PORT",
              help="Where the stream's records live: the node's database, or a Kafka cluster.")
@click.option("--partitions", default=1, show_default=True, type=AsciiInt(1, 64),
              help="Partitions (1 for a stream that carries a secure channel).")
@output_option
def create(name: str, node: str, backend: str, partitions: int, output: str) -> None:
    """Create stream NAME at NODE (nothing changes if it exists with the same partitions).

    \b
    Examples:
      truststack stream create orders --at n1
      truststack stream create metrics --at n1 --backend kafka://127.0.0.1:9092 --partitions 4
    """
    from trust.streams.catalog import parse_backend
    from trust.streams.messages.common import check_name

    check_name(name)
    parse_backend(backend)
    info = node_client(node).request("stream.create", {"name": name, "partitions": partitions,
                                                   "backend": backend})
    emit(output, info, f"Stream {info['name']} at node {node}: {info['partitions']} "
                       f"partition(s), in {info['backend']}")


@cli.command("push")
@click.argument("name")
@click.argument("message", nargs=-1, required=True)
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--partition", default=0, show_default=True, type=AsciiInt(0, 63))
@output_option
def push(name: str, message: tuple[str, ...], node: str, partition: int, output: str) -> None:
    """Append MESSAGE (one record each, in order) to stream NAME at NODE.

    \b
    Example:
      truststack stream push orders "first order" "second order" --at n1
    """
    result = node_client(node).request("stream.push", {"name": name, "messages": list(message),
                                                   "partition": partition})
    emit(output, result, f"Pushed {result['count']} message(s) to {name}, from index "
                         f"{result['first_index']}")


@cli.command("pull")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@click.option("--group", metavar="NAME",
              help="Consumer group: start at its saved position and save the new one.")
@click.option("--from-index", type=AsciiInt(0), help="Start at this index (default: the "
                                                     "group's position, else 0).")
@click.option("--limit", default=100, show_default=True, type=AsciiInt(1, 1000),
              help="Records per pull.")
@click.option("--partition", default=0, show_default=True, type=AsciiInt(0, 63))
@click.option("--follow", is_flag=True, help="Keep pulling new records until interrupted.")
@output_option
def pull(name: str, node: str, group: str | None, from_index: int | None, limit: int,
         partition: int, follow: bool, output: str) -> None:
    """Print records of stream NAME at NODE (one line each: its text, escaped, or 0x + hex).

    With --follow, wait for new records and print them as they come (Ctrl-C stops); on a
    terminal a live count is shown on stderr. In JSON each record is an object with index,
    data_hex and text (when it is UTF-8).

    \b
    Examples:
      truststack stream pull orders --at n1
      truststack stream pull orders --at n1 --group billing --follow
    """
    import json

    client = node_client(node)
    params: dict[str, Any] = {"name": name, "limit": limit, "partition": partition}
    if group is not None:
        params["group"] = group
    if from_index is not None:
        params["from_index"] = from_index
    count = 0
    live = follow and sys.stderr.isatty()
    try:
        while True:
            result = client.request("stream.pull", {**params, "wait": 1.0 if follow else 0},
                                    timeout=15)
            records = result.get("records", [])
            rows = []
            for rec in records:
                data = bytes.fromhex(rec["data"])
                row: dict[str, Any] = {"index": rec["index"], "data_hex": rec["data"]}
                try:
                    row["text"] = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                rows.append(row)
                if output == "json" and follow:
                    click.echo(json.dumps(row))
                elif output != "json":
                    click.echo(_text(data))
            count += len(records)
            if live:
                click.echo(f"\r{count} record(s)", nl=False, err=True)
            if not follow:
                if output == "json":
                    emit(output, {"name": name, "next_index": result["next_index"],
                                  "records": rows})
                return
            if group is None:
                params["from_index"] = result["next_index"]
    except KeyboardInterrupt:
        if live:
            click.echo("", err=True)


@cli.command("list")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def list_(node: str, output: str) -> None:
    """List the streams at NODE: name, partitions, backend.

    \b
    Example:
      truststack stream list --at n1
    """
    rows = node_client(node).request("stream.list").get("streams", [])
    emit_table(output, rows, ["name", "partitions", "backend"])


@cli.command("show")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def show(name: str, node: str, output: str) -> None:
    """Show stream NAME at NODE.

    \b
    Example:
      truststack stream show orders --at n1
    """
    info = node_client(node).request("stream.show", {"name": name})
    emit(output, info, lambda: "\n".join([
        f"Name: {info['name']}", f"Partitions: {info['partitions']}",
        f"Backend: {info['backend']}", f"Service: {info['service']}"]))


@cli.command("delete")
@click.argument("name")
@click.option("--at", "node", required=True, metavar="NODE", help="The running node.")
@output_option
def delete(name: str, node: str, output: str) -> None:
    """Delete stream NAME at NODE with its records and saved positions.

    \b
    Example:
      truststack stream delete orders --at n1
    """
    result = node_client(node).request("stream.delete", {"name": name})
    emit(output, result, f"Stream {name} deleted at node {node}")
