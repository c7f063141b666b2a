"""Standard services every node runs: ``echo`` and ``hop``.

* :class:`Echo` sends each payload back along the message's return route (Ockam's ``echoer``).
* :class:`Hop` relays a message to the next hop of its onward route, adding itself to the return
  route, so a message can cross from one TCP connection to another (as in Ockam's examples).
"""

from __future__ import annotations

from trust.node.context import Context
from trust.node.worker import InlineWorker
from trust.routing import LocalMessage

__all__ = ["Echo", "Hop"]


class Echo(InlineWorker):
    """Reply with the same payload to the sender."""

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        ret = msg.return_route
        if not ret._addrs:
            return True
        # ctx.send_nowait(ret, msg.payload), inlined: this is every echo's hot path
        reply = LocalMessage(ret, ctx._return, msg.payload)
        return ctx._try_send(reply, ctx.address, ctx._slot.outgoing) is not None

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        if msg.return_route._addrs:
            await ctx.send(msg.return_route, msg.payload)


class Hop(InlineWorker):
    """Forward to the rest of the onward route; replies come back through this hop."""

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        nxt = msg.step_forward(ctx.address)
        if not nxt.onward_route._addrs:
            return True
        return ctx.forward_nowait(nxt)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        nxt = msg.step_forward(ctx.address)
        if nxt.onward_route._addrs:
            await ctx.forward(nxt)
