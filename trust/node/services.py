"""Standard services every node runs: ``echo`` and ``hop``.

* :class:`Echo` sends each payload back along the message's return route (Ockam's ``echoer``).
* :class:`Hop` relays a message to the next hop of its onward route, adding itself to the return
  route, so a message can cross from one TCP connection to another (as in Ockam's examples).
  A message that came from a TCP connection is passed on only to another node or connection,
  or to a local worker that its connection's flow control admits (so ``hop`` never opens a way
  around flow control).
"""

from __future__ import annotations

from trust.node.context import Context
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO
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

    @staticmethod
    def _next(ctx: Context, msg: LocalMessage) -> LocalMessage | None:
        nxt = msg.step_forward(ctx.address)
        onward = nxt.onward_route._addrs
        if not onward:
            return None
        flow = msg.find_local_info(FLOW_CONTROL_LOCAL_INFO) if msg.local_info else None
        if flow is not None:
            flow_id = flow.decode("utf-8", "replace")
            if not ctx.node.flow_controls.may_relay(flow_id, onward[0]):
                ctx.node._refused(nxt, flow_id, ctx.address)
                return None
        return nxt

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        nxt = self._next(ctx, msg)
        return True if nxt is None else ctx.forward_nowait(nxt)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        nxt = self._next(ctx, msg)
        if nxt is not None:
            await ctx.forward(nxt)
