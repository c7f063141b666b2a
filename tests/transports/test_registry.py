"""The node's transport registry and the stream-connection base the TCP transport is built on."""

from __future__ import annotations

import asyncio

import pytest

from tests.node.helpers import arun
from trust.errors import NotFoundError
from trust.node import Node
from trust.routing import TCP, Address, LocalMessage, Route
from trust.transports.base import (
    Transport,
    register_transport_type,
    transport_factory,
    unregister_transport_type,
)
from trust.transports.stream import MAX_READ_BUFFER, ReadBuffer, StreamConnection
from trust.transports.tcp import TcpConnection, TcpTransport

LOOPBACK = 7  # an address type no real transport uses


class Loopback:
    """A toy transport: ``7#NAME`` reaches the local worker NAME."""

    transport_type = LOOPBACK

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stopped = False
        node.register_transport(LOOPBACK, self)

    async def resolve(self, address: Address, *, remote: bool = False) -> Address:
        return Address.local(address.name)

    def resolve_nowait(self, address: Address) -> Address | None:
        return Address.local(address.name)

    async def stop(self) -> None:
        self.stopped = True


def test_tcp_is_the_registered_transport_of_type_1() -> None:
    async def main() -> None:
        async with Node("a") as a:
            assert transport_factory(TCP) is not None
            assert a.transport(TCP) is a.tcp
            assert isinstance(a.tcp, TcpTransport) and a.tcp.transport_type == TCP
            assert a.transports == {TCP: a.tcp}
            with pytest.raises(NotFoundError):
                a.transport(99)
            with pytest.raises(NotFoundError, match="no transport can reach"):
                await a.send(Route([Address(99, b"x"), "echo"]), b"hi")

    arun(main())


def test_a_registered_transport_type_is_built_on_first_use_and_stopped_with_the_node() -> None:
    async def main() -> None:
        node = Node("a")
        try:
            got: list[bytes] = []
            done = asyncio.Event()

            async def sink(ctx: object, msg: LocalMessage) -> None:
                got.append(msg.payload)
                done.set()

            await node.start_worker("sink", sink)
            await node.send(Route([Address(LOOPBACK, b"sink")]), b"through the toy")
            await asyncio.wait_for(done.wait(), 5)
            assert got == [b"through the toy"]
            toy = node.transport(LOOPBACK)
            assert isinstance(toy, Loopback) and node.transports[LOOPBACK] is toy
            check: Transport = toy  # it satisfies the protocol (mypy checks this line)
            assert check is toy
        finally:
            await node.stop()
        assert toy.stopped

    register_transport_type(LOOPBACK, Loopback)
    try:
        arun(main())
    finally:
        unregister_transport_type(LOOPBACK)
    assert transport_factory(LOOPBACK) is None


def test_tcp_connections_share_the_stream_base() -> None:
    assert issubclass(TcpConnection, StreamConnection)
    buf = ReadBuffer(48 * 1024, head=8)
    view = buf.get()
    assert len(view) == 48 * 1024 and len(buf.buffer) == 48 * 1024 + 8
    assert buf.get().obj is view.obj  # reused, not reallocated
    buf.release()
    with pytest.raises(ValueError):
        ReadBuffer(MAX_READ_BUFFER)
    # spare bytes after the data (a portal's: the byte after a read's last chunk)
    spare = ReadBuffer(1000, head=260, tail=1)
    assert len(spare.get()) == 1000 and len(spare.buffer) == 1261
    for size, head, tail in ((MAX_READ_BUFFER - 10, 5, 5), (100, -1, 0), (100, 0, -1)):
        with pytest.raises(ValueError):
            ReadBuffer(size, head=head, tail=tail)
