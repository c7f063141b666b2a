"""Asynchronous incoming access control: awaited before the worker sees the message, in order,
bounded; sync controls keep their fast path."""

from __future__ import annotations

import asyncio

from trust.node import Context, Node
from trust.node.access_control import RelayMessage, all_of, any_of
from trust.routing import LocalMessage


def test_a_coroutine_access_control_denies_and_allows_before_the_worker_sees_it() -> None:
    async def main() -> None:
        async with Node("n") as node:
            seen: list[bytes] = []
            checked: list[bytes] = []

            async def handler(ctx: Context, msg: LocalMessage) -> None:
                assert msg.payload in checked  # the check ran first
                seen.append(msg.payload)

            async def policy(relay: RelayMessage) -> bool:
                await asyncio.sleep(0.001 if relay.message.payload[-1] % 2 else 0.005)
                checked.append(relay.message.payload)
                return not relay.message.payload.startswith(b"deny")

            await node.start_worker("w", handler, incoming=policy)
            for i in range(20):
                await node.send("w", (b"deny" if i % 3 == 0 else b"ok") + bytes([i]))
            async with asyncio.timeout(5):
                while len(checked) < 20 or len(seen) < 13:
                    await asyncio.sleep(0.005)
            assert seen == [(b"ok") + bytes([i]) for i in range(20) if i % 3]  # in order
            assert node.stats.denied_incoming == 7

    asyncio.run(main())


def test_combinators_mix_sync_and_async_controls() -> None:
    async def yes(relay: RelayMessage) -> bool:
        return True

    async def no(relay: RelayMessage) -> bool:
        return False

    def sync_yes(relay: RelayMessage) -> bool:
        return True

    def sync_no(relay: RelayMessage) -> bool:
        return False

    async def main() -> None:
        async with Node("n") as node:
            got: list[str] = []

            async def handler(ctx: Context, msg: LocalMessage) -> None:
                got.append(ctx.address.name)

            cases = {"a": all_of(sync_yes, yes), "b": all_of(yes, sync_no), "c": any_of(sync_no, no),
                     "d": any_of(no, sync_yes), "e": all_of(sync_yes, sync_yes), "f": any_of(sync_no)}
            for name, ac in cases.items():
                await node.start_worker(name, handler, incoming=ac)
                await node.send(name, b"x")
            async with asyncio.timeout(5):
                while node.stats.denied_incoming + len(got) < len(cases):
                    await asyncio.sleep(0.005)
            assert sorted(got) == ["a", "d", "e"]

    asyncio.run(main())


def test_pending_checks_are_bounded_and_the_sender_waits() -> None:
    from trust.node import node as node_module

    async def main() -> None:
        async with Node("n") as node:
            gate = asyncio.Event()
            seen: list[bytes] = []

            async def policy(relay: RelayMessage) -> bool:
                await gate.wait()
                return True

            async def handler(ctx: Context, msg: LocalMessage) -> None:
                seen.append(msg.payload)

            await node.start_worker("w", handler, incoming=policy, mailbox_size=4)
            limit = node_module.MAX_PENDING_CHECKS
            sender = asyncio.get_running_loop().create_task(
                asyncio.wait_for(_send_many(node, limit + 10), 10))
            await asyncio.sleep(0.05)
            assert not sender.done()  # the sender waits: the checks pending are bounded
            gate.set()
            await sender
            async with asyncio.timeout(5):
                while len(seen) < limit + 10:
                    await asyncio.sleep(0.005)
            assert seen == [i.to_bytes(4, "big") for i in range(limit + 10)]

    asyncio.run(main())


async def _send_many(node: Node, n: int) -> None:
    for i in range(n):
        await node.send("w", i.to_bytes(4, "big"))
