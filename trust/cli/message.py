"""``truststack message send``: send a message along a route and print the reply."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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
      truststack message send hello --from n1 --to /node/n2/secure/api/service/echo
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

    A /secure/NAME segment opens a secure channel to the listener NAME at the end of the
    route so far (as the --from node's identity; without --from, as a throwaway identity)
    and the rest of the route continues inside it; the channel is closed after the reply.

    \b
    Examples:
      truststack message send hello --from n1 --to /node/n2/service/echo
      truststack message send hi --to /ip4/127.0.0.1/tcp/4000/service/hop/ip4/10.0.0.2/tcp/5000/service/echo
      truststack message send 01ff --hex --from n1 --to /service/echo
      truststack message send hello --from n1 --to /node/n2/secure/api/service/echo
    """
    from trust.errors import RemoteProtocolError, UsageError
    from trust.node.resolve import require_destination
    from trust.routing import decode_string, encode_string

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
    # report route syntax errors before contacting anything
    require_destination(to)
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
    from trust.node.resolve import close_channels, open_secure_route, secure_route_from_text

    secure = secure_route_from_text(to)

    async def go() -> bytes:
        async with Node("message") as node:
            await node.start_services()  # echo and hop, as on any node (a route may come back)
            async with _ephemeral_identity(secure.is_secure) as (identity, manager):
                route, channels = await open_secure_route(
                    secure, lambda leg: node.create_secure_channel(
                        identity, leg, identities=manager, timeout=seconds))
                try:
                    return await node.send_and_receive(route, payload, timeout=seconds)
                except ReceiveTimeoutError:
                    raise ReceiveTimeoutError(f"no reply from {to} within {seconds:g}s") from None
                finally:
                    await close_channels(channels)

    return run(go())


@contextlib.asynccontextmanager
async def _ephemeral_identity(needed: bool) -> AsyncIterator[tuple[Any, Any]]:
    """For ``/secure`` segments without --from: a fresh identity (and its secure-channel key)
    in a temporary home, deleted afterwards; nothing is written to the user's home."""
    if not needed:
        yield None, None
        return
    import tempfile

    from trust.services import open_identities

    with tempfile.TemporaryDirectory(prefix="truststack-message-") as tmp:
        manager = open_identities(tmp)  # closes its storage when it closes
        try:
            yield await manager.get_or_create("message"), manager
        finally:
            await manager.close()
