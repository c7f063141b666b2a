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
    """Reply with the same payload to the sender (a shared worker: a reply whose next hop is
    full is dropped and counted, never waited for)."""

    drop_when_full = True

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        return ctx.reply_nowait(msg, msg.payload)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        if msg.return_route.addresses:  # (never waits: drop_when_full)
            await ctx.send(msg.return_route, msg.payload)


class Hop(InlineWorker):
    """Forward to the rest of the onward route; replies come back through this hop.

    A shared worker: it never waits on one destination. A message whose next hop is full is
    dropped (counted in ``node.stats.dropped_full``); a destination that must first be
    connected is connected in a task of its own (with the node's connect timeout), holding at
    most a few messages for it meanwhile; on behalf of a remote peer, only to destinations
    the node's ``hop_allow`` lists (existing connections aside).
    """

    drop_when_full = True

    @staticmethod
    def _next(ctx: Context, msg: LocalMessage) -> LocalMessage | None:
        nxt = msg.step_forward(ctx.address)
        onward = nxt.onward_route.addresses
        if not onward:
            return None
        flow = msg.find_local_info(FLOW_CONTROL_LOCAL_INFO) if msg.local_info else None
        if flow is not None:
            flow_id = flow.decode("utf-8", "replace")
            if not ctx.node.flow_controls.may_relay(flow_id, onward[0]):
                ctx.node.refuse(nxt, flow_id, ctx.address)
                return None
        return nxt

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        nxt = self._next(ctx, msg)
        return True if nxt is None else ctx.forward_nowait(nxt)

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        nxt = self._next(ctx, msg)
        if nxt is not None:  # (never waits: drop_when_full)
            await ctx.forward(nxt)
