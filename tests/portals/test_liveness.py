"""Portal liveness: an inlet's keepalives (empty Payloads) on idle connections, and an outlet
that closes a connection whose inlet went silent (its node gone behind a proxy or relay that
keeps the outlet node's own TCP connection open), never one whose inlet sends no keepalives,
nor one that is silent because its own server stopped reading."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.node.helpers import arun
from tests.portals.helpers import Pair, digest_server, portal_pair, stream_bytes
from trust.errors import UsageError
from trust.node import Node
from trust.portals import create_inlet, create_outlet
from trust.portals.messages import KEEPALIVE
from trust.routing import Route

SILENCE = 1.0
KEEPALIVE_EVERY = 0.2


@asynccontextmanager
async def linked(target: str, *, keepalive: float | None = KEEPALIVE_EVERY
                 ) -> AsyncIterator[Pair]:
    """Node ``a`` (inlet) reaches node ``b`` (outlet, silence timeout :data:`SILENCE`) through
    a secure channel over a TCP proxy that can be frozen (``tap``)."""
    async with portal_pair(target, tapped=True, keepalive=keepalive,
                           silence_timeout=SILENCE) as pair:
        assert pair.tap is not None
        yield pair


def _freeze(pair: Pair) -> None:
    assert pair.tap is not None
    pair.tap.frozen = True


@asynccontextmanager
async def recording_echo() -> AsyncIterator[tuple[int, list[asyncio.StreamReader]]]:
    """An echo server that keeps each connection's reader: the test sees when the outlet
    closes its side."""
    readers: list[asyncio.StreamReader] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        readers.append(reader)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], readers
    finally:
        server.close()
        await server.wait_closed()


async def _echoed(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    async with asyncio.timeout(10):
        assert await reader.readexactly(5) == b"hello"
    return reader, writer


async def _until(check: object, timeout: float) -> bool:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.05)
    return True


def test_keepalive_is_an_empty_payload() -> None:
    assert KEEPALIVE == b"\x03\x00"  # Payload(b""): any outlet, Ockam's too, writes nothing


def test_an_idle_connection_lives_on_keepalives_and_closes_when_its_inlet_goes_silent(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with recording_echo() as (port, readers), linked(f"127.0.0.1:{port}") as w:
            reader, writer = await _echoed(w.inlet.port)
            await asyncio.sleep(3 * SILENCE)  # idle: only keepalives go through
            assert w.outlet.stats.silent_closed == 0 and w.outlet.stats.keepalives >= 5
            assert w.inlet.stats.keepalives >= w.outlet.stats.keepalives
            writer.write(b"still here")
            async with asyncio.timeout(10):
                assert await reader.readexactly(10) == b"still here"
            _freeze(w)  # the inlet's node is gone without a word
            with caplog.at_level(logging.WARNING, logger="trust.portals"):
                await _until(lambda: w.outlet.stats.silent_closed == 1, 3 * SILENCE + 2)
                async with asyncio.timeout(5):  # the target's connection is closed
                    assert await readers[0].read() == b""
            assert w.outlet.stats.active == 0
            assert any("nothing from the inlet for 1s" in r.getMessage() for r in caplog.records)
            writer.close()

    arun(main(), timeout=60)


def test_an_inlet_without_keepalives_is_never_timed_out() -> None:
    """(Ockam's inlets send none: their connections are never closed for silence.)"""
    async def main() -> None:
        async with recording_echo() as (port, readers), \
                linked(f"127.0.0.1:{port}", keepalive=None) as w:
            _reader, writer = await _echoed(w.inlet.port)
            _freeze(w)
            await asyncio.sleep(3 * SILENCE)
            assert w.outlet.stats.silent_closed == 0 and w.outlet.stats.active == 1
            assert w.outlet.stats.keepalives == w.inlet.stats.keepalives == 0
            assert not readers[0].at_eof()
            writer.close()

    arun(main(), timeout=60)


def test_a_connection_silent_because_its_server_stopped_reading_is_not_closed() -> None:
    """The outlet refuses messages while its server reads nothing (the channel pauses, the
    inlet's keepalives wait in it): that silence is its own, not counted."""
    size = 8 * 1024 * 1024

    async def main() -> None:
        async with digest_server(stall=True) as srv, linked(f"127.0.0.1:{srv.port}") as w:
            data = stream_bytes(7, size)
            reader, writer = await asyncio.open_connection("127.0.0.1", w.inlet.port)
            writer.write(b"x")  # (the portal is up and a keepalive was seen before the stall)
            await _until(lambda: w.outlet.stats.keepalives > 0, 10)
            writer.write(data[1:])
            await asyncio.sleep(3 * SILENCE)
            assert w.outlet.stats.silent_closed == 0 and w.outlet.stats.active == 1
            assert srv.stall is not None
            srv.stall.set()
            await writer.drain()
            writer.write_eof()
            async with asyncio.timeout(30):
                assert await reader.read() == hashlib.sha256(b"x" + data[1:]).digest()
            writer.close()

    arun(main(), timeout=90)


def test_liveness_settings_are_checked() -> None:
    async def main() -> None:
        async with Node("n") as node:
            for bad in (0, -1.0):
                with pytest.raises(UsageError, match="silence_timeout must be positive"):
                    await create_outlet(node, "127.0.0.1:9", silence_timeout=bad)
                with pytest.raises(UsageError, match="keepalive must be positive"):
                    await create_inlet(node, "127.0.0.1:0", Route(["outlet"]), keepalive=bad)

    arun(main(), timeout=30)
