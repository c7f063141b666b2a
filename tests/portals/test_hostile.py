"""Hostile portal peers: whatever an outlet (or someone posing as one) sends, the inlet closes
the client's connection at once, counts it, and changes nothing else; an outlet drops what is
not a Ping; limits close extra connections at once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.node.helpers import arun
from tests.portals.helpers import echo_server
from trust.node import Context, Node
from trust.portals import create_inlet, create_outlet
from trust.routing import LocalMessage, Route


async def _closed(port: int, send: bytes = b"hello") -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(send)
        try:
            return await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            return True
    finally:
        writer.close()


@pytest.mark.parametrize("answers", [
    [b"\x07"],                              # unknown tag
    [b""],                                  # empty
    [b"\x01\x00"],                          # Pong with trailing bytes
    [b"\x03\x02hi"],                        # data before Pong
    [b"\x01", b"\x03\x05hi"],               # length larger than the data
    [b"\x01", b"\x03\x02hi\x07"],           # trailing byte that is no counter flag
    [b"\x01", b"\x03\x80\x80\x04" + bytes(65536)],  # over 48 KiB
    [b"\x01", b"\x03\x02hi\x01\x05\x00"],   # packet counter 5, 0 was expected
    [b"\x01", b"\x01"],                     # a second Pong
    [b"\x00"],                              # Ping to an inlet
], ids=lambda a: "-".join(x[:4].hex() or "empty" for x in a))
def test_a_misbehaving_outlet_closes_the_client_connection(
        answers: list[bytes], caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with Node("n") as node:
            async def fake_outlet(ctx: Context, msg: LocalMessage) -> None:
                assert msg.payload == b"\x00"  # the inlet's Ping
                for answer in answers:
                    await ctx.send(msg.return_route, answer)

            await node.start_worker("fake", fake_outlet)
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["fake"]), pong_timeout=5)
            try:
                assert await _closed(inlet.port)
                await asyncio.sleep(0.05)
                assert inlet.stats.active == 0 and inlet.stats.bytes_out == 0
                assert inlet.stats.dropped >= 1 or inlet.stats.failed >= 1
            finally:
                await inlet.stop()

    with caplog.at_level(logging.INFO, logger="trust.portals"):
        arun(main(), timeout=30)
    assert "inlet 127.0.0.1:" in caplog.text and "closed" in caplog.text


def test_an_outlet_that_never_answers_times_out_and_says_so() -> None:
    async def main() -> None:
        async with Node("n") as node:
            async def silent(ctx: Context, msg: LocalMessage) -> None:
                return None

            await node.start_worker("silent", silent)
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["silent"]), pong_timeout=0.3)
            called: list[bool] = []
            inlet.on_no_answer = lambda: called.append(True)
            try:
                assert await _closed(inlet.port)
                assert inlet.stats.failed == 1 and called == [True]
            finally:
                await inlet.stop()

    arun(main(), timeout=30)


def test_an_outlet_drops_what_is_not_a_ping_and_limits_its_connections() -> None:
    async def main() -> None:
        async with echo_server() as port, Node("n") as node:
            outlet = await create_outlet(node, f"127.0.0.1:{port}", "out", max_connections=1)
            for junk in (b"\x03\x02hi", b"\x01", b"", b"\x00\x00"):
                await node.send(Route(["out"]), junk)
            await asyncio.sleep(0.05)
            assert outlet.stats.dropped == 4 and outlet.stats.connections == 0
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["out"]), max_connections=2)
            try:
                r1, w1 = await asyncio.open_connection("127.0.0.1", inlet.port)
                w1.write(b"one")
                assert await r1.readexactly(3) == b"one"
                # the outlet holds one connection at most: the second is refused at once
                assert await _closed(inlet.port)
                assert outlet.stats.failed == 1
                w1.close()
            finally:
                await inlet.stop()

    arun(main(), timeout=30)


def test_an_inlet_closes_connections_over_its_limit() -> None:
    async def main() -> None:
        async with echo_server() as port, Node("n") as node:
            await create_outlet(node, f"127.0.0.1:{port}", "out")
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["out"]), max_connections=1)
            try:
                r1, w1 = await asyncio.open_connection("127.0.0.1", inlet.port)
                w1.write(b"x")
                assert await r1.readexactly(1) == b"x"
                assert await _closed(inlet.port)
                assert inlet.stats.failed == 1 and inlet.stats.active == 1
                w1.close()
            finally:
                await inlet.stop()

    arun(main(), timeout=30)


def test_a_pong_after_the_inlet_gave_up_is_answered_with_disconnect() -> None:
    """The outlet answered too late (the inlet closed the client at its timeout): the late Pong
    is answered with Disconnect, so the outlet closes the connection it made."""

    async def main() -> None:
        async with Node("n") as node:
            got: list[bytes] = []
            answered = asyncio.Event()

            async def slow_outlet(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                if msg.payload == b"\x00":
                    await asyncio.sleep(0.5)
                    await ctx.send(msg.return_route, b"\x01")
                else:
                    answered.set()

            await node.start_worker("slow", slow_outlet)
            inlet = await create_inlet(node, "127.0.0.1:0", Route(["slow"]), pong_timeout=0.2)
            try:
                assert await _closed(inlet.port)
                await asyncio.wait_for(answered.wait(), 5)
                assert got == [b"\x00", b"\x02"]
                assert inlet.stats.active == 0 and inlet.stats.failed == 1
                assert inlet.lingering == 0  # answered: no longer registered
            finally:
                await inlet.stop()

    arun(main(), timeout=30)
