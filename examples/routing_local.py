"""Workers on one node: an echo service, a function worker, and a message through a local hop.

Run: python examples/routing_local.py
"""

import asyncio

from trust.node import Context, Node
from trust.routing import LocalMessage, Route


async def shout(ctx: Context, msg: LocalMessage) -> None:
    """A worker: reply (to the return route) with the payload in capitals."""
    await ctx.send(msg.return_route, msg.payload.upper())


async def main() -> None:
    async with Node("demo") as node:
        await node.start_services()                      # "echo" and "hop"
        await node.start_worker("shout", shout)

        print(await node.send_and_receive("echo", b"ping"))              # b'ping'
        print(await node.send_and_receive(Route(["hop", "shout"]), b"hi"))  # b'HI'

        reply = await node.ctx.request(Route(["hop", "echo"]), b"where from?")
        print("reply came back along", reply.return_route)  # 0#hop => 0#echo


asyncio.run(main())
