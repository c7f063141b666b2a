"""1000 concurrent workers exchanging messages, locally and over TCP; stopping leaves nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.node.helpers import LOOPS, arun, open_sockets, other_tasks
from trust.node import Context, Node
from trust.routing import Address, LocalMessage, Route

WORKERS = 1000
HOPS = 10


@pytest.mark.parametrize("loop", LOOPS)
def test_thousand_workers_in_a_ring_then_clean_stop(loop: str) -> None:
    """Each of 1000 workers passes tokens to the next one; every token makes HOPS hops."""

    async def main() -> None:
        before = open_sockets()
        node = Node("ring")
        done = asyncio.get_running_loop().create_future()
        finished = 0

        async def step(ctx: Context, msg: LocalMessage) -> None:
            nonlocal finished
            left = msg.payload[0]
            if left == 0:
                finished += 1
                if finished == WORKERS and not done.done():
                    done.set_result(None)
                return
            i = int(ctx.address.name[1:])
            await ctx.send(f"w{(i + 1) % WORKERS}", bytes([left - 1]))

        for i in range(WORKERS):
            await node.start_worker(f"w{i}", step)
        starter = node.context()
        for i in range(WORKERS):
            await starter.send(f"w{i}", bytes([HOPS]))
        await asyncio.wait_for(done, 30)
        assert len(node.workers()) == WORKERS + 1
        await node.stop()
        assert other_tasks() == set()
        assert open_sockets() <= before

    arun(main(), loop=loop, timeout=60)


def test_thousand_workers_talking_over_tcp_then_clean_stop() -> None:
    """1000 workers on A each ask their partner among 1000 workers on B, over one connection."""

    async def main() -> None:
        before = open_sockets()
        a, b = Node("a"), Node("b")
        listener = await b.create_tcp_listener(consumers=[f"p{i}" for i in range(WORKERS)])
        replies: dict[int, bytes] = {}
        done = asyncio.get_running_loop().create_future()

        async def partner(ctx: Context, msg: LocalMessage) -> None:
            await ctx.send(msg.return_route, ctx.address.inner + b":" + msg.payload)

        async def asker(ctx: Context, msg: LocalMessage) -> None:
            i = int(ctx.address.name[1:])
            if msg.payload == b"go":
                route = Route([Address.tcp(listener.address), f"p{i}"])
                await ctx.send(route, str(i).encode())
                return
            replies[i] = msg.payload
            if len(replies) == WORKERS and not done.done():
                done.set_result(None)

        for i in range(WORKERS):
            await b.start_worker(f"p{i}", partner)
            await a.start_worker(f"q{i}", asker)
        starter = a.context()
        for i in range(WORKERS):
            await starter.send(f"q{i}", b"go")
        await asyncio.wait_for(done, 30)
        assert all(replies[i] == f"p{i}:{i}".encode() for i in range(WORKERS))
        assert len(a.tcp.connections) == 1
        await a.stop()
        await b.stop()
        assert other_tasks() == set()
        assert open_sockets() <= before
        assert len(a.flow_controls) == 0 and len(b.flow_controls) == 0

    arun(main(), timeout=60)
