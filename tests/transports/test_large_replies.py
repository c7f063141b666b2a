"""Large messages sent one after another, each in a later turn of the event loop, all arrive
(a write held for a batch must never wait for a later write to go out)."""

from __future__ import annotations

import asyncio

from tests.node.helpers import arun
from trust.node import Echo, Node
from trust.routing import Address, Route


def test_large_echoes_one_after_another_each_arrive_at_once() -> None:
    async def scenario() -> None:
        server = Node("large-server")
        client = Node("large-client")
        try:
            await server.start_worker("echo", Echo())
            listener = await server.create_tcp_listener("127.0.0.1:0", consumers=["echo"])
            route = Route([Address.tcp(listener.address), "echo"])
            for size in (9_000, 20_000, 70_000, 9_000, 100, 65_536, 9_000):
                payload = bytes([size % 251]) * size
                reply = await asyncio.wait_for(
                    client.send_and_receive(route, payload, timeout=None), 3)
                assert reply == payload, size
                await asyncio.sleep(0.01)  # the next one in a later turn of the loop
        finally:
            await client.stop()
            await server.stop()

    arun(scenario(), timeout=30)
