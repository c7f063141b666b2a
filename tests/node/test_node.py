"""The node runtime: workers, processors, contexts, access control, local back-pressure, stop."""

from __future__ import annotations

import asyncio

import pytest

from tests.node.helpers import LOOPS, arun, other_tasks
from trust.errors import ConflictError, TrustError, UsageError
from trust.node import (
    AllowLocalInfo,
    AllowOnwardAddress,
    AllowSourceAddress,
    Context,
    DenyAll,
    Echo,
    Hop,
    Node,
    NodeStoppedError,
    Processor,
    ReceiveTimeoutError,
    UnknownAddressError,
    Worker,
)
from trust.node.worker import InlineWorker
from trust.routing import Address, LocalInfo, LocalMessage, Route


@pytest.mark.parametrize("loop", LOOPS)
def test_echo_and_function_worker(loop: str) -> None:
    async def main() -> None:
        async with Node("n") as node:
            await node.start_worker("echo", Echo())
            assert await node.send_and_receive("echo", b"ping") == b"ping"

            async def upper(ctx: Context, msg: LocalMessage) -> None:
                await ctx.send(msg.return_route, msg.payload.upper())

            await node.start_worker("upper", upper)
            assert await node.send_and_receive(Route(["upper"]), b"abc") == b"ABC"
            reply = await node.ctx.request("echo", b"x")
            assert reply.return_route == Route(["echo"])

    arun(main(), loop=loop)


def test_routes_through_local_hops_and_return_route() -> None:
    async def main() -> None:
        async with Node("n") as node:
            await node.start_services()
            seen: list[LocalMessage] = []

            async def record(ctx: Context, msg: LocalMessage) -> None:
                seen.append(msg)
                await ctx.send(msg.return_route, b"ok")

            await node.start_worker("w", record)
            route = Route(["hop"] * 20 + ["w"])  # deeper than the inline limit
            assert await node.send_and_receive(route, b"x") == b"ok"
            assert seen[0].onward_route == Route(["w"])
            assert list(seen[0].return_route)[:20] == [Address.local("hop")] * 20

    arun(main())


def test_receive_timeout_and_unknown_addresses() -> None:
    async def main() -> None:
        async with Node("n") as node:
            ctx = node.context()
            with pytest.raises(ReceiveTimeoutError) as e:
                await ctx.receive(timeout=0.05)
            assert isinstance(e.value, TrustError) and isinstance(e.value, TimeoutError)
            with pytest.raises(UnknownAddressError):
                await ctx.send("nobody", b"x")
            with pytest.raises(UsageError):
                await ctx.send(Route([]), b"x")
            with pytest.raises(UsageError):
                await ctx.send("echo", b"x", from_address="not-mine")
            with pytest.raises(TrustError, match="no transport"):
                await ctx.send("7#somewhere", b"x")

    arun(main())


def test_registration_rules() -> None:
    async def main() -> None:
        async with Node("n") as node:
            ctx = await node.start_worker(["a", "b"], Echo())
            assert ctx.address == Address.local("a") and len(ctx.addresses) == 2
            assert await node.send_and_receive("b", b"1") == b"1"
            with pytest.raises(ConflictError):
                await node.start_worker("b", Echo())
            with pytest.raises(UsageError):
                await node.start_worker("1#127.0.0.1:1", Echo())
            with pytest.raises(UsageError):
                await node.start_worker("x", 42)
            with pytest.raises(UsageError, match="handle_message"):
                await ctx.receive()

    arun(main())


def test_worker_lifecycle_hooks_and_errors() -> None:
    events: list[str] = []

    class W(Worker):
        async def initialize(self, ctx: Context) -> None:
            events.append("init")

        async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
            events.append(msg.payload.decode())
            if msg.payload == b"boom":
                raise RuntimeError("boom")
            if msg.payload == b"stop":
                await ctx.stop()

        async def shutdown(self, ctx: Context) -> None:
            events.append("shutdown")

    async def main() -> None:
        async with Node("n") as node:
            await node.start_worker("w", W())
            for p in (b"a", b"boom", b"b", b"stop"):
                await node.send("w", p)
            for _ in range(50):
                if "shutdown" in events:
                    break
                await asyncio.sleep(0.01)
            assert events == ["init", "a", "boom", "b", "stop", "shutdown"]
            assert node.stats.worker_errors == 1
            assert not node.has_address("w")
            with pytest.raises(UnknownAddressError):
                await node.send("w", b"late")
            with pytest.raises(UnknownAddressError):
                await node.stop_worker("w")

    arun(main())


def test_processor_loops_until_false_and_can_receive() -> None:
    class Counter(Processor):
        def __init__(self) -> None:
            self.got: list[bytes] = []
            self.stopped = False

        async def process(self, ctx: Context) -> bool:
            msg = await ctx.receive()
            self.got.append(msg.payload)
            return msg.payload != b"last"

        async def shutdown(self, ctx: Context) -> None:
            self.stopped = True

    async def main() -> None:
        async with Node("n") as node:
            p = Counter()
            await node.start_processor("p", p)
            for x in (b"1", b"2", b"last"):
                await node.send("p", x)
            for _ in range(100):
                if p.stopped:
                    break
                await asyncio.sleep(0.01)
            assert p.got == [b"1", b"2", b"last"] and p.stopped
            assert not node.has_address("p")

    arun(main())


def test_access_control_hooks() -> None:
    async def main() -> None:
        async with Node("n") as node:
            await node.start_worker("guarded", Echo(), incoming=AllowSourceAddress("friend"))
            friend = node.context("friend")
            stranger = node.context("stranger")
            await stranger.send("guarded", b"x")
            assert node.stats.denied_incoming == 1
            await friend.send("guarded", b"x")
            assert (await friend.receive(timeout=2)).payload == b"x"
            # outgoing: may only send to "friend"
            await node.start_worker("echo2", Echo(), outgoing=AllowOnwardAddress("friend"))
            await stranger.send("echo2", b"y")
            with pytest.raises(ReceiveTimeoutError):
                await stranger.receive(timeout=0.1)
            assert node.stats.denied_outgoing == 1
            # incoming control that looks at local info
            await node.start_worker("needs-info", Echo(),
                                    incoming=AllowLocalInfo("role", b"admin"))
            assert await friend.send("needs-info", b"no") is False
            assert await friend.send("needs-info", b"yes",
                                     local_info=(LocalInfo("role", b"admin"),)) is True
            assert (await friend.receive(timeout=2)).payload == b"yes"
            await node.start_worker("closed", Echo(), incoming=DenyAll)
            assert await friend.send("closed", b"z") is False

    arun(main())


def test_local_back_pressure_blocks_the_sender() -> None:
    async def main() -> None:
        async with Node("n") as node:
            release = asyncio.Event()
            got: list[bytes] = []

            async def slow(ctx: Context, msg: LocalMessage) -> None:
                await release.wait()
                got.append(msg.payload)

            await node.start_worker("slow", slow, mailbox_size=2)
            ctx = node.context()
            for i in range(3):  # one being handled + two queued
                await asyncio.wait_for(ctx.send("slow", bytes([i])), 1)
            blocked = asyncio.ensure_future(ctx.send("slow", b"\x03"))
            await asyncio.sleep(0.1)
            assert not blocked.done()
            release.set()
            await asyncio.wait_for(blocked, 2)
            for _ in range(100):
                if len(got) == 4:
                    break
                await asyncio.sleep(0.01)
            assert got == [b"\x00", b"\x01", b"\x02", b"\x03"]

    arun(main())


def test_inline_worker_keeps_order_when_it_has_to_wait() -> None:
    class Relay(InlineWorker):
        def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
            return ctx.send_nowait("sink", msg.payload)

        async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
            await ctx.send("sink", msg.payload)

    async def main() -> None:
        async with Node("n") as node:
            release = asyncio.Event()
            got: list[int] = []

            async def sink(ctx: Context, msg: LocalMessage) -> None:
                await release.wait()
                got.append(msg.payload[0])

            await node.start_worker("sink", sink, mailbox_size=1)
            await node.start_worker("relay", Relay(), mailbox_size=100)
            ctx = node.context()
            for i in range(30):
                await ctx.send("relay", bytes([i]))
            await asyncio.sleep(0.05)
            release.set()
            for _ in range(200):
                if len(got) == 30:
                    break
                await asyncio.sleep(0.01)
            assert got == list(range(30))

    arun(main())


def test_stop_cancels_everything_and_is_final() -> None:
    async def main() -> None:
        node = Node("n")
        await node.start_services()

        async def forever(ctx: Context, msg: LocalMessage) -> None:
            await asyncio.sleep(3600)

        await node.start_worker("stuck", forever)
        await node.send("stuck", b"x")
        ctx = node.context()
        waiting = asyncio.ensure_future(ctx.receive())
        await asyncio.sleep(0.01)
        await node.stop()
        await node.stop()  # idempotent
        with pytest.raises(NodeStoppedError):
            await waiting
        assert other_tasks() == set()
        assert node.workers() == [] and len(node.flow_controls) == 0
        with pytest.raises(NodeStoppedError):
            await node.start_worker("late", Echo())
        with pytest.raises(TrustError):
            await ctx.send("echo", b"x")

    arun(main())


def test_hop_forwards_and_adds_itself() -> None:
    async def main() -> None:
        async with Node("n") as node:
            await node.start_worker("hop", Hop())
            await node.start_worker("echo", Echo())
            reply = await node.ctx.request(Route(["hop", "echo"]), b"q")
            assert reply.payload == b"q"
            assert reply.return_route == Route(["hop", "echo"])

    arun(main())
