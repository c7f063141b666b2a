"""Workers and processors: the units of concurrency inside a node.

A :class:`Worker` handles the messages that arrive at its address(es), one at a time, in the
order they arrived. A :class:`Processor` runs a background loop: ``process`` is called again and
again until it returns ``False`` or the node stops. Both may define ``initialize`` and
``shutdown``. A plain ``async def handler(ctx, msg)`` function can be started as a worker too.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from trust.routing import LocalMessage

if TYPE_CHECKING:
    from trust.node.context import Context

__all__ = ["FunctionWorker", "Handler", "InlineWorker", "Processor", "Worker"]

Handler = Callable[["Context", LocalMessage], Awaitable[None]]


class Worker(abc.ABC):
    """Subclass and override :meth:`handle_message` (and optionally the lifecycle hooks)."""

    drop_when_full: ClassVar[bool] = False
    """``True`` for a worker that serves many peers (``echo``, ``hop``, a relay): its context
    never waits on one destination; a message whose next hop is full is dropped and counted
    (see :attr:`Context.drop_when_full`). ``False``: sends wait for space."""

    takes_views: ClassVar[bool] = False
    """``True`` for a worker that handles a payload given as a read-only ``memoryview`` as well
    as ``bytes`` (a secure channel's encryptor and decryptor, the relay forwarder): a large
    record read from a connection, or a large decrypted payload, then reaches it without being
    copied. Any other worker gets ``bytes`` (the node copies the view on delivery)."""

    takes_transient_views: ClassVar[bool] = False
    """``True`` (with :attr:`takes_views`) for a worker that also takes a *writable*
    ``memoryview``: a view of its sender's reused buffer (a portal inlet's read, a TCP
    connection's read), valid only while the worker's ``handle_now`` (or
    :meth:`InlineWorker.before_queue`) runs. Such a worker reads the payload at once and never
    keeps it (a secure channel's encryptor joins it into the plaintext; its decryptor
    decrypts it). The node copies the view before it queues the message (unless
    ``before_queue`` replaced it) and for every other endpoint; a sender that keeps such a
    message copies it too."""

    async def initialize(self, ctx: Context) -> None:
        """Called once, before the first message."""
        return None

    @abc.abstractmethod
    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        """Handle one message from the mailbox."""

    async def shutdown(self, ctx: Context) -> None:
        """Called once when the worker stops (its mailbox is already closed)."""
        return None


class InlineWorker(Worker):
    """A worker that can usually handle a message at once, without a task switch.

    When its mailbox is empty and it is not busy, a message is given to :meth:`handle_now`
    right where it is delivered (e.g. inside the TCP receiver). ``handle_now`` must not wait:
    it sends with :meth:`Context.send_nowait` / :meth:`Context.forward_nowait`, and returns
    ``False`` *without having done anything* when it cannot finish now (the next hop is full,
    a TCP connection must be opened first). The message then goes to the mailbox and the
    worker's task handles it with :meth:`handle_message`, which may wait. Order is kept: while
    messages are queued or one is being handled, new ones queue behind them.
    """

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        return False

    def before_queue(self, ctx: Context, msg: LocalMessage) -> LocalMessage | None:
        """Called (when overridden) for a message about to wait in the mailbox behind others,
        in arrival order, only when the mailbox has room for it. It may do now the part of
        the handling that must follow arrival order and reads the payload (a secure channel's
        decryptor decrypts here), and return what to queue (``msg``, changed or not), or
        ``None``: done, nothing to queue. A queued payload that is still a view of its
        sender's buffer is then copied (see :attr:`Worker.takes_transient_views`); one that
        was replaced by the worker's own bytes is not."""
        return msg


class FunctionWorker(Worker):
    """A worker made from an ``async def handler(ctx, msg)`` function."""

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        await self.handler(ctx, msg)


class Processor(abc.ABC):
    """Subclass and override :meth:`process`; it runs in a loop while it returns ``True``."""

    async def initialize(self, ctx: Context) -> None:
        """Called once, before the first ``process``."""
        return None

    @abc.abstractmethod
    async def process(self, ctx: Context) -> bool:
        """One round of work; return ``False`` to stop."""

    async def shutdown(self, ctx: Context) -> None:
        """Called once when the processor stops."""
        return None
