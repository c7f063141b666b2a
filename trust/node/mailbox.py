"""Bounded mailboxes.

A :class:`Mailbox` holds at most ``capacity`` messages. :meth:`Mailbox.offer` never blocks: it
returns ``False`` when the mailbox is full, and the caller registers a callback with
:meth:`Mailbox.on_space` (a TCP receiver stops reading until then) or awaits
:meth:`Mailbox.wait_space` (a local sender waits). One waiter is woken per message taken out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DEFAULT_MAILBOX_SIZE", "Mailbox", "MailboxClosedError"]

DEFAULT_MAILBOX_SIZE = 128

T = TypeVar("T")


class MailboxClosedError(Exception):
    """The mailbox was closed (its worker stopped) while someone waited on it."""


class Mailbox(Generic[T]):
    """A bounded FIFO with non-blocking offers and space notifications."""

    __slots__ = ("_getter", "_items", "_loop", "_waiters", "capacity", "closed")

    def __init__(self, capacity: int = DEFAULT_MAILBOX_SIZE) -> None:
        if capacity < 1:
            raise ValueError("a mailbox holds at least one message")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._waiters: deque[Callable[[], object]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.capacity

    # -- producer side ---------------------------------------------------------------------------
    def offer(self, item: T) -> bool:
        """Append ``item`` unless the mailbox is full (or closed); never blocks."""
        items = self._items
        if len(items) >= self.capacity or self.closed:
            return False
        items.append(item)
        g = self._getter
        if g is not None:
            self._getter = None
            if not g.done():
                g.set_result(None)
        return True

    def on_space(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (soon, from the event loop) once a message has been taken out."""
        if self.closed or len(self._items) < self.capacity:
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._waiters.append(callback)

    async def wait_space(self) -> None:
        """Wait until a message has been taken out; :class:`MailboxClosedError` if it closes."""
        if self.closed:
            raise MailboxClosedError
        if len(self._items) < self.capacity:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self._waiters.append(wake)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
            try:
                self._waiters.remove(wake)
            except ValueError:
                pass
        if self.closed:
            raise MailboxClosedError

    # -- consumer side ---------------------------------------------------------------------------
    def _wake_one(self) -> None:
        waiters = self._waiters
        if waiters:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(waiters.popleft())

    def take(self) -> T | None:
        """The next message without waiting, or ``None``."""
        items = self._items
        if not items:
            return None
        item = items.popleft()
        if self._waiters:
            self._wake_one()
        return item

    async def get(self) -> T:
        """The next message, waiting for one."""
        items = self._items
        while not items:
            if self.closed:
                raise MailboxClosedError
            fut = self._getter = asyncio.get_running_loop().create_future()
            try:
                await fut
            finally:
                if self._getter is fut:
                    self._getter = None
        item = items.popleft()
        if self._waiters:
            self._wake_one()
        return item

    def close(self) -> None:
        """Drop queued messages and wake every waiter (they will find the mailbox closed)."""
        self.closed = True
        self._items.clear()
        g = self._getter
        if g is not None and not g.done():
            g.set_result(None)
        self._getter = None
        waiters, self._waiters = self._waiters, deque()
        if waiters:
            loop = asyncio.get_running_loop()
            for w in waiters:
                loop.call_soon(w)
