"""``truststack message send``: send a message along a route and print the reply."""

from __future__ import annotations

from typing import Any

import click

from trust.cli.common import emit, output_option, parse_duration, read_value


@click.group("message")
def cli() -> None:
    """Send messages to workers on nodes (echo, hop, ... over TCP).

    \b
    Examples:
      truststack message send hello --from n1 --to /node/n2/service/echo
      truststack message send hi --to /ip4/127.0.0.1/tcp/4000/service/echo
      truststack message send 0548656c6c6f --hex --from n1 --to /service/echo
    """


@cli.command("send")
@click.argument("message", required=False)
@click.option("--file", "file_", metavar="PATH", help="Read the message from a file.")
@click.option("--to", "to", required=True, metavar="ROUTE",
              help="Route, e.g. /node/n2/service/echo or /ip4/127.0.0.1/tcp/4000/service/echo.")
@click.option("--from", "from_", metavar="NODE",
              help="Send from this running node (default: a temporary node in this process).")
@click.option("--timeout", default="10s", show_default=True, help="How long to wait for a reply.")
@click.option("--hex", "hex_", is_flag=True,
              help="MESSAGE is hex, sent as raw bytes; the reply is printed as hex.")
@output_option
def send(message: str | None, file_: str | None, to: str, from_: str | None, timeout: str,
         hex_: bool, output: str) -> None:
    """Send MESSAGE along ROUTE and print the reply.

    The text is sent as a BARE string (length, then UTF-8), as Ockam sends a Rust String,
    and the reply is decoded the same way. With --hex, raw bytes go both ways.

    \b
    Examples:
      truststack message send hello --from n1 --to /node/n2/service/echo
      truststack message send hi --to /ip4/127.0.0.1/tcp/4000/service/hop/ip4/10.0.0.2/tcp/5000/service/echo
      truststack message send 01ff --hex --from n1 --to /service/echo
    """
    from trust.errors import RemoteProtocolError, UsageError
    from trust.routing import decode_string, encode_string, parse_multiaddr

    seconds = parse_duration(timeout)
    if seconds <= 0:
        raise UsageError("--timeout must be positive")
    text = read_value(message, file_, what="message")
    if hex_:
        try:
            payload = bytes.fromhex(text)
        except ValueError:
            raise UsageError("the message is not valid hex (drop --hex to send text)") from None
    else:
        payload = encode_string(text)
    parse_multiaddr(to)  # report route syntax errors before contacting anything
    if from_ is not None:
        reply = _send_from_node(from_, to, payload, seconds)
    else:
        reply = _send_from_temporary_node(to, payload, seconds)
    data: dict[str, Any] = {"to": to}
    if hex_:
        data["reply_hex"] = reply.hex()
        emit(output, data, reply.hex())
        return
    try:
        text_reply = decode_string(reply)
    except Exception:
        raise RemoteProtocolError(
            f"the reply ({len(reply)} bytes) is not a BARE string; use --hex to see it") from None
    data["reply"] = text_reply
    emit(output, data, text_reply)


def _send_from_node(node: str, to: str, payload: bytes, seconds: float) -> bytes:
    from trust.node.control_client import ControlClient

    client = ControlClient.for_node(node)
    result = client.request("message.send", {"to": to, "payload": payload.hex(),
                                             "timeout": seconds}, timeout=seconds + 10)
    reply = result.get("payload")
    if not isinstance(reply, str):
        from trust.errors import RemoteProtocolError

        raise RemoteProtocolError("the node's answer has no payload")
    return bytes.fromhex(reply)


def _send_from_temporary_node(to: str, payload: bytes, seconds: float) -> bytes:
    from trust.cli.common import run
    from trust.node import Node, ReceiveTimeoutError
    from trust.node.resolve import route_from_text

    route = route_from_text(to)

    async def go() -> bytes:
        async with Node("message") as node:
            await node.start_services()  # echo and hop, as on any node (a route may come back)
            try:
                return await node.send_and_receive(route, payload, timeout=seconds)
            except ReceiveTimeoutError:
                raise ReceiveTimeoutError(f"no reply from {to} within {seconds:g}s") from None

    return run(go())
