"""Mailboxes (bounded, with space notifications) and flow controls."""

from __future__ import annotations

import asyncio

import pytest

from tests.node.helpers import arun
from trust.node import FlowControls, Mailbox
from trust.node.mailbox import MailboxClosedError
from trust.routing import Address


def test_mailbox_bounds_and_wakes_one_waiter_per_take() -> None:
    async def main() -> None:
        mb: Mailbox[int] = Mailbox(2)
        assert mb.offer(1) and mb.offer(2) and not mb.offer(3) and mb.full
        woken: list[str] = []
        mb.on_space(lambda: woken.append("a"))
        mb.on_space(lambda: woken.append("b"))
        assert mb.take() == 1
        await asyncio.sleep(0)
        assert woken == ["a"]
        assert await mb.get() == 2
        await asyncio.sleep(0)
        assert woken == ["a", "b"] and mb.take() is None
        getter = asyncio.ensure_future(mb.get())
        await asyncio.sleep(0)
        assert mb.offer(7) and await getter == 7

    arun(main())


def test_mailbox_wait_space_and_close() -> None:
    async def main() -> None:
        mb: Mailbox[int] = Mailbox(1)
        mb.offer(1)
        waiter = asyncio.ensure_future(mb.wait_space())
        getter_done = asyncio.ensure_future(asyncio.sleep(0))
        await getter_done
        assert not waiter.done()
        mb.take()
        await waiter
        mb.offer(2)
        waiter = asyncio.ensure_future(mb.wait_space())
        blocked_get = asyncio.ensure_future(Mailbox[int](1).get())
        await asyncio.sleep(0)
        mb.close()
        with pytest.raises(MailboxClosedError):
            await waiter
        assert not mb.offer(3) and len(mb) == 0
        with pytest.raises(MailboxClosedError):
            await mb.get()
        blocked_get.cancel()

    arun(main())


def test_mailbox_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Mailbox(0)


def test_flow_controls() -> None:
    fc = FlowControls()
    listener, conn, other = fc.new_id(), fc.new_id(), fc.new_id()
    echo, secret, sender = Address.local("echo"), Address.local("secret"), Address.local("s1")
    fc.add_producer(sender, conn, spawner=listener)
    fc.add_consumer(echo, listener)
    assert fc.flow_of_producer(sender) == conn and fc.spawner_of(conn) == listener
    assert fc.is_consumer(echo, conn) and fc.is_consumer(echo, listener)
    assert not fc.is_consumer(secret, conn) and not fc.is_consumer(echo, other)
    fc.add_consumer("secret", conn)
    assert fc.is_consumer(secret, conn) and not fc.is_consumer(secret, listener)
    assert fc.consumers(conn) == {secret}
    fc.remove_consumer(echo)
    assert not fc.is_consumer(echo, conn)
    fc.remove_flow(conn)
    assert fc.flow_of_producer(sender) is None and not fc.is_consumer(secret, conn)
    assert len(fc) == 0
