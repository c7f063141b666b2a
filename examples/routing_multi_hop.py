"""Three nodes over TCP on 127.0.0.1: A reaches C's echo through B's hop service.

B's hop opens a connection to C on A's behalf only because B allows it (``hop_allow``, as
``truststack node create b --hop-allow HOST:PORT``); by default a hop connects nowhere new.
Without the hop, B's flow control refuses to pass the message from one TCP connection to
another.

Run: python examples/routing_multi_hop.py
"""

import asyncio

from trust.errors import TrustError
from trust.node import Node
from trust.routing import parse_multiaddr


async def main() -> None:
    a, c = Node("a"), Node("c")
    nodes = [a, c]
    try:
        lc = await c.create_tcp_listener("127.0.0.1:0")
        b = Node("b", hop_allow=[lc.address])  # B's hop may connect to C (and nowhere else)
        nodes.append(b)
        for node in nodes:
            await node.start_services()
        lb = await b.create_tcp_listener("127.0.0.1:0")

        text = f"/ip4/127.0.0.1/tcp/{lb.port}/service/hop/ip4/127.0.0.1/tcp/{lc.port}/service/echo"
        route = parse_multiaddr(text).to_route()
        print(route)  # 1#127.0.0.1:PB => 0#hop => 1#127.0.0.1:PC => 0#echo
        print(await a.send_and_receive(route, b"hello through B"))

        direct = parse_multiaddr(
            f"/ip4/127.0.0.1/tcp/{lb.port}/ip4/127.0.0.1/tcp/{lc.port}/service/echo").to_route()
        try:
            await a.send_and_receive(direct, b"no hop", timeout=0.5)
        except TrustError as e:
            print("without the hop:", type(e).__name__)
        print("refused by B's flow control:", b.stats.refused_by_flow_control)
    finally:
        for node in nodes:
            await node.stop()


asyncio.run(main())
