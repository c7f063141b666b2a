"""The handle a worker, processor or application uses to talk to its node."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from trust.errors import UsageError
from trust.node.errors import NodeStoppedError, ReceiveTimeoutError
from trust.node.mailbox import MailboxClosedError
from trust.routing import Address, LocalInfoItem, LocalMessage, Route, RouteLike

if TYPE_CHECKING:
    from trust.node.node import Node, Slot

__all__ = ["DEFAULT_TIMEOUT", "Context"]

DEFAULT_TIMEOUT = 30.0
"""Seconds :meth:`Context.send_and_receive` waits for a reply by default."""


class Context:
    """Send, forward and receive messages from one registered address (the primary one).

    Workers get their context in ``handle_message``; applications make detached contexts with
    :meth:`Node.context` (they receive with :meth:`receive`).
    """

    __slots__ = ("_deliver", "_detached", "_return", "_slot", "address", "drop_when_full",
                 "node")

    def __init__(self, node: Node, slot: Slot) -> None:
        self.node = node
        self._slot = slot
        self.address: Address = slot.addresses[0]
        self._return = Route.from_tuple((self.address,))
        self._deliver = node.deliver
        self._detached = slot.kind != "worker"
        self.drop_when_full = False
        """A shared sender (``echo``, ``hop``: :attr:`Worker.drop_when_full`) never waits on
        one destination: when its queue is full the message is dropped and counted
        (``node.stats.dropped_full``), and a destination that must first be connected is
        connected in the background. Other senders wait for space."""

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self._slot.addresses

    @property
    def slot(self) -> Slot:
        """The node's registration of this context (its addresses, mailbox, access controls)."""
        return self._slot

    def __repr__(self) -> str:
        return f"Context({self.address})"

    # -- sending ---------------------------------------------------------------------------------
    async def send(self, route: RouteLike, payload: bytes, *,
                   from_address: Address | str | None = None,
                   local_info: tuple[LocalInfoItem, ...] = (),
                   tracing_context: str | None = None,
                   drop_when_full: bool | None = None) -> bool:
        """Send ``payload`` along ``route`` with the return route ``[from_address]``.

        Waits while the next hop's mailbox (or connection) is full, unless ``drop_when_full``
        (default: :attr:`drop_when_full`, set for shared workers): then the message is dropped
        and counted. Returns ``False`` when the message was dropped (access control, or full);
        raises :class:`~trust.errors.NotFoundError` when the next hop does not exist.
        """
        if type(route) is not Route:
            route = Route.of(route)
        if from_address is None:
            src = self.address
            ret = self._return
        else:
            src = Address.parse(from_address)
            if src not in self._slot.addresses:
                raise UsageError(f"{src} is not an address of this context")
            ret = Route.from_tuple((src,))
        msg = LocalMessage(route, ret, payload, local_info, tracing_context)
        outgoing = self._slot.outgoing
        done = self._deliver(msg, src, outgoing, None, None)  # no coroutine unless it must wait
        if done is True or done is False:
            return done  # type: ignore[no-any-return]
        return await self.node.finish_send(
            msg, src, outgoing, done,
            self.drop_when_full if drop_when_full is None else drop_when_full)

    async def forward(self, msg: LocalMessage, *,
                      from_address: Address | str | None = None,
                      drop_when_full: bool | None = None) -> bool:
        """Send ``msg`` as it is (its routes unchanged) to the first hop of its onward route."""
        src = self.address if from_address is None else Address.parse(from_address)
        if src not in self._slot.addresses:
            raise UsageError(f"{src} is not an address of this context")
        outgoing = self._slot.outgoing
        done = self._deliver(msg, src, outgoing, None, None)
        if done is True or done is False:
            return done  # type: ignore[no-any-return]
        return await self.node.finish_send(
            msg, src, outgoing, done,
            self.drop_when_full if drop_when_full is None else drop_when_full)

    def send_nowait(self, route: RouteLike, payload: bytes) -> bool:
        """Send without waiting (for :class:`~trust.node.worker.InlineWorker`).

        Returns ``False``, having sent nothing, when the next hop is full or must first be
        connected; ``True`` when the message was delivered or dropped (access control; or,
        for a shared sender (:attr:`drop_when_full`), full: it never has to wait).
        """
        if type(route) is not Route:
            route = Route.of(route)
        msg = LocalMessage(route, self._return, payload)
        return self.node.deliver_nowait(msg, self.address, self._slot.outgoing,
                                      self.drop_when_full)

    def forward_nowait(self, msg: LocalMessage) -> bool:
        """Forward without waiting; ``False`` (nothing sent) when it would have to wait."""
        return self.node.deliver_nowait(msg, self.address, self._slot.outgoing,
                                      self.drop_when_full)

    def reply_nowait(self, msg: LocalMessage, payload: bytes) -> bool:
        """Send ``payload`` back along ``msg``'s return route without waiting (the hot path
        of ``echo``); ``False`` (nothing sent) when it would have to wait."""
        ret = msg.return_route
        if not ret.addresses:
            return True
        reply = LocalMessage(ret, self._return, payload)
        done = self._deliver(reply, self.address, self._slot.outgoing, None, None)
        if done is True or done is False:
            return True
        if not self.drop_when_full:
            return False
        return self.node.queue_or_drop(reply, self.address, self._slot.outgoing, done)

    # -- receiving -------------------------------------------------------------------------------
    async def receive(self, timeout: float | None = None) -> LocalMessage:
        """The next message sent to this context (detached contexts and processors only)."""
        if not self._detached:
            raise UsageError("a worker receives its messages through handle_message")
        mb = self._slot.mailbox
        items = mb._items
        if items:
            m = items.popleft()
            if mb._waiters:
                mb._wake_one()
            return m
        try:
            if timeout is None:
                # Mailbox.get, inlined (a coroutine less on every reply)
                while not items:
                    if mb.closed:
                        raise MailboxClosedError
                    fut = mb._getter = asyncio.get_running_loop().create_future()
                    try:
                        await fut
                    finally:
                        if mb._getter is fut:
                            mb._getter = None
                m = items.popleft()
                if mb._waiters:
                    mb._wake_one()
                return m
            async with asyncio.timeout(timeout):
                return await mb.get()
        except TimeoutError:
            raise ReceiveTimeoutError(
                f"no message for {self.address} within {timeout:g}s") from None
        except MailboxClosedError:
            raise NodeStoppedError(f"the context {self.address} has stopped") from None

    async def send_and_receive(self, route: RouteLike, payload: bytes, *,
                               timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """Send from a temporary address and return the payload of the first reply."""
        msg = await self.request(route, payload, timeout=timeout)
        return msg.payload

    async def request(self, route: RouteLike, payload: bytes, *,
                      timeout: float | None = DEFAULT_TIMEOUT) -> LocalMessage:
        """Like :meth:`send_and_receive` but return the whole reply message."""
        ctx = self.node.context(mailbox_size=4)
        try:
            await ctx.send(route, payload)
            return await ctx.receive(timeout)
        finally:
            ctx.close()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start_worker(self, address: Address | str, worker: Any, **options: Any) -> Context:
        """Start another worker on the same node (see :meth:`Node.start_worker`)."""
        return await self.node.start_worker(address, worker, **options)

    async def stop(self) -> None:
        """Stop this worker, processor or context."""
        await self.node.stop_worker(self.address)

    def close(self) -> None:
        """Unregister a detached context at once (no shutdown hooks to run)."""
        self.node.unregister(self._slot)

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
