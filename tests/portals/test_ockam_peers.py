"""Half-close against Ockam's portals, which end the whole connection on Disconnect and never
answer it: a truststack portal whose peer sent no HELLO closes its socket (at once on a
Disconnect received, :data:`HALF_CLOSE_WAIT` after one sent), so no socket stays half-open
for ever; between two truststack portals the HELLO keeps half-close working, even for an EOF
read before it arrived.

The Ockam side is emulated after ``ockam_transport_tcp/src/portal/portal_worker.rs`` (build-
trust/ockam ``fb8fb64``): on Disconnect it stops its reader and writer and sends nothing; on
its own socket's EOF it sends Disconnect, ignores everything after and stops; it writes an
empty Payload as nothing; it sends no HELLO.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.portals.helpers import echo_server
from trust.node import Node
from trust.node.context import Context
from trust.node.worker import Worker
from trust.portals import create_inlet, create_outlet
from trust.portals import portal as portal_module
from trust.portals.messages import DISCONNECT, PING, PONG, Payload, decode, encode_payload
from trust.routing import Address, LocalMessage, Route

WAIT = 0.3


@pytest.fixture(autouse=True)
def _short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portal_module, "HALF_CLOSE_WAIT", WAIT)


class _OckamConnection(Worker):
    """One connection of an Ockam portal (its ``portal_worker``), over ``reader``/``writer``."""

    def __init__(self, node: Node, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 remote: Route | None) -> None:
        self.node = node
        self.reader = reader
        self.writer = writer
        self.remote = remote
        self.stopped = False
        self.received: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def start_reading(self, ctx: Context) -> None:
        self.task = asyncio.get_running_loop().create_task(self._pump(ctx))

    async def _pump(self, ctx: Context) -> None:
        assert self.remote is not None
        while data := await self.reader.read(48 * 1024):
            await ctx.send(self.remote, encode_payload(data))
        await ctx.send(self.remote, DISCONNECT)
        self._stop()

    def _stop(self) -> None:
        self.stopped = True
        self.writer.close()

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        payload = bytes(msg.payload)
        self.received.append(payload)
        if self.stopped:
            return  # (Ockam: a disconnecting worker ignores everything)
        if payload == PONG and self.remote is None:  # an inlet's connection
            self.remote = msg.return_route
            self.start_reading(ctx)
            return
        if payload == DISCONNECT:
            if self.task is not None:
                self.task.cancel()
            self._stop()
            return
        message = decode(payload)
        assert isinstance(message, Payload)
        self.writer.write(message.data)  # (an empty Payload: nothing)


class _OckamOutlet(Worker):
    """Ockam's outlet listener: on a Ping, connect to the target and answer Pong."""

    def __init__(self, node: Node, port: int) -> None:
        self.node = node
        self.port = port
        self.connections: list[_OckamConnection] = []

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        assert bytes(msg.payload) == PING
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        conn = _OckamConnection(self.node, reader, writer, msg.return_route)
        self.connections.append(conn)
        cctx = await self.node.start_worker(Address.random(), conn)
        await cctx.send(msg.return_route, PONG)
        conn.start_reading(cctx)


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _server(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                    object]) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_an_inlet_to_an_ockam_outlet_closes_the_client_after_its_eof() -> None:
    async def main() -> None:
        async with echo_server() as port, Node("n") as node:
            outlet = _OckamOutlet(node, port)
            await node.start_worker("ockam_outlet", outlet)
            inlet = await create_inlet(node, "127.0.0.1:0", Route.of("ockam_outlet"))
            reader, writer = await asyncio.open_connection("127.0.0.1", inlet.port)
            writer.write(b"hi")
            assert await reader.readexactly(2) == b"hi"
            writer.write_eof()  # Disconnect: the Ockam outlet ends everything, says nothing
            assert await asyncio.wait_for(reader.read(), 5 * WAIT + 2) == b""
            await _until(lambda: inlet.stats.active == 0, 2)
            conn = outlet.connections[0]
            assert conn.stopped and conn.received[0] == b"\x03\x00"  # the inlet's HELLO
            assert conn.received[1:] == [b"\x03\x02hi", DISCONNECT]
            writer.close()
            await inlet.stop()

    asyncio.run(main())


def test_an_outlet_behind_an_ockam_inlet_closes_its_target_connection() -> None:
    async def main() -> None:
        served: list[asyncio.StreamWriter] = []

        async def banner_and_close(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
            served.append(writer)
            writer.write(b"bye")
            await writer.drain()
            writer.write_eof()  # (the target ends its side; its socket stays open)

        async with _server(banner_and_close) as port, Node("n") as node:
            outlet = await create_outlet(node, f"127.0.0.1:{port}", "outlet")
            got: list[bytes] = []

            async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                got.append(await reader.read())

            async with _server(client) as cport:
                reader, writer = await asyncio.open_connection("127.0.0.1", cport)
                conn = _OckamConnection(node, reader, writer, None)
                ctx = await node.start_worker(Address.random(), conn)
                await ctx.send(Route.of("outlet"), PING)
                await _until(lambda: got == [b"bye"], 5)
                # the outlet's Disconnect stopped the Ockam inlet: the outlet must not keep
                # its half of the target connection open for ever
                await _until(lambda: outlet.stats.active == 0, 5 * WAIT + 2)
                assert conn.received[:2] == [PONG, b"\x03\x00"]  # Pong, then the HELLO
            await outlet.stop()

    asyncio.run(main())


def test_a_disconnect_from_an_ockam_inlet_closes_the_target_connection_at_once() -> None:
    async def main() -> None:
        eof = asyncio.Event()

        async def keeps_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.read() == b"query"
            eof.set()  # (and never closes: a half-close would leave the connection open)

        async with _server(keeps_open) as port, Node("n") as node:
            outlet = await create_outlet(node, f"127.0.0.1:{port}", "outlet")
            collector = _Collector()
            ctx = await node.start_worker("ockam_inlet_conn", collector)
            await ctx.send(Route.of("outlet"), PING)
            await _until(lambda: bool(collector.messages), 5)
            pong = collector.messages[0]
            assert bytes(pong.payload) == PONG
            for payload in (encode_payload(b"query"), DISCONNECT):
                await ctx.send(pong.return_route, payload)
            await asyncio.wait_for(eof.wait(), 5)
            await _until(lambda: outlet.stats.active == 0, WAIT)  # at once, no wait
            await outlet.stop()

    asyncio.run(main())


class _Collector(Worker):
    def __init__(self) -> None:
        self.messages: list[LocalMessage] = []

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        self.messages.append(msg)


def test_between_truststack_portals_an_early_eof_still_half_closes() -> None:
    """The client writes and half-closes at once (its EOF may be read before the outlet's
    HELLO arrives); the server answers after several HALF_CLOSE_WAITs: the answer arrives."""

    async def main() -> None:
        async def slow_answer(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
            data = await reader.read()
            await asyncio.sleep(4 * WAIT)
            writer.write(data[::-1])
            await writer.drain()
            writer.close()

        async with _server(slow_answer) as port, Node("n") as node:
            outlet = await create_outlet(node, f"127.0.0.1:{port}", "outlet")
            inlet = await create_inlet(node, "127.0.0.1:0", Route.of("outlet"))
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", inlet.port)
                writer.write(b"abc")
                writer.write_eof()
                assert await asyncio.wait_for(reader.read(), 10) == b"cba"
                writer.close()
            await _until(lambda: inlet.stats.active == outlet.stats.active == 0, 5)
            assert outlet.stats.keepalives == inlet.stats.keepalives == 0  # (HELLO is none)
            await inlet.stop()
            await outlet.stop()

    asyncio.run(main())
